//! The non-store origins over real sockets: `--origin-dir` (a plain directory), and
//! `--origin-url` (a plain HTTP/1.1 origin) with its failure mapping: 404 → 404 (negative-
//! cached), 5xx → 502, no answer → 504, a truncated body (Content-Length or chunked) → 502 and
//! nothing cached. Then stale-while-revalidate and stale-if-error for the current-version
//! master playlist, with `Age`. Both drivers.

mod support;

use std::time::{Duration, Instant};

use ringcast_testkit::wait_until;
use ringcast_testkit::EdgeOptions;
use support::fake_origin::{FakeOrigin, Mode};
use support::{error_code, options, pattern, Edge};

const FETCHES: &str = "ringcast_edge_origin_fetches_total";
const SERVE: Mode = Mode::Serve {
    delay: Duration::ZERO,
};

/// An edge proxying `origin` under `/media`, with `opts` otherwise.
fn http_edge(opts: EdgeOptions, origin: &FakeOrigin) -> Edge {
    Edge::start_with(opts.origin_url(&origin.url("/media")))
}

fn a_plain_directory_is_an_origin(legacy: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("v/a/1/720p")).expect("mkdir");
    let body = pattern(100_000, 1);
    std::fs::write(dir.path().join("v/a/1/720p/seg1.m4s"), &body).expect("write");
    let root = dir.path().to_path_buf();
    let edge = Edge::start_with(options(legacy).origin_dir(&root));
    let r = edge.get("/v/a/1/720p/seg1.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == body);
    assert_eq!(
        edge.get("/v/a/1/720p/seg1.m4s").header("x-cache"),
        Some("HIT")
    );
    assert_eq!(edge.get("/v/a/1/720p/seg9.m4s").status, 404);
    assert_eq!(
        edge.get("/v/a/1/720p").status,
        404,
        "a directory is no object"
    );
    assert!(
        !root.join(".tmp").exists(),
        "the origin directory is read-only"
    );
}

fn an_http_origin_is_proxied_and_its_404s_cached(legacy: bool) {
    let origin = FakeOrigin::start();
    let body = pattern(300_000, 2);
    origin.put("/media/v/h/1/720p/seg1.m4s", &body);
    origin.put("/media/v/h/1/720p/a%20b.m4s", b"spaced");
    let edge = http_edge(options(legacy).toml("not_found_ttl_ms = 60000"), &origin);
    let r = edge.get("/v/h/1/720p/seg1.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == body);
    assert_eq!(
        edge.get("/v/h/1/720p/seg1.m4s").header("x-cache"),
        Some("HIT")
    );
    assert_eq!(origin.requests(), 1);
    assert_eq!(edge.get("/v/h/1/720p/a%20b.m4s").text(), "spaced");
    let before = origin.requests();
    for _ in 0..3 {
        let r = edge.get("/v/h/1/720p/missing.m4s");
        assert_eq!(r.status, 404);
        assert_eq!(error_code(&r), "not_found");
    }
    assert_eq!(origin.requests() - before, 1, "404 is negative-cached");
    assert_eq!(edge.counter(FETCHES), origin.requests());
}

fn origin_failures_are_502_and_504_and_never_a_short_200(legacy: bool) {
    let origin = FakeOrigin::start();
    let body = pattern(200_000, 3);
    for i in 0..5 {
        origin.put(&format!("/media/v/f/1/720p/seg{i}.m4s"), &body);
    }
    let edge = http_edge(options(legacy).toml("origin_timeout_ms = 700"), &origin);

    origin.set_mode(Mode::Status(503));
    let r = edge.get("/v/f/1/720p/seg0.m4s");
    assert_eq!((r.status, error_code(&r).as_str()), (502, "origin_error"));
    assert!(!r.text().contains("127.0.0.1"), "no origin details leak");

    origin.set_mode(Mode::Hang);
    let started = Instant::now();
    let r = edge.get("/v/f/1/720p/seg1.m4s");
    assert_eq!((r.status, error_code(&r).as_str()), (504, "origin_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));

    for mode in [Mode::TruncateLength, Mode::TruncateChunked] {
        origin.set_mode(mode.clone());
        let r = edge.get("/v/f/1/720p/seg2.m4s");
        assert_eq!(r.status, 502, "{mode:?}: a truncated body is not a 200");
        assert_eq!(error_code(&r), "origin_error");
    }

    // Nothing of the failures was cached: once the origin recovers, every object is whole.
    origin.set_mode(SERVE);
    for i in 0..3 {
        let r = edge.get(&format!("/v/f/1/720p/seg{i}.m4s"));
        assert_eq!(
            (r.status, r.header("x-cache")),
            (200, Some("MISS")),
            "seg{i}"
        );
        assert!(r.body == body);
    }
    assert!(edge.counter("ringcast_edge_origin_errors_total") >= 4);

    // An origin that refuses connections is a 502 too.
    let url = format!("http://127.0.0.1:{}", ringcast_testkit::free_port());
    let edge = Edge::start_with(options(legacy).origin_url(&url));
    assert_eq!(edge.get("/v/f/1/720p/seg0.m4s").status, 502);
}

fn playlists_are_served_stale_while_revalidating_and_on_errors(legacy: bool) {
    let origin = FakeOrigin::start();
    let v1 = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n1/720p/index.m3u8\n";
    let v2 = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n2/720p/index.m3u8\n";
    origin.put("/media/v/s/master.m3u8", v1.as_bytes());
    // origin_timeout_ms is longer than any test step: the held refresh below must not time out
    // on a slow machine.
    let edge = http_edge(
        options(legacy).toml(
            "playlist_ttl_ms = 1000\n\
             playlist_stale_while_revalidate_ms = 2000\n\
             playlist_stale_if_error_ms = 60000\n\
             origin_timeout_ms = 60000",
        ),
        &origin,
    );
    let fetched_at = Instant::now();
    assert_eq!(edge.get("/v/s/master.m3u8").text(), v1);

    // v2 is published, but the origin holds every answer until the test releases it: once the
    // TTL has passed the edge answers from its stale copy while one background refresh waits.
    // An edge that waited for the refresh would answer only after origin_timeout_ms, with an
    // origin error counted: the checks below would fail, however fast or slow the machine.
    origin.put("/media/v/s/master.m3u8", v2.as_bytes());
    origin.set_mode(Mode::Held);
    let errors = edge.counter("ringcast_edge_origin_errors_total");
    let before = origin.requests();
    wait_until(Duration::from_secs(10), "the TTL to pass", || {
        let r = edge.get("/v/s/master.m3u8");
        assert_eq!((r.status, r.text().as_str()), (200, v1));
        r.header("x-cache") == Some("STALE")
    });
    wait_until(
        Duration::from_secs(10),
        "the refresh to reach the origin",
        || origin.held() == 1,
    );
    for _ in 0..5 {
        let r = edge.get("/v/s/master.m3u8");
        assert_eq!((r.status, r.text().as_str()), (200, v1));
        assert_eq!(r.header("x-cache"), Some("STALE"));
        let age: u64 = r.header("age").and_then(|a| a.parse().ok()).expect("Age");
        assert!(age <= fetched_at.elapsed().as_secs() + 1);
    }
    assert_eq!(
        origin.held(),
        1,
        "stale answers did not wait for the held refresh"
    );
    assert_eq!(
        edge.counter("ringcast_edge_origin_errors_total"),
        errors,
        "nothing timed out"
    );
    origin.release();
    wait_until(Duration::from_secs(10), "the refreshed master", || {
        edge.get("/v/s/master.m3u8").text() == v2
    });
    assert_eq!(origin.requests() - before, 1, "one background refresh");
    origin.set_mode(SERVE);

    // The origin fails: the last good copy keeps being served after the TTL and after the
    // stale-while-revalidate window, with a growing Age.
    origin.set_mode(Mode::Status(500));
    let errors = edge.counter("ringcast_edge_origin_errors_total");
    wait_until(Duration::from_secs(10), "a failed refresh", || {
        let r = edge.get("/v/s/master.m3u8");
        assert_eq!((r.status, r.text().as_str()), (200, v2));
        edge.counter("ringcast_edge_origin_errors_total") > errors
    });
    // Past TTL + stale-while-revalidate (1 s + 2 s after the refresh), still the stale copy,
    // its Age counting from the origin's answer (the exact windows are unit tests of
    // `tiers::policy` on a test clock).
    wait_until(
        Duration::from_secs(10),
        "an Age past TTL + stale-while-revalidate",
        || {
            let r = edge.get("/v/s/master.m3u8");
            assert_eq!((r.status, r.text().as_str()), (200, v2), "stale-if-error");
            assert_eq!(r.header("x-cache"), Some("STALE"));
            let age: u64 = r.header("age").and_then(|a| a.parse().ok()).expect("Age");
            age >= 3
        },
    );

    // Recovered: fresh again.
    origin.set_mode(SERVE);
    wait_until(Duration::from_secs(10), "a fresh master", || {
        edge.get("/v/s/master.m3u8").header("x-cache") != Some("STALE")
    });
}

both_drivers!(
    a_plain_directory_is_an_origin,
    an_http_origin_is_proxied_and_its_404s_cached,
    origin_failures_are_502_and_504_and_never_a_short_200,
    playlists_are_served_stale_while_revalidating_and_on_errors,
);
