//! The disk tier seen from outside: large segments are written to the cache directory and sent
//! with sendfile (bytes identical, HEAD and keep-alive framing intact, a slow reader makes the
//! sendfile loop wait for writability), the tier survives an edge restart, keeps to its byte
//! cap, and N concurrent misses for one segment cost one origin fetch and one disk fill. Both
//! drivers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ringcast_testkit::http::Conn;
use ringcast_testkit::EdgeOptions;
use support::fake_origin::{FakeOrigin, Mode};
use support::{options, pattern, Edge};

const FETCHES: &str = "ringcast_edge_origin_fetches_total";
const DISK_HITS: &str = "ringcast_edge_disk_hits_total";
const DISK_FILLS: &str = "ringcast_edge_disk_fills_total";
const MIN: u64 = 64 * 1024;

/// Options for an edge whose disk tier lives in `dir` (outside the edge's own temp dir, so a
/// second edge can reuse it).
fn disk_options(legacy: bool, dir: &Path, cap: u64) -> EdgeOptions {
    options(legacy).disk_cache(dir, cap, MIN)
}

/// Files under `{dir}/objects`, recursively.
fn cached_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("objects"), &mut out);
    out
}

fn segments_are_sent_from_disk_and_survive_a_restart(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 64 << 20));
    let big = pattern(6 * 1024 * 1024 + 123, 7);
    let small = pattern(1000, 8);
    edge.put("v/d/1/720p/seg1.m4s", &big);
    edge.put("v/d/1/720p/seg2.m4s", &small);

    let r = edge.get("/v/d/1/720p/seg1.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == big, "the filling request gets the object");
    assert_eq!(edge.counter(DISK_FILLS), 1);
    let file = cache.path().join("objects/v/d/1/720p/seg1.m4s");
    assert_eq!(std::fs::read(&file).expect("cached file"), big);

    // Hits on one keep-alive connection: sendfile bodies, then a memory body, then HEAD; every
    // response must be framed exactly (a byte too many or too few breaks the next one).
    let mut conn = edge.conn();
    for _ in 0..2 {
        let r = conn
            .request("GET", "/v/d/1/720p/seg1.m4s", &[], b"")
            .expect("GET");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-cache"), Some("HIT"));
        assert_eq!(r.header("x-cache-tier"), Some("disk"));
        assert_eq!(r.header("content-type"), Some("video/iso.segment"));
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(r.body == big, "sendfile body differs");
    }
    let r = conn
        .request("GET", "/v/d/1/720p/seg2.m4s", &[], b"")
        .expect("GET");
    assert!(r.body == small);
    assert_eq!(
        r.header("x-cache-tier"),
        None,
        "small objects stay in memory"
    );
    let r = conn
        .request("HEAD", "/v/d/1/720p/seg1.m4s", &[], b"")
        .expect("HEAD");
    assert_eq!(
        r.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
    let r = conn
        .request("GET", "/v/d/1/720p/seg1.m4s", &[], b"")
        .expect("GET");
    assert!(r.body == big, "framing intact after HEAD");
    assert!(edge.counter(DISK_HITS) >= 4);

    // A reader that waits before reading: the socket buffer fills, sendfile hits EAGAIN and the
    // edge must wait for writability instead of failing or blocking its worker.
    let mut slow = TcpStream::connect(edge.addr).expect("connect");
    slow.write_all(b"GET /v/d/1/720p/seg1.m4s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile the worker still answers others.
    assert!(edge.get("/v/d/1/720p/seg2.m4s").body == small);
    let mut raw = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    slow.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(raw[split..] == big[..], "slow reader got different bytes");

    // Restart with an empty origin: the segment comes from the disk tier, no origin fetch.
    drop(edge);
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 64 << 20));
    let r = edge.get("/v/d/1/720p/seg1.m4s");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert!(r.body == big, "after restart");
    assert_eq!(edge.counter(FETCHES), 0, "served without the origin");
    let age: u64 = r.header("age").and_then(|a| a.parse().ok()).expect("Age");
    assert!(age < 600, "Age from the file's fill time: {age}");
    assert_eq!(edge.counter("ringcast_edge_disk_cache_entries"), 1);
}

fn the_disk_tier_keeps_to_its_cap(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let cap = 1024 * 1024;
    let edge = Edge::start_with(disk_options(legacy, cache.path(), cap));
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| pattern(300 * 1024, i)).collect();
    for (i, b) in bodies.iter().enumerate() {
        edge.put(&format!("v/cap/1/720p/seg{i}.m4s"), b);
    }
    for (i, b) in bodies.iter().enumerate() {
        assert!(edge.get(&format!("/v/cap/1/720p/seg{i}.m4s")).body == *b);
    }
    let used = edge.counter("ringcast_edge_disk_cache_bytes");
    assert!(used <= cap, "{used} > {cap}");
    assert_eq!(edge.counter("ringcast_edge_disk_cache_entries"), 3);
    assert_eq!(edge.counter("ringcast_edge_disk_evictions_total"), 2);
    let files = cached_files(cache.path());
    assert_eq!(files.len(), 3, "evicted files are deleted: {files:?}");
    let on_disk: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).expect("meta").len())
        .sum();
    assert!(on_disk <= cap);
    // The evicted first segment is fetched again, intact.
    let fetches = edge.counter(FETCHES);
    let r = edge.get("/v/cap/1/720p/seg0.m4s");
    assert!(r.body == bodies[0]);
    assert_eq!(edge.counter(FETCHES) - fetches, 1);
    // A restart with a smaller cap keeps what fits.
    drop(edge);
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 700 * 1024));
    assert_eq!(edge.counter("ringcast_edge_disk_cache_entries"), 2);
    assert_eq!(cached_files(cache.path()).len(), 2);
}

fn concurrent_disk_misses_make_one_fetch_and_one_fill(legacy: bool) {
    const CLIENTS: usize = 60;
    let cache = tempfile::tempdir().expect("tempdir");
    let origin = FakeOrigin::start();
    let body = Arc::new(pattern(2 * 1024 * 1024, 9));
    origin.put("/v/storm/1/720p/seg1.m4s", &body);
    // A slow origin answer, so every request arrives while the one fetch is in flight.
    origin.set_mode(Mode::Serve {
        delay: Duration::from_millis(800),
    });
    let url = origin.url("");
    // The edge's default capacity (10 GiB), far more than the one segment.
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 10 << 30).origin_url(&url));
    let conns: Vec<Conn> = (0..CLIENTS).map(|_| edge.conn()).collect();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (barrier, body) = (barrier.clone(), body.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = conn
                    .request("GET", "/v/storm/1/720p/seg1.m4s", &[], b"")
                    .expect("GET");
                assert_eq!(r.status, 200);
                assert!(r.body == *body, "wrong body");
                r.header("x-cache-tier").map(str::to_string)
            })
        })
        .collect();
    let tiers: Vec<Option<String>> = threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    assert_eq!(
        origin.requests(),
        1,
        "{CLIENTS} concurrent misses, one origin request"
    );
    assert_eq!(edge.counter(FETCHES), 1);
    assert_eq!(edge.counter(DISK_FILLS), 1);
    assert!(
        edge.counter("ringcast_edge_cache_coalesced_total") >= 1,
        "no request waited for the fetch; the test proved nothing"
    );
    // All but the loader were answered from the file.
    assert_eq!(
        tiers
            .iter()
            .filter(|t| t.as_deref() == Some("disk"))
            .count(),
        CLIENTS - 1
    );
}

fn a_failed_fetch_leaves_nothing_on_disk(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let origin = FakeOrigin::start();
    let body = pattern(512 * 1024, 3);
    origin.put("/v/t/1/720p/seg1.m4s", &body);
    origin.set_mode(Mode::TruncateLength);
    let url = origin.url("");
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 10 << 30).origin_url(&url));
    assert_eq!(edge.get("/v/t/1/720p/seg1.m4s").status, 502);
    assert!(
        cached_files(cache.path()).is_empty(),
        "a truncated body was cached"
    );
    assert_eq!(edge.counter(DISK_FILLS), 0);
    origin.set_mode(Mode::Serve {
        delay: Duration::ZERO,
    });
    let r = edge.get("/v/t/1/720p/seg1.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == body);
    assert_eq!(cached_files(cache.path()).len(), 1);
}

/// HTTP semantics hold for disk-tier objects too: single ranges come out of sendfile at the right
/// offset, 416 past the end, the content-derived ETag answers 304 and is the same after a
/// restart (the file is hashed again), and purge removes the file, not only the memory entry.
fn disk_objects_honour_ranges_validators_and_purge(legacy: bool) {
    const ADMIN: &str = "disk-admin-key-0123";
    let cache = tempfile::tempdir().expect("tempdir");
    let options = |legacy| disk_options(legacy, cache.path(), 64 << 20).admin_key(ADMIN);
    let edge = Edge::start_with(options(legacy));
    let big = pattern(1024 * 1024 + 17, 3);
    let len = big.len();
    edge.put("v/r/1/720p/seg1.m4s", &big);
    let full = edge.get("/v/r/1/720p/seg1.m4s");
    assert_eq!(full.status, 200);
    let etag = full.header("etag").expect("ETag").to_string();

    let mut conn = edge.conn();
    let mut get = |headers: &[(&str, &str)]| {
        conn.request("GET", "/v/r/1/720p/seg1.m4s", headers, b"")
            .expect("GET")
    };
    let r = get(&[("Range", "bytes=100000-100099")]);
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100000-100099/{len}").as_str())
    );
    assert!(r.body == big[100_000..100_100], "range bytes differ");
    let r = get(&[("Range", "bytes=-10")]);
    assert_eq!(r.status, 206);
    assert!(r.body == big[len - 10..], "suffix range bytes differ");
    let past = format!("bytes={len}-");
    let r = get(&[("Range", past.as_str())]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    let r = get(&[("If-None-Match", etag.as_str())]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    // Framing still intact on the same connection after 206/416/304.
    let r = get(&[]);
    assert!(r.body == big, "full body after conditional answers");

    // Restart on the same cache directory: same validator, still 304, no origin fetch.
    drop(edge);
    let edge = Edge::start_with(options(legacy));
    let r = edge.get("/v/r/1/720p/seg1.m4s");
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert_eq!(
        r.header("etag"),
        Some(etag.as_str()),
        "ETag changed across a restart"
    );
    let mut conn = edge.conn();
    let r = conn
        .request(
            "GET",
            "/v/r/1/720p/seg1.m4s",
            &[("If-None-Match", etag.as_str())],
            b"",
        )
        .expect("GET");
    assert_eq!(r.status, 304);
    assert_eq!(edge.counter(FETCHES), 0);

    // Purge reaches the disk tier: the file goes, and this edge's (empty) origin answers 404.
    let bearer = format!("Bearer {ADMIN}");
    let r = conn
        .request(
            "POST",
            "/purge",
            &[
                ("Authorization", bearer.as_str()),
                ("Content-Type", "application/json"),
            ],
            br#"{"keys":["v/r/1/720p/seg1.m4s"]}"#,
        )
        .expect("POST /purge");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(v["tiers"]["disk"], 1, "{v}");
    assert!(
        cached_files(cache.path()).is_empty(),
        "file left after purge"
    );
    assert_eq!(edge.get("/v/r/1/720p/seg1.m4s").status, 404);
}

/// Pipelined requests mixing memory and disk answers: the queued memory answers and the disk
/// answer's head go out in front of its sendfile body, so order and framing must hold.
fn pipelined_memory_and_disk_answers_keep_order_and_framing(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 64 << 20));
    let big = pattern(3 * 1024 * 1024 + 17, 11);
    let small = pattern(700, 12);
    edge.put("v/q/1/720p/seg1.m4s", &big);
    edge.put("v/q/1/720p/seg2.m4s", &small);
    // Fill both tiers first so every pipelined answer is a hit.
    assert!(edge.get("/v/q/1/720p/seg1.m4s").body == big);
    assert!(edge.get("/v/q/1/720p/seg2.m4s").body == small);

    let mut conn = edge.conn();
    conn.send_raw(
        b"GET /v/q/1/720p/seg2.m4s HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /v/q/1/720p/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /v/q/1/720p/seg1.m4s HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\n\r\n\
          HEAD /v/q/1/720p/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /v/q/1/720p/seg2.m4s HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("send pipeline");
    let r = conn.read_response(false).expect("1");
    assert!(r.status == 200 && r.body == small, "1: memory segment");
    assert_eq!(conn.read_response(false).expect("2").text(), "ok");
    let r = conn.read_response(false).expect("3");
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert!(r.body == big, "3: disk segment");
    let r = conn.read_response(false).expect("4");
    assert_eq!(r.status, 206);
    assert!(r.body[..] == big[1000..2000], "4: disk range");
    let r = conn.read_response(true).expect("5");
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some(big.len().to_string().as_str()))
    );
    let r = conn.read_response(false).expect("6");
    assert!(r.body == small, "6: framing intact after the disk answers");
    assert!(edge.counter(DISK_HITS) >= 3);
}

/// A disk-tier file pushed out of the page cache is read back in off the worker (counted)
/// before sendfile, and sent intact; a warm file is not read again.
fn cold_disk_files_are_warmed_before_sendfile(legacy: bool) {
    use std::os::fd::AsRawFd;
    const COLD: &str = "ringcast_edge_disk_cold_reads_total";
    let cache = tempfile::tempdir().expect("tempdir");
    let edge = Edge::start_with(disk_options(legacy, cache.path(), 64 << 20));
    let big = pattern(2 * 1024 * 1024 + 5, 13);
    edge.put("v/c/1/720p/seg1.m4s", &big);
    assert!(edge.get("/v/c/1/720p/seg1.m4s").body == big);
    let path = cache.path().join("objects/v/c/1/720p/seg1.m4s");
    let file = std::fs::File::open(&path).expect("cached file");
    file.sync_all().expect("sync");
    // SAFETY: advisory call on a descriptor we own.
    let dropped = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(dropped, 0);
    if ringcast_edge::tiers::page_cache::resident(&file, big.len() as u64) != Some(false) {
        eprintln!("no cachestat or pages not evictable here: nothing to check");
        return;
    }

    let r = edge.get("/v/c/1/720p/seg1.m4s");
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert!(r.body == big, "cold file sent intact");
    assert_eq!(
        edge.counter(COLD),
        1,
        "the cold file was read off the worker"
    );
    assert_eq!(
        ringcast_edge::tiers::page_cache::resident(&file, big.len() as u64),
        Some(true)
    );
    assert!(edge.get("/v/c/1/720p/seg1.m4s").body == big);
    assert_eq!(edge.counter(COLD), 1, "a warm file is not read again");
}

/// The LRU order survives a clean restart: a segment filled first but hit last outlives one
/// filled later and not hit since (fill order alone would evict it first).
fn lru_order_survives_a_restart(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let cap = 1024 * 1024;
    let edge = Edge::start_with(disk_options(legacy, cache.path(), cap));
    let bodies: Vec<Vec<u8>> = (0..4).map(|i| pattern(300 * 1024, 20 + i)).collect();
    for (i, b) in bodies.iter().enumerate().take(3) {
        edge.put(&format!("v/lru/1/720p/seg{i}.m4s"), b);
    }
    for (i, b) in bodies.iter().enumerate().take(3) {
        assert!(edge.get(&format!("/v/lru/1/720p/seg{i}.m4s")).body == *b);
    }
    // seg0 was filled first but is now the most recently used.
    assert_eq!(
        edge.get("/v/lru/1/720p/seg0.m4s").header("x-cache-tier"),
        Some("disk")
    );
    drop(edge); // SIGTERM: a clean shutdown saves the order
    assert!(cache.path().join("recency").is_file(), "no saved order");

    let edge = Edge::start_with(disk_options(legacy, cache.path(), cap));
    assert_eq!(edge.counter("ringcast_edge_disk_cache_entries"), 3);
    // A new edge has a new (empty) origin: the fourth segment comes from it.
    edge.put("v/lru/1/720p/seg3.m4s", &bodies[3]);
    assert!(edge.get("/v/lru/1/720p/seg3.m4s").body == bodies[3]);
    let files = cached_files(cache.path());
    let has = |i: usize| files.iter().any(|f| f.ends_with(format!("seg{i}.m4s")));
    assert!(
        has(0) && !has(1) && has(2) && has(3),
        "seg1 (least recently used) is the one evicted: {files:?}"
    );
}

both_drivers!(
    lru_order_survives_a_restart,
    cold_disk_files_are_warmed_before_sendfile,
    pipelined_memory_and_disk_answers_keep_order_and_framing,
    segments_are_sent_from_disk_and_survive_a_restart,
    disk_objects_honour_ranges_validators_and_purge,
    the_disk_tier_keeps_to_its_cap,
    concurrent_disk_misses_make_one_fetch_and_one_fill,
    a_failed_fetch_leaves_nothing_on_disk,
);
