//! Live LL-HLS through the real edge binary, a real redis-server and a filesystem store: the test
//! is the packager (it writes part and segment objects, then XADDs the real `LiveEvent` JSON to
//! `rc:events:{video}:{version}:{rendition}`), and checks what players would see: playlists that
//! npm hls-parser accepts in strict mode, blocking reloads answered within 20 ms of the XADD,
//! 400/503, held preload-hinted parts, delta updates, ENDLIST, EVENT playlists, the store
//! fallback for VOD, joining a trimmed stream and Redis disconnects. Both drivers.

mod support;

use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringcast_proto::live::{events_stream_key, LiveEvent, EVENT_FIELD};
use ringcast_testkit::hls_parser::{self, js_dir};
use ringcast_testkit::http::{self, Response};
use ringcast_testkit::{wait_until, RedisServer, Stack};
use support::{error_code, options, pattern, Edge};

const VIDEO: &str = "live1";
const TD: u64 = 1;
const PART: f64 = 0.25;
const PARTS_PER_SEGMENT: u32 = 4;
const STARTED_MS: u64 = 1_795_766_400_000;
const BLOCKED: &str = "ringcast_edge_live_blocked_total";
const PART_WAITS: &str = "ringcast_edge_live_part_waits_total";
const RENDERS: &str = "ringcast_edge_live_renders_total";
const PREFETCHES: &str = "ringcast_edge_live_part_prefetches_total";
const FETCHES: &str = "ringcast_edge_origin_fetches_total";

/// The test's packager: objects into the edge's store, events into Redis.
struct Packager<'a> {
    conn: redis::Connection,
    edge: &'a Edge,
    video: String,
}

impl<'a> Packager<'a> {
    fn new(redis: &RedisServer, edge: &'a Edge, video: &str) -> Self {
        let conn = redis::Client::open(redis.url.as_str())
            .and_then(|c| c.get_connection())
            .expect("redis connection");
        Self {
            conn,
            edge,
            video: video.to_owned(),
        }
    }

    fn key(&self, rendition: &str, file: &str) -> String {
        format!("v/{}/1/{rendition}/{file}", self.video)
    }

    fn put(&self, key: &str, body: &[u8]) {
        self.edge.put(key, body);
    }

    fn xadd(&mut self, rendition: &str, event: &LiveEvent) {
        let _: String = redis::cmd("XADD")
            .arg(events_stream_key(&self.video, 1, rendition))
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(event.to_json())
            .query(&mut self.conn)
            .expect("XADD");
    }

    fn start(&mut self, rendition: &str) {
        self.put(&self.key(rendition, "init.mp4"), b"init");
        self.xadd(
            rendition,
            &LiveEvent::Start {
                target_duration: TD,
                part_target: PART,
                init: "init.mp4".into(),
                started_ms: STARTED_MS,
                part_hold_back: None,
            },
        );
    }

    fn part_body(rendition: &str, msn: u64, part: u32) -> Vec<u8> {
        let seed = (msn as u8).wrapping_mul(7) ^ (part as u8) ^ rendition.len() as u8;
        pattern(3000 + part as usize, seed)
    }

    /// Stores part `part` of segment `msn` (not yet announced).
    fn put_part(&self, rendition: &str, msn: u64, part: u32) -> Vec<u8> {
        let body = Self::part_body(rendition, msn, part);
        self.put(
            &self.key(rendition, &format!("part{msn}.{part}.m4s")),
            &body,
        );
        body
    }

    fn announce_part(&mut self, rendition: &str, msn: u64, part: u32) {
        self.xadd(
            rendition,
            &LiveEvent::Part {
                msn,
                part,
                duration: PART,
                independent: part == 0,
            },
        );
    }

    fn part(&mut self, rendition: &str, msn: u64, part: u32) {
        self.put_part(rendition, msn, part);
        self.announce_part(rendition, msn, part);
    }

    fn segment_end(&mut self, rendition: &str, msn: u64) {
        let body: Vec<u8> = (0..PARTS_PER_SEGMENT)
            .flat_map(|p| Self::part_body(rendition, msn, p))
            .collect();
        self.put(&self.key(rendition, &format!("seg{msn}.m4s")), &body);
        self.xadd(
            rendition,
            &LiveEvent::SegmentEnd {
                msn,
                duration: PART * f64::from(PARTS_PER_SEGMENT),
                program_date_time_ms: STARTED_MS + msn * 1000,
            },
        );
    }

    /// A whole segment: its parts, then its end.
    fn segment(&mut self, rendition: &str, msn: u64) {
        for p in 0..PARTS_PER_SEGMENT {
            self.part(rendition, msn, p);
        }
        self.segment_end(rendition, msn);
    }

    /// A one-rendition (`720p`) stream: its master, `Start` and `segments` complete segments.
    fn begin(&mut self, segments: u64) {
        self.master(&["720p"]);
        self.start("720p");
        for msn in 0..segments {
            self.segment("720p", msn);
        }
    }

    fn master(&self, renditions: &[&str]) {
        let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        for (i, r) in renditions.iter().enumerate() {
            text.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"avc1.64001f,mp4a.40.2\"\n{r}/index.m3u8\n",
                2_000_000 / (i + 1)
            ));
        }
        self.put(&format!("v/{}/1/master.m3u8", self.video), text.as_bytes());
    }
}

struct Setup {
    // Field order: the edge stops before Redis.
    edge: Edge,
    redis: RedisServer,
}

fn setup(legacy: bool) -> Setup {
    setup_reading(legacy, 200)
}

/// An edge and its Redis, the followers reading with `XREAD BLOCK read_block_ms`.
fn setup_reading(legacy: bool, read_block_ms: u64) -> Setup {
    let redis = RedisServer::start();
    let edge = Edge::start_on(
        Stack::builder().redis_at(&redis.url),
        options(legacy).toml(format!("[live]\nread_block_ms = {read_block_ms}")),
    );
    Setup { edge, redis }
}

fn playlist_path(rendition: &str) -> String {
    format!("/v/{VIDEO}/1/{rendition}/index.m3u8")
}

/// A GET on its own thread; the response and the moment it was complete.
fn spawn_get(edge: &Edge, target: String) -> JoinHandle<(Response, Instant)> {
    let addr = edge.addr;
    std::thread::spawn(move || {
        let r = http::get(addr, &target).unwrap_or_else(|e| panic!("GET {target}: {e}"));
        (r, Instant::now())
    })
}

/// Waits until the counter `series` reached `at_least` (the request is held by the edge).
fn wait_counter(edge: &Edge, series: &str, at_least: u64) {
    wait_until(Duration::from_secs(10), series, || {
        edge.counter(series) >= at_least
    });
}

fn assert_playlist(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    r.text()
}

// ---- hls-parser ----------------------------------------------------------------------------

/// The validator the VOD end-to-end test uses: master plus every media playlist, over HTTP.
fn validate_over_http(edge: &Edge) {
    let js = js_dir().join("validate_hls.mjs");
    let url = format!("http://{}/v/{VIDEO}/1/master.m3u8", edge.addr);
    let o = Command::new("node")
        .arg(js)
        .arg(&url)
        .output()
        .expect("run node");
    assert!(
        o.status.success(),
        "validate_hls.mjs: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---- tests ---------------------------------------------------------------------------------

fn serves_live_playlists_that_pass_hls_parser(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.master(&["720p", "360p"]);
    for r in ["720p", "360p"] {
        pk.start(r);
        for msn in 0..3 {
            pk.segment(r, msn);
        }
        pk.part(r, 3, 0);
    }
    let r = edge.get(&playlist_path("720p"));
    let text = assert_playlist(&r);
    for needle in [
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:1",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,",
        "#EXT-X-PART-INF:PART-TARGET=0.25",
        "#EXT-X-MAP:URI=\"init.mp4\"",
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-27T08:00:00.000Z",
        "#EXT-X-PART:DURATION=0.25000,URI=\"part3.0.m4s\",INDEPENDENT=YES",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part3.1.m4s\"",
        "#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=3,LAST-PART=0",
        "seg2.m4s",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(
        !text.contains("ENDLIST") && !text.contains("PLAYLIST-TYPE"),
        "{text}"
    );
    assert!(
        !text.contains("720p/index.m3u8"),
        "no report of itself:\n{text}"
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=0"));
    assert_eq!(r.header("age"), Some("0"));
    // Media and parts come from the store as usual.
    let part = edge.get(&format!("/v/{VIDEO}/1/720p/part3.0.m4s"));
    assert_eq!(part.status, 200);
    assert_eq!(part.body, Packager::part_body("720p", 3, 0));

    let mut bodies = vec![text, assert_playlist(&edge.get(&playlist_path("360p")))];
    bodies.push(assert_playlist(
        &edge.get(&format!("{}?_HLS_msn=3&_HLS_part=0", playlist_path("720p"))),
    ));
    hls_parser::assert_bodies(&bodies, hls_parser::Expect::Media);
    validate_over_http(&edge);
}

/// `read_block_ms` of [`blocking_reload_is_woken_by_the_announcement`]: far above the 3 s a held
/// request waits (3 × TD) before its 503.
const LONG_READ_BLOCK_MS: u64 = 10_000;

/// Every held blocking reload is answered by the announcement of its part. The follower reads
/// with `XREAD BLOCK` of [`LONG_READ_BLOCK_MS`] and a held request gives up with 503 after
/// 3 × TD, so a 200 that lists the part can only come from a wake-up driven by the event: not
/// from the request's timeout, nor from polling the stream. How fast the wake-up is is measured,
/// not asserted: `cargo bench -p ringcast-benches --bench live_wakeup` (publish → woken request
/// on a core) and `scripts/bench-live` (blocking reload p99 under load).
fn blocking_reload_is_woken_by_the_announcement(legacy: bool) {
    let Setup { edge, redis } = setup_reading(legacy, LONG_READ_BLOCK_MS);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    assert_playlist(&edge.get(&playlist_path("720p")));

    let mut bodies = Vec::new();
    let mut blocked = edge.counter(BLOCKED);
    let unavailable = edge.counter("ringcast_edge_live_blocked_unavailable_total");
    for msn in 1..51u64 {
        for part in 0..PARTS_PER_SEGMENT {
            let target = format!("{}?_HLS_msn={msn}&_HLS_part={part}", playlist_path("720p"));
            let waiter = spawn_get(&edge, target);
            blocked += 1;
            wait_counter(&edge, BLOCKED, blocked);
            pk.part("720p", msn, part);
            let (r, _) = waiter.join().expect("waiter");
            let text = assert_playlist(&r);
            assert!(
                text.contains(&format!("URI=\"part{msn}.{part}.m4s\"")),
                "part {msn}.{part} missing:\n{text}"
            );
            assert_eq!(r.header("cache-control"), Some("public, max-age=6"));
            if part == PARTS_PER_SEGMENT - 1 {
                bodies.push(text);
            }
        }
        pk.segment_end("720p", msn);
    }
    assert_eq!(
        edge.counter("ringcast_edge_live_blocked_unavailable_total"),
        unavailable,
        "no held request ran into its timeout"
    );
    hls_parser::assert_bodies(&bodies, hls_parser::Expect::Media);
}

const FRESH_HOLDS: &str = "ringcast_edge_live_fresh_holds_total";

/// A request without directives (a player's first) is answered when the next part is listed,
/// not with the playlist as it stood on arrival: players place their start position from it as
/// if it were the live edge of the moment it arrived. A producer that stays silent gets the
/// current playlist after two part targets (200, not the 503 of a blocking reload).
fn plain_request_is_answered_with_the_next_part(legacy: bool) {
    let Setup { edge, redis } = setup_reading(legacy, LONG_READ_BLOCK_MS);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    pk.part("720p", 1, 0);
    // The follower has the state (a blocking request for the newest part answers at once).
    assert_playlist(&edge.get(&format!("{}?_HLS_msn=1&_HLS_part=0", playlist_path("720p"))));
    let holds = edge.counter(FRESH_HOLDS);
    let blocked = edge.counter(BLOCKED);
    let waiter = spawn_get(&edge, playlist_path("720p"));
    wait_counter(&edge, FRESH_HOLDS, holds + 1);
    let announced = Instant::now();
    pk.part("720p", 1, 1);
    let (r, done) = waiter.join().expect("waiter");
    let text = assert_playlist(&r);
    assert!(
        text.contains("URI=\"part1.1.m4s\"")
            && text.contains("PRELOAD-HINT:TYPE=PART,URI=\"part1.2.m4s\""),
        "answered with the part announced while it was held:\n{text}"
    );
    assert!(done >= announced);
    assert_eq!(r.header("cache-control"), Some("public, max-age=0"));
    assert_eq!(edge.counter(BLOCKED), blocked, "not a blocking reload");

    // Nothing comes: the current playlist after 2 × PART-TARGET (0.5 s here), no 503.
    let unavailable = edge.counter("ringcast_edge_live_blocked_unavailable_total");
    let t = Instant::now();
    let r = edge.get(&playlist_path("720p"));
    let waited = t.elapsed();
    let text = assert_playlist(&r);
    assert!(
        text.contains("URI=\"part1.1.m4s\"") && !text.contains("part1.2.m4s\","),
        "{text}"
    );
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_millis(2500),
        "held about two part targets, got {waited:?}"
    );
    assert_eq!(edge.counter(FRESH_HOLDS), holds + 2);
    assert_eq!(
        edge.counter("ringcast_edge_live_blocked_unavailable_total"),
        unavailable
    );

    // An ended playlist is answered at once.
    pk.xadd(
        "720p",
        &LiveEvent::SegmentEnd {
            msn: 1,
            duration: 2.0 * PART,
            program_date_time_ms: STARTED_MS + 1000,
        },
    );
    pk.xadd("720p", &LiveEvent::End { last_msn: 1 });
    wait_until(Duration::from_secs(10), "ENDLIST", || {
        edge.get(&playlist_path("720p"))
            .text()
            .contains("#EXT-X-ENDLIST")
    });
    let t = Instant::now();
    assert_playlist(&edge.get(&playlist_path("720p")));
    assert!(t.elapsed() < Duration::from_millis(400));
}

fn identical_blocking_requests_coalesce(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    assert_playlist(&edge.get(&playlist_path("720p")));
    let (blocked, renders) = (edge.counter(BLOCKED), edge.counter(RENDERS));
    const N: u64 = 12;
    // Same directives, different spelling and extra parameters: one cache key.
    let waiters: Vec<_> = (0..N)
        .map(|i| {
            let q = if i % 2 == 0 {
                "_HLS_msn=1&_HLS_part=0".to_owned()
            } else {
                format!("_HLS_part=0&token={i}&_HLS_msn=01")
            };
            spawn_get(&edge, format!("{}?{q}", playlist_path("720p")))
        })
        .collect();
    wait_counter(&edge, BLOCKED, blocked + N);
    pk.part("720p", 1, 0);
    let responses: Vec<_> = waiters
        .into_iter()
        .map(|w| {
            let (r, _) = w.join().expect("waiter");
            assert_playlist(&r);
            r
        })
        .collect();
    assert!(responses.iter().all(|r| r.body == responses[0].body));
    let rendered = edge.counter(RENDERS) - renders;
    assert!(
        (1..=2).contains(&rendered),
        "{N} identical requests on 2 workers → at most one render per worker, got {rendered}"
    );
    // The render's first response says MISS, the others HIT with the same head (shared per
    // second on each worker): the fields of a blocking playlist, whichever way it was built.
    let misses = responses
        .iter()
        .filter(|r| r.header("x-cache") == Some("MISS"))
        .count() as u64;
    assert_eq!(misses, rendered, "one MISS per render");
    for r in &responses {
        assert!(matches!(r.header("x-cache"), Some("HIT" | "MISS")));
        assert_eq!(
            r.header("cache-control"),
            responses[0].header("cache-control")
        );
        assert!(r
            .header("cache-control")
            .is_some_and(|c| c.starts_with("public, max-age=")));
        assert_eq!(
            r.header("content-type"),
            Some("application/vnd.apple.mpegurl")
        );
        assert!(r.header("age").is_some_and(|a| a.parse::<u64>().is_ok()));
        assert!(r.header("date").is_some());
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        // No `Origin` in these requests: no CORS pair, but `Vary: Origin` (ADR 0012).
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert!(
            r.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("vary")
                && v.split(',').any(|f| f.trim() == "Origin")),
            "Vary: Origin missing: {:?}",
            r.headers
        );
    }
}

/// A publish makes the serving cores load the newest part into memory, so the players it woke
/// find it cached: one origin fetch before any of them asks, then hits.
fn announced_parts_are_prefetched(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    assert_playlist(&edge.get(&playlist_path("720p")));
    let (blocked, prefetches, fetches) = (
        edge.counter(BLOCKED),
        edge.counter(PREFETCHES),
        edge.counter(FETCHES),
    );
    let waiter = spawn_get(
        &edge,
        format!("{}?_HLS_msn=1&_HLS_part=0", playlist_path("720p")),
    );
    wait_counter(&edge, BLOCKED, blocked + 1);
    let body = pk.put_part("720p", 1, 0);
    pk.announce_part("720p", 1, 0);
    let (r, _) = waiter.join().expect("waiter");
    assert!(assert_playlist(&r).contains("URI=\"part1.0.m4s\""));
    wait_counter(&edge, PREFETCHES, prefetches + 1);
    wait_counter(&edge, FETCHES, fetches + 1);
    for _ in 0..3 {
        let r = edge.get(&format!("/v/{VIDEO}/1/720p/part1.0.m4s"));
        assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
        assert_eq!(r.body, body);
    }
    assert_eq!(
        edge.counter(FETCHES),
        fetches + 1,
        "one fetch, by the prefetch"
    );
}

/// A part several viewers fetch goes out from a shared in-memory file (`live::hot_parts`, by
/// `sendfile` on plain connections) from its second request on: whole, in ranges, as HEAD and
/// 304, and behind pipelined responses, always the stored bytes.
fn hot_parts_are_sent_whole_in_ranges_and_pipelined(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    assert_playlist(&edge.get(&playlist_path("720p")));
    // Larger than the copy threshold (16 KiB) and than one socket write.
    let body = pattern(200_000, 42);
    pk.put(&pk.key("720p", "part1.0.m4s"), &body);
    pk.announce_part("720p", 1, 0);
    let r = edge.get(&format!("{}?_HLS_msn=1&_HLS_part=0", playlist_path("720p")));
    assert!(assert_playlist(&r).contains("URI=\"part1.0.m4s\""));
    let target = format!("/v/{VIDEO}/1/720p/part1.0.m4s");
    let mut conn = edge.conn();
    for i in 0..4 {
        let r = conn.request("GET", &target, &[], &[]).expect("part");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("content-length"), Some("200000"));
        assert!(r.body == body, "request {i}: the stored bytes");
    }
    // From the second request on it came from an in-memory file (the descriptor is kept).
    let pid = edge.process.pid();
    let memfds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd list")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().contains("memfd:ringcast-part"))
        .count();
    assert_eq!(memfds, 1, "one in-memory file for the hot part");
    let r = conn
        .request("GET", &target, &[("Range", "bytes=150000-150999")], &[])
        .expect("range");
    assert_eq!(r.status, 206);
    assert!(r.body[..] == body[150_000..151_000], "the range's bytes");
    let r = conn.request("HEAD", &target, &[], &[]).expect("head");
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("200000"))
    );
    assert!(r.body.is_empty());
    let etag = conn
        .request("GET", &target, &[], &[])
        .expect("part")
        .header("etag")
        .expect("etag")
        .to_owned();
    let r = conn
        .request("GET", &target, &[("If-None-Match", &etag)], &[])
        .expect("conditional");
    assert_eq!(r.status, 304);
    // Pipelined: a small answer queued before the part leaves with it, in order.
    let raw = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET {target} HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    conn.send_raw(raw.as_bytes()).expect("pipelined");
    let first = conn.read_response(false).expect("first");
    assert_eq!((first.status, first.text().as_str()), (200, "ok"));
    let part = conn.read_response(false).expect("part");
    assert_eq!(part.status, 200);
    assert!(part.body == body, "pipelined part: the stored bytes");
    let last = conn.read_response(false).expect("last");
    assert_eq!((last.status, last.text().as_str()), (200, "ok"));
    // The socket stayed non-blocking after its first file body (`sendfile::set_nonblocking`);
    // the driver's own writes to it must still wait for room instead of failing: three 4 MiB
    // answers from memory (written with `writev`) to a client that reads nothing for a while
    // fill every buffer on the way (the pause is what is tested: no readiness to wait for).
    let big = pattern(4 << 20, 7);
    edge.put(&format!("v/{VIDEO}/1/720p/big.bin"), &big);
    let one = format!("GET /v/{VIDEO}/1/720p/big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.send_raw(one.repeat(3).as_bytes()).expect("pipelined");
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        let r = conn.read_response(false).expect("big answer");
        assert_eq!(r.status, 200, "answer {i}");
        assert!(r.body == big, "answer {i}: the stored bytes");
    }
}

fn preload_hinted_part_is_held_then_sent_in_full(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    pk.part("720p", 1, 0);
    // Before any playlist request nothing follows the rendition: the store answers, and its
    // "not found" is remembered (not_found_ttl_ms)...
    let early = edge.get(&format!("/v/{VIDEO}/1/720p/part1.1.m4s"));
    assert_eq!(early.status, 404);
    let text = assert_playlist(&edge.get(&playlist_path("720p")));
    assert!(
        text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part1.1.m4s\""),
        "{text}"
    );
    // Neither announced nor hinted: 404 at once.
    let r = edge.get(&format!("/v/{VIDEO}/1/720p/part1.2.m4s"));
    assert_eq!((r.status, error_code(&r).as_str()), (404, "not_found"));

    let waits = edge.counter(PART_WAITS);
    let waiter = spawn_get(&edge, format!("/v/{VIDEO}/1/720p/part1.1.m4s"));
    wait_counter(&edge, PART_WAITS, waits + 1);
    // Stored but not announced: still held (a packager announces after the upload completes).
    let body = pk.put_part("720p", 1, 1);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "answered before the part was announced"
    );
    let t0 = Instant::now();
    pk.announce_part("720p", 1, 1);
    let (r, t1) = waiter.join().expect("waiter");
    // ... which the announcement overrides.
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, body, "the whole part");
    assert_eq!(r.header("content-type"), Some("video/iso.segment"));
    println!(
        "preload-hinted part answered {:.2} ms after its XADD",
        t1.saturating_duration_since(t0).as_secs_f64() * 1e3
    );
    // A hinted part that never comes: 503 after three target durations.
    let started = Instant::now();
    let r = edge.get(&format!("/v/{VIDEO}/1/720p/part1.2.m4s"));
    assert_eq!((r.status, error_code(&r).as_str()), (503, "unavailable"));
    assert!(started.elapsed() >= Duration::from_secs(3 * TD) - Duration::from_millis(50));
}

fn bad_requests_and_timeouts(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    pk.part("720p", 1, 0);
    let path = playlist_path("720p");
    for q in [
        "_HLS_part=1",
        "_HLS_msn=4",
        "_HLS_msn=abc",
        "_HLS_msn=1&_HLS_msn=1",
        "_HLS_skip=NO",
        "_HLS_msn=1&_HLS_part=40",
    ] {
        let r = edge.get(&format!("{path}?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(error_code(&r), "bad_request", "{q}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // Two segments ahead is allowed, and never comes: 503 after 3 × TARGETDURATION.
    let started = Instant::now();
    let r = edge.get(&format!("{path}?_HLS_msn=3"));
    let held = started.elapsed();
    assert_eq!((r.status, error_code(&r).as_str()), (503, "unavailable"));
    assert!(
        held >= Duration::from_secs(3 * TD) - Duration::from_millis(50)
            && held < Duration::from_secs(3 * TD + 2),
        "held {held:?}"
    );
    assert!(edge.counter("ringcast_edge_live_blocked_unavailable_total") >= 1);
}

fn delta_updates_endlist_and_event_playlists(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(10);
    pk.part("720p", 10, 0);
    let path = playlist_path("720p");
    let full = assert_playlist(&edge.get(&path));
    let mut bodies = vec![full.clone()];
    for skip in ["YES", "v2"] {
        let delta = assert_playlist(&edge.get(&format!("{path}?_HLS_skip={skip}")));
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
        assert!(delta.len() < full.len());
        assert!(
            !delta.contains("seg0.m4s") && delta.contains("seg9.m4s"),
            "{delta}"
        );
        bodies.push(delta);
    }
    let blocking_delta =
        assert_playlist(&edge.get(&format!("{path}?_HLS_msn=10&_HLS_part=0&_HLS_skip=YES")));
    assert!(blocking_delta.contains("#EXT-X-SKIP:"), "{blocking_delta}");
    bodies.push(blocking_delta);

    // End: ENDLIST, no preload hint, directives ignored, still playable.
    for p in 1..PARTS_PER_SEGMENT {
        pk.part("720p", 10, p);
    }
    pk.segment_end("720p", 10);
    pk.xadd("720p", &LiveEvent::End { last_msn: 10 });
    wait_until(Duration::from_secs(5), "ENDLIST", || {
        edge.get(&path).text().contains("#EXT-X-ENDLIST")
    });
    // After the end nothing is held, whatever the directives ask for.
    let blocked = edge.counter(BLOCKED);
    let ended = assert_playlist(&edge.get(&format!("{path}?_HLS_msn=99&_HLS_part=3")));
    assert!(
        ended.contains("#EXT-X-ENDLIST") && !ended.contains("PRELOAD-HINT"),
        "{ended}"
    );
    let r = edge.get(&format!("{path}?_HLS_skip=YES"));
    assert_eq!(edge.counter(BLOCKED), blocked, "held after ENDLIST");
    let ended_skip = assert_playlist(&r);
    assert!(
        !ended_skip.contains("EXT-X-SKIP"),
        "skip ignored after ENDLIST"
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=6"));
    bodies.push(ended);
    let seg = edge.get(&format!("/v/{VIDEO}/1/720p/seg10.m4s"));
    assert_eq!(seg.status, 200);

    // A VOD packaged while it transcodes: the version's settings say EVENT, every segment stays.
    let mut vod = Packager::new(&redis, &edge, "vod2");
    let _: () = redis::cmd("HSET")
        .arg("rc:live:vod2:1")
        .arg("playlist_type")
        .arg("event")
        .query(&mut vod.conn)
        .expect("HSET");
    vod.master(&["720p"]);
    vod.start("720p");
    // More entries than one catch-up read (512): the first answer still has all of them.
    for msn in 0..110 {
        vod.segment("720p", msn);
    }
    let event = assert_playlist(&edge.get("/v/vod2/1/720p/index.m3u8"));
    assert!(event.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{event}");
    assert!(event.contains("#EXT-X-MEDIA-SEQUENCE:0") && event.contains("seg109.m4s"));
    let live = &full;
    assert!(!live.contains("PLAYLIST-TYPE"));
    bodies.push(event);
    hls_parser::assert_bodies(&bodies, hls_parser::Expect::Media);
}

fn vod_without_stream_comes_from_the_store(legacy: bool) {
    let Setup {
        edge,
        redis: _redis,
    } = setup(legacy);
    let vod = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n\
               #EXTINF:2.00000,\nseg0.m4s\n#EXT-X-ENDLIST\n";
    edge.put("v/vod/1/720p/index.m3u8", vod.as_bytes());
    edge.put("v/vod/1/720p/part0.0.m4s", b"part");
    for _ in 0..2 {
        let r = edge.get("/v/vod/1/720p/index.m3u8?_HLS_msn=5");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), vod);
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
    assert_eq!(edge.get("/v/vod/1/720p/part0.0.m4s").body, b"part");
    assert_eq!(edge.get("/v/vod/1/360p/index.m3u8").status, 404);
    assert_eq!(edge.counter("ringcast_edge_live_renditions"), 0);
}

fn joins_trimmed_streams_and_survives_redis_disconnects(legacy: bool) {
    let Setup { edge, redis } = setup(legacy);
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(3);
    // The stream was trimmed before this edge saw it: no Start left.
    let _: u64 = redis::cmd("XTRIM")
        .arg(events_stream_key(VIDEO, 1, "720p"))
        .arg("MAXLEN")
        .arg(3)
        .query(&mut pk.conn)
        .expect("XTRIM");
    let path = playlist_path("720p");
    // Nothing to render yet, nothing in the store: 404 from the store path.
    assert_eq!(edge.get(&path).status, 404);
    // The packager re-announces Start at its next segment: the edge joins there.
    pk.start("720p");
    pk.segment("720p", 3);
    pk.part("720p", 4, 0);
    wait_until(Duration::from_secs(5), "joined playlist", || {
        edge.get(&path).status == 200
    });
    let text = assert_playlist(&edge.get(&path));
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:3") && text.contains("part4.0.m4s"),
        "{text}"
    );

    // Redis drops the edge's connections: it reconnects and keeps waking blocked requests.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut pk.conn)
        .expect("CLIENT KILL");
    let blocked = edge.counter(BLOCKED);
    let waiter = spawn_get(&edge, format!("{path}?_HLS_msn=4&_HLS_part=1"));
    wait_counter(&edge, BLOCKED, blocked + 1);
    pk.part("720p", 4, 1);
    let (r, _) = waiter.join().expect("waiter");
    assert!(assert_playlist(&r).contains("part4.1.m4s"));

    // Events lost while the edge was away (the stream restarted with another Start): resync.
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let addr = edge.addr;
        let target = format!("{path}?_HLS_msn=4&_HLS_part=2");
        std::thread::spawn(move || {
            let _ = tx.send(http::get(addr, &target).map(|r| r.status));
        })
    };
    let blocked = blocked + 1;
    wait_counter(&edge, BLOCKED, blocked + 1);
    pk.xadd(
        "720p",
        &LiveEvent::Start {
            target_duration: TD,
            part_target: PART,
            init: "init.mp4".into(),
            started_ms: STARTED_MS + 1,
            part_hold_back: None,
        },
    );
    pk.segment("720p", 0);
    // The restarted rendition is more than two segments behind 4.2: the held request is
    // re-decided on the new state and refused, not left hanging.
    let status = rx
        .recv_timeout(Duration::from_secs(3 * TD + 3))
        .expect("answered")
        .expect("GET");
    assert_eq!(status, 400);
    waiter.join().expect("waiter");
    // (The 400 may come from the first part of the new segment 0; its end follows.)
    wait_until(Duration::from_secs(5), "restarted playlist", || {
        edge.get(&path).text().contains("seg0.m4s")
    });
    let text = assert_playlist(&edge.get(&path));
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0"), "{text}");

    // A gap in the stream (part 1.0 never announced): one full re-read, the state keeps serving.
    let resyncs = edge.counter("ringcast_edge_live_resyncs_total");
    pk.part("720p", 1, 2);
    wait_counter(&edge, "ringcast_edge_live_resyncs_total", resyncs + 1);
    let text = assert_playlist(&edge.get(&path));
    assert!(
        text.contains("seg0.m4s") && !text.contains("part1.2.m4s"),
        "{text}"
    );
    assert!(edge.counter("ringcast_edge_live_followers_started_total") >= 1);
}

fn idle_followers_stop_and_start_again(legacy: bool) {
    let redis = RedisServer::start();
    let edge = Edge::start_on(
        Stack::builder().redis_at(&redis.url),
        options(legacy).toml("[live]\nread_block_ms = 50\nidle_stop_ms = 300"),
    );
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(2);
    let path = playlist_path("720p");
    // A request answered at once (a plain one waits up to 2 part targets for a fresh playlist,
    // longer than this test's idle_stop_ms).
    assert!(assert_playlist(&edge.get(&format!("{path}?_HLS_msn=1"))).contains("seg1.m4s"));
    assert_eq!(edge.counter("ringcast_edge_live_renditions"), 1);
    let started = edge.counter("ringcast_edge_live_followers_started_total");
    wait_until(Duration::from_secs(5), "idle follower stopped", || {
        edge.counter("ringcast_edge_live_followers_stopped_total") >= 1
    });
    assert_eq!(edge.counter("ringcast_edge_live_renditions"), 0);
    // Events keep coming while nobody follows; the next request starts a follower that reads
    // the stream from its beginning.
    pk.segment("720p", 2);
    let text = assert_playlist(&edge.get(&path));
    assert!(
        text.contains("seg0.m4s") && text.contains("seg2.m4s"),
        "{text}"
    );
    assert_eq!(
        edge.counter("ringcast_edge_live_followers_started_total"),
        started + 1
    );
}

both_drivers!(
    announced_parts_are_prefetched,
    serves_live_playlists_that_pass_hls_parser,
    blocking_reload_is_woken_by_the_announcement,
    plain_request_is_answered_with_the_next_part,
    identical_blocking_requests_coalesce,
    preload_hinted_part_is_held_then_sent_in_full,
    hot_parts_are_sent_whole_in_ranges_and_pipelined,
    bad_requests_and_timeouts,
    delta_updates_endlist_and_event_playlists,
    vod_without_stream_comes_from_the_store,
    joins_trimmed_streams_and_survives_redis_disconnects,
    idle_followers_stop_and_start_again,
);

/// The LL-HLS blocking reload over HTTP/2 (TLS, ALPN h2): the held request is one h2 stream,
/// woken by the announcement like an HTTP/1.1 one, and the part it names comes over h2 too.
#[test]
fn blocking_reload_over_h2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ringcast_testkit::tls::TestCa::new(dir.path(), "live");
    let mut files = ca.issue(dir.path(), "edge");
    files.http2 = true;
    let redis = RedisServer::start();
    let edge = Edge::start_on(
        Stack::builder().redis_at(&redis.url),
        options(false)
            .toml("[live]\nread_block_ms = 200")
            .tls(&files),
    );
    let mut pk = Packager::new(&redis, &edge, VIDEO);
    pk.begin(1);
    let curl = |url: String| {
        let ca = files.ca.clone();
        std::thread::spawn(move || {
            Command::new("curl")
                .args(["-sS", "--http2", "--cacert"])
                .arg(&ca)
                .args(["-w", "\n%{http_code} %{http_version}"])
                .arg(url)
                .output()
                .expect("curl")
        })
    };
    let base = edge.https_url();
    let blocked = edge.counter(BLOCKED);
    let waiter = curl(format!(
        "{base}{}?_HLS_msn=1&_HLS_part=0",
        playlist_path("720p")
    ));
    wait_counter(&edge, BLOCKED, blocked + 1);
    let body = pk.put_part("720p", 1, 0);
    pk.announce_part("720p", 1, 0);
    let out = waiter.join().expect("waiter");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("URI=\"part1.0.m4s\""), "{text}");
    assert!(text.ends_with("200 2"), "{text}");
    let out = curl(format!("{base}/v/{VIDEO}/1/720p/part1.0.m4s"))
        .join()
        .expect("part");
    let mut want = body;
    want.extend_from_slice(b"\n200 2");
    assert!(out.stdout == want, "the part over h2");
}
