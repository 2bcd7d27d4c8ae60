//! Criterion benches of the per-request HTTP decisions of the edge: single-range parsing,
//! conditional-request evaluation, signed-URL verification (HMAC-SHA256), and the whole
//! cache-hit response path without sockets (`representation::respond` + writing the head).
//! `cargo bench -p ringcast-benches --bench edge_http -- --quick` keeps it short.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_edge::representation;
use ringcast_edge::tiers::memory::{CacheStatus, Entry};
use ringcast_proto::http::conditional::{self, Conditions, EntityTag, Validators};
use ringcast_proto::http::{parse_request, range, Limits};
use ringcast_proto::signed_url;

fn ranges(c: &mut Criterion) {
    let mut g = c.benchmark_group("range");
    for (name, h) in [
        ("closed", Some("bytes=1048576-2097151")),
        ("suffix", Some("bytes=-500")),
        ("multi_ignored", Some("bytes=0-1,5-6")),
        ("none", None),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| range::evaluate(std::hint::black_box(h), 2_000_000))
        });
    }
    g.finish();
}

fn conditionals(c: &mut Criterion) {
    let tag = EntityTag::of(b"some segment bytes").header();
    let v = Validators {
        etag: &tag,
        last_modified: Some(1_700_000_000),
    };
    let list = format!("\"a\", W/\"b\", {tag}");
    let mut g = c.benchmark_group("conditional");
    g.bench_function("if_none_match_list", |b| {
        let cond = Conditions {
            if_none_match: Some(&list),
            ..Default::default()
        };
        b.iter(|| conditional::evaluate(std::hint::black_box(&cond), &v))
    });
    g.bench_function("if_modified_since", |b| {
        let cond = Conditions {
            if_modified_since: Some("Tue, 14 Nov 2023 22:13:20 GMT"),
            ..Default::default()
        };
        b.iter(|| conditional::evaluate(std::hint::black_box(&cond), &v))
    });
    let seg = vec![7u8; 2 << 20];
    g.bench_function("etag_of_2mb_segment", |b| {
        b.iter(|| EntityTag::of(std::hint::black_box(&seg)))
    });
    g.finish();
}

fn signed_urls(c: &mut Criterion) {
    let key = b"0123456789abcdef-secret";
    let now = 1_700_000_000;
    let path = signed_url::signed_path(key, "/v/vid/", now + 3600, "/v/vid/1/720p/seg42.m4s");
    let mut g = c.benchmark_group("signed_url");
    g.bench_function("verify_path", |b| {
        b.iter(|| signed_url::verify_path(key, std::hint::black_box(&path), now))
    });
    g.finish();
}

fn hit_path(c: &mut Criterion) {
    let raw = b"GET /v/Zk3x9Qm2/1/720p/seg42.m4s HTTP/1.1\r\nHost: edge.example\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nRange: bytes=0-65535\r\n\r\n";
    let (req, _) = parse_request(raw, &Limits::default())
        .ok()
        .flatten()
        .expect("valid request");
    let ttl = Duration::from_secs(1);
    let seg = Entry::object(
        "v/Zk3x9Qm2/1/720p/seg42.m4s",
        Bytes::from(vec![1u8; 1 << 20]),
        Instant::now(),
        ttl,
    );
    let playlist = Entry::object(
        "v/Zk3x9Qm2/1/720p/index.m3u8",
        Bytes::from("#EXTM3U\n#EXTINF:2.0,\nseg0.m4s\n".repeat(100)),
        Instant::now(),
        ttl,
    );
    let plain = b"GET /v/Zk3x9Qm2/1/720p/index.m3u8 HTTP/1.1\r\nHost: edge.example\r\nAccept-Encoding: gzip\r\n\r\n";
    let (preq, _) = parse_request(plain, &Limits::default())
        .ok()
        .flatten()
        .expect("valid request");
    let mut out = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("hit_response");
    g.bench_function("segment_range", |b| {
        b.iter(|| {
            out.clear();
            let r = representation::respond(&req, &seg, CacheStatus::Hit, Instant::now());
            r.write_head(&mut out, true);
            r.wire_body().len()
        })
    });
    g.bench_function("playlist_gzip", |b| {
        b.iter(|| {
            out.clear();
            let r = representation::respond(&preq, &playlist, CacheStatus::Hit, Instant::now());
            r.write_head(&mut out, true);
            r.wire_body().len()
        })
    });
    g.finish();
}

criterion_group!(benches, ranges, conditionals, signed_urls, hit_path);
criterion_main!(benches);
