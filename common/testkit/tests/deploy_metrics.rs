//! The deployment's alert rules (`deploy/prometheus/alerts.yml`) and Grafana dashboard
//! (`deploy/grafana/dashboards/ringcast.json`) only name metrics the services really export:
//! every `ringcast_*` name in them is a family (`# TYPE`) or sample of a running edge's,
//! ingest's or transcoder's `/metrics` (a histogram's `_bucket`/`_sum`/`_count` counts as its
//! family). A renamed metric fails here instead of leaving a silent alert.

use std::collections::BTreeSet;
use std::path::Path;

use ringcast_testkit::{EdgeOptions, IngestOptions, Stack, TranscoderOptions};

/// Every `ringcast_…` token of `text`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ringcast_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Family and sample names of a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(t) => t.split_whitespace().next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        };
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            out.insert(n.to_string());
        }
    }
    out
}

#[test]
fn alerts_and_dashboard_name_only_exported_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut wanted = BTreeSet::new();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/ringcast.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let names = referenced(&text);
        assert!(!names.is_empty(), "{file} names no metric");
        wanted.extend(names);
    }
    let stack = Stack::builder()
        .ingest(IngestOptions::new())
        .transcoder(TranscoderOptions::new().name("tc-metrics"))
        .edge(EdgeOptions::new())
        .start();
    let mut have = BTreeSet::new();
    for s in [stack.ingest(), stack.edge(), stack.transcoder()] {
        have.extend(exported(&s.metrics()));
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !have.contains(n.as_str()) && !have.contains(family)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exported: {missing:?}\nexported: {have:?}"
    );
}
