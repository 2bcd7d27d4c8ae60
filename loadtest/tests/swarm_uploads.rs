//! The upload swarm against the real ingest binary (filesystem store, real redis-server):
//! bounded by an upload count, it must finish every upload, account every byte and PATCH, and
//! leave exactly those sources in the store; refused uploads are counted by status, not fatal.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ringcast_loadtest::upload_swarm::{self, UploadSwarmConfig};
use ringcast_testkit::{IngestOptions, Stack};

/// Redis, a filesystem store and an ingest refusing uploads above `max_upload_bytes`.
fn start_ingest(max_upload_bytes: u64) -> Stack {
    Stack::builder()
        .ingest(IngestOptions::new().max_upload_bytes(max_upload_bytes))
        .start()
}

/// Every stored source object: (path, size).
fn stored_sources(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("sources")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "source") {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((p.display().to_string(), len));
            }
        }
    }
    out
}

fn config(addr: SocketAddr, clients: usize, size: u64, uploads: usize) -> UploadSwarmConfig {
    UploadSwarmConfig {
        url: format!("http://{addr}"),
        clients,
        size,
        chunk_size: 256 * 1024,
        uploads_per_client: Some(uploads),
        duration: Duration::from_secs(120),
        file: None,
        progress: false,
        api_key: None,
        allow_duplicates: false,
    }
}

#[test]
fn every_upload_finishes_and_every_byte_is_stored() {
    let stack = start_ingest(1 << 30);
    let size = 1024 * 1024 + 17; // not a multiple of the chunk: the last PATCH is short
    let s = upload_swarm::run(&config(stack.ingest().addr, 3, size, 2)).expect("swarm runs");

    assert_eq!(s.uploads_ok, 6, "{}", s.table());
    assert_eq!(s.uploads_failed, 0, "{}", s.table());
    assert!(s.errors.is_empty(), "{}", s.table());
    assert_eq!(s.bytes, 6 * size);
    assert_eq!(s.create.count, 6);
    // ceil(size / 256 KiB) = 5 PATCHes per upload.
    assert_eq!(s.patch.count, 6 * 5);
    assert_eq!(s.upload.count, 6);
    assert!(s.upload.max_ms >= s.upload.p50_ms && s.upload.p50_ms > 0.0);
    // The per-second series holds the same requests and confirmed bytes.
    let count = |kind: &str| -> u64 {
        s.series
            .points
            .iter()
            .flat_map(|p| &p.kinds)
            .filter(|k| k.kind == kind)
            .map(|k| k.count)
            .sum()
    };
    assert_eq!(
        (count("create"), count("patch"), count("upload")),
        (6, 30, 6)
    );
    assert_eq!(
        s.series.points.iter().map(|p| p.bytes).sum::<u64>(),
        6 * size
    );
    assert_eq!(s.series.points.last().map(|p| p.active), Some(0));

    let sources = stored_sources(stack.store_root());
    assert_eq!(sources.len(), 6, "{sources:?}");
    assert!(sources.iter().all(|(_, len)| *len == size), "{sources:?}");
}

#[test]
fn refused_uploads_are_counted_by_status_not_fatal() {
    // Every upload is larger than the ingest allows: creation is refused with 413.
    let stack = start_ingest(1000);
    let s = upload_swarm::run(&config(stack.ingest().addr, 2, 4096, 3)).expect("swarm runs");

    assert_eq!(s.uploads_ok, 0, "{}", s.table());
    assert_eq!(s.uploads_failed, 6, "{}", s.table());
    assert_eq!(s.errors.get("413"), Some(&6), "{}", s.table());
    assert_eq!(s.bytes, 0);
    assert!(
        s.failures.iter().all(|f| f.contains("413")),
        "{:?}",
        s.failures
    );
    assert!(stored_sources(stack.store_root()).is_empty());
}
