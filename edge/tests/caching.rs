//! The memory cache seen from outside: hits, single-flight coalescing of concurrent misses,
//! playlist TTL and negative caching. Counts come from `/metrics`. Both drivers.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use ringcast_testkit::http::Conn;
use ringcast_testkit::wait_until;
use support::{options, pattern, Edge};

const FETCHES: &str = "ringcast_edge_origin_fetches_total";
const HITS: &str = "ringcast_edge_cache_hits_total";
const MISSES: &str = "ringcast_edge_cache_misses_total";
const COALESCED: &str = "ringcast_edge_cache_coalesced_total";

fn second_fetch_of_a_segment_is_a_hit(legacy: bool) {
    let edge = Edge::start(legacy);
    let body = pattern(20_000, 4);
    edge.put("v/c/1/720p/seg7.m4s", &body);
    let (fetches, hits, misses) = (
        edge.counter(FETCHES),
        edge.counter(HITS),
        edge.counter(MISSES),
    );
    let r1 = edge.get("/v/c/1/720p/seg7.m4s");
    let r2 = edge.get("/v/c/1/720p/seg7.m4s");
    assert!(r1.body == body && r2.body == body);
    assert_eq!(r1.header("x-cache"), Some("MISS"));
    assert_eq!(r2.header("x-cache"), Some("HIT"));
    assert_eq!(edge.counter(FETCHES) - fetches, 1, "one origin fetch");
    assert_eq!(edge.counter(HITS) - hits, 1, "one hit");
    assert_eq!(edge.counter(MISSES) - misses, 1, "one miss");
    assert!(edge.counter("ringcast_edge_cache_bytes") >= body.len() as u64);
    // Serving from memory: deleting the origin copy does not matter for an immutable object.
    std::fs::remove_file(edge.stack().object_path("v/c/1/720p/seg7.m4s")).expect("remove");
    assert!(edge.get("/v/c/1/720p/seg7.m4s").body == body);
}

fn concurrent_misses_make_one_origin_fetch(legacy: bool) {
    const CLIENTS: usize = 50;
    let edge = Edge::start(legacy);
    // A few MiB so the origin read takes long enough for requests to pile up behind it.
    let body = Arc::new(pattern(2 * 1024 * 1024, 5));
    let mut saw_coalescing = false;
    for attempt in 0..5 {
        let key = format!("v/burst/1/720p/seg{attempt}.m4s");
        edge.put(&key, &body);
        let (fetches, coalesced) = (edge.counter(FETCHES), edge.counter(COALESCED));
        // Connect first, then release every request at once.
        let conns: Vec<Conn> = (0..CLIENTS).map(|_| edge.conn()).collect();
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let threads: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let (barrier, body, target) = (barrier.clone(), body.clone(), format!("/{key}"));
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = conn.request("GET", &target, &[], b"").expect("GET");
                    assert_eq!(r.status, 200);
                    assert!(r.body == *body, "wrong body");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
        assert_eq!(
            edge.counter(FETCHES) - fetches,
            1,
            "attempt {attempt}: {CLIENTS} concurrent misses, one fetch"
        );
        if edge.counter(COALESCED) > coalesced {
            saw_coalescing = true;
            break;
        }
    }
    assert!(
        saw_coalescing,
        "requests never overlapped an origin fetch; the test proved nothing"
    );
}

fn top_level_master_is_refetched_after_its_ttl(legacy: bool) {
    let edge = Edge::start_with(options(legacy).toml("playlist_ttl_ms = 2000"));
    let v1 = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n1/720p/index.m3u8\n";
    let v2 = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n2/720p/index.m3u8\n";
    edge.put("v/live/master.m3u8", v1.as_bytes());
    let fetches = edge.counter(FETCHES);
    assert_eq!(edge.get("/v/live/master.m3u8").text(), v1);
    edge.put("v/live/master.m3u8", v2.as_bytes());
    // Within the TTL the edge still serves its copy...
    let r = edge.get("/v/live/master.m3u8");
    assert_eq!((r.text().as_str(), r.header("x-cache")), (v1, Some("HIT")));
    // ...and once it expires, the new version.
    wait_until(
        Duration::from_secs(15),
        "the edge to serve the new master",
        || edge.get("/v/live/master.m3u8").text() == v2,
    );
    assert_eq!(
        edge.counter(FETCHES) - fetches,
        2,
        "one fetch per TTL period"
    );
}

fn a_missing_object_appears_once_published(legacy: bool) {
    let edge = Edge::start_with(options(legacy).toml("not_found_ttl_ms = 2000"));
    assert_eq!(edge.get("/v/new/1/720p/seg0.m4s").status, 404);
    let fetches = edge.counter(FETCHES);
    // Remembered briefly: the immediate retry costs no origin fetch.
    assert_eq!(edge.get("/v/new/1/720p/seg0.m4s").status, 404);
    assert_eq!(edge.counter(FETCHES), fetches);
    edge.put("v/new/1/720p/seg0.m4s", b"now here");
    wait_until(
        Duration::from_secs(15),
        "the new object to be served",
        || edge.get("/v/new/1/720p/seg0.m4s").status == 200,
    );
    assert_eq!(edge.get("/v/new/1/720p/seg0.m4s").text(), "now here");
}

both_drivers!(
    second_fetch_of_a_segment_is_a_hit,
    concurrent_misses_make_one_origin_fetch,
    top_level_master_is_refetched_after_its_ttl,
    a_missing_object_appears_once_published,
);
