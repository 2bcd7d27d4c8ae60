//! The front door against real processes: two tagged ingest nodes (real redis-server, a
//! filesystem store, ffmpeg-made media) behind one edge, on both monoio drivers.
//!
//! - a tus upload through the edge: every request reaches the node whose tag starts the id
//!   (the edge's per-node counters and the nodes' own counters agree), killing the other node
//!   changes nothing, `Location`/`Upload-Offset`/`Tus-Resumable`/`Ringcast-*` arrive intact,
//!   `Expect: 100-continue` works through the proxy, the source is stored byte-exact;
//! - a dead node: new requests go to the live one at once, its uploads get 503 + Retry-After;
//! - a live push (an endless chunked PUT) through the edge lands on one node, a second
//!   publisher gets the node's 409 before it sends a byte of body, and a reconnect lands on the
//!   same node;
//! - rate limits: 429 + Retry-After + JSON, per client address and per API key;
//! - request smuggling: a request with both framings never reaches a node.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringcast_testkit::clips::Clip;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, EdgeOptions, IngestOptions, Service, Stack};

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");
const LIVE_KEY: &str = "cam1-publish-key-0001";

fn node(tag: &str) -> IngestOptions {
    IngestOptions::new()
        .name(&format!("ingest-{tag}"))
        .node_tag(tag)
        .max_upload_bytes(64 << 20)
        .live_key(LIVE_KEY, "cam1")
        .live_grace_secs(5)
}

/// Two tagged nodes, `a` and `b`, behind one edge (`extra`: more edge TOML), once the edge's
/// health checks have seen both up (the edge may start before the nodes listen).
fn stack(legacy: bool, extra: &str) -> Stack {
    let stack = Stack::builder()
        .ingest(node("a"))
        .ingest(node("b"))
        .edge(
            EdgeOptions::new()
                .legacy_driver(legacy)
                .front_door()
                .toml(extra),
        )
        .start();
    wait_until(Duration::from_secs(5), "both nodes up", || {
        node_up(stack.edge(), "a") + node_up(stack.edge(), "b") == 2
    });
    stack
}

fn requests_to(edge: &Service, tag: &str) -> u64 {
    edge.counter(&format!(
        "ringcast_edge_front_door_requests_total{{node=\"{tag}\"}}"
    ))
}

fn node_up(edge: &Service, tag: &str) -> u64 {
    edge.counter(&format!(
        "ringcast_edge_front_door_node_up{{node=\"{tag}\"}}"
    ))
}

fn create(edge: &Service, len: usize) -> Response {
    let len = len.to_string();
    edge.conn()
        .request(
            "POST",
            "/files/",
            &[TUS, ("Upload-Length", len.as_str())],
            b"",
        )
        .expect("POST")
}

fn tag_of(loc: &str) -> String {
    let id = loc.trim_start_matches("/files/");
    id.split_once('-').expect("a tagged id").0.to_string()
}

fn mp4(stack: &Stack) -> Vec<u8> {
    let path = Clip::new(320, 240)
        .fps(25)
        .seconds(1)
        .write(stack.dir(), "clip.mp4");
    std::fs::read(path).expect("read clip")
}

fn tus_upload_reaches_its_node(legacy: bool) {
    let mut stack = stack(legacy, "");
    let video = mp4(&stack);
    let edge = stack.edge();

    // Discovery through the edge: the node's tus headers, not the edge's.
    let r = edge
        .conn()
        .request("OPTIONS", "/files/", &[], b"")
        .expect("OPTIONS");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-max-size"), Some("67108864"));

    let r = create(edge, video.len());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    let loc = r.header("location").expect("Location").to_string();
    let tag = tag_of(&loc);
    let other = if tag == "a" { "b" } else { "a" };
    let id = loc.trim_start_matches("/files/").to_string();
    let node = stack.service(&format!("ingest-{tag}"));
    assert!(
        node.state_dir.join(format!("uploads/{id}.json")).exists(),
        "the upload's spool is on node {tag}"
    );
    let edge = stack.edge();
    let mut sent = 2; // OPTIONS (either node) and POST
    let before_other = requests_to(edge, other);

    // First third on a keep-alive connection, then the other node dies.
    let cuts = [0, video.len() / 3, 2 * video.len() / 3, video.len()];
    let mut conn = edge.conn();
    let r = conn
        .request(
            "PATCH",
            &loc,
            &[TUS, OCTETS, ("Upload-Offset", "0")],
            &video[..cuts[1]],
        )
        .expect("PATCH");
    sent += 1;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("upload-offset"),
        Some(cuts[1].to_string().as_str())
    );
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    stack.kill(&format!("ingest-{other}"));
    let edge = stack.edge();

    // HEAD, then the second third with `Expect: 100-continue` on a raw socket: the edge
    // passes the node's 100 on, then the body.
    let r = conn.request("HEAD", &loc, &[TUS], b"").expect("HEAD");
    sent += 1;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("upload-offset"),
        Some(cuts[1].to_string().as_str())
    );
    assert_eq!(
        r.header("upload-length"),
        Some(video.len().to_string().as_str())
    );
    let piece = &video[cuts[1]..cuts[2]];
    let mut s = TcpStream::connect(edge.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        cuts[1],
        piece.len()
    )
    .expect("head");
    let interim = read_head(&mut s);
    assert!(interim.starts_with("HTTP/1.1 100 "), "{interim}");
    s.write_all(piece).expect("body");
    let fin = read_head(&mut s);
    sent += 1;
    assert!(fin.starts_with("HTTP/1.1 204 "), "{fin}");
    assert!(
        fin.to_ascii_lowercase()
            .contains(&format!("upload-offset: {}\r\n", cuts[2])),
        "{fin}"
    );

    // The last third finishes the upload: the Ringcast headers come through.
    let off = cuts[2].to_string();
    let r = conn
        .request(
            "PATCH",
            &loc,
            &[TUS, OCTETS, ("Upload-Offset", off.as_str())],
            &video[cuts[2]..],
        )
        .expect("final PATCH");
    sent += 1;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("ringcast-video-id"), Some(id.as_str()));
    assert!(r.header("ringcast-job-id").is_some(), "{:?}", r.headers);
    let stored = std::fs::read(stack.object_path(&ringcast_proto::keys::source(&id, 1)))
        .expect("the source object");
    assert!(stored == video, "the stored source differs from the upload");

    // Every request of the upload went to its node, none to the other.
    let edge = stack.edge();
    assert_eq!(
        requests_to(edge, other),
        before_other,
        "requests leaked to {other}"
    );
    assert_eq!(
        requests_to(edge, &tag) + before_other,
        sent,
        "all but the OPTIONS went to {tag}"
    );
    let node = stack.service(&format!("ingest-{tag}"));
    assert_eq!(
        node.counter("ringcast_ingest_bytes_received_total"),
        video.len() as u64
    );
    assert_eq!(node.counter("ringcast_ingest_uploads_completed_total"), 1);
}

/// Read a response head byte by byte (the body stays in the socket).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert_eq!(n, 1, "closed inside the head: {head:?}");
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn a_dead_nodes_requests_go_to_the_live_one(legacy: bool) {
    let mut stack = stack(legacy, "");
    let edge = stack.edge();
    // Creation spreads over both nodes (least connections, ties rotate).
    let mut locs = Vec::new();
    for _ in 0..4 {
        let r = create(edge, 1000);
        assert_eq!(r.status, 201, "{}", r.text());
        locs.push(r.header("location").expect("Location").to_string());
    }
    let on_b = locs
        .iter()
        .find(|l| tag_of(l) == "b")
        .expect("an upload on b")
        .clone();
    assert!(
        locs.iter().any(|l| tag_of(l) == "a"),
        "{locs:?}\n{}",
        edge.metrics()
    );

    stack.kill("ingest-b");
    let edge = stack.edge();
    let killed = Instant::now();
    // Every new request goes to a, at once: a refused connection marks b down and the
    // request moves on (nothing was sent yet).
    for _ in 0..6 {
        let r = create(edge, 1000);
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(tag_of(r.header("location").expect("Location")), "a");
    }
    // The health check notices within its interval (200 ms) and its timeout.
    wait_until(Duration::from_secs(2), "b marked down", || {
        node_up(edge, "b") == 0
    });
    assert!(killed.elapsed() < Duration::from_secs(2));
    assert_eq!(node_up(edge, "a"), 1);
    // b's uploads wait for b: 503 with Retry-After, never another node.
    let before_a = requests_to(edge, "a");
    let r = edge
        .conn()
        .request("HEAD", &on_b, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = edge
        .conn()
        .request(
            "PATCH",
            &on_b,
            &[TUS, OCTETS, ("Upload-Offset", "0")],
            b"xyz",
        )
        .expect("PATCH");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("ingest_node_down"), "{}", r.text());
    assert_eq!(requests_to(edge, "a"), before_a, "b's upload went to a");
    assert!(edge.counter("ringcast_edge_front_door_errors_total{node=\"b\"}") >= 2);
    // The API still answers, from a.
    let r = edge
        .conn()
        .request("GET", "/v1/videos/nope", &[], b"")
        .expect("GET");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        edge.counter("ringcast_edge_front_door_connect_failures_total{node=\"b\"}") <= 1,
        "one refused connection is enough to mark b down"
    );
}

/// A node marked down by a health check that is older than its recovery takes its uploads
/// again as soon as any request connects to it, not one interval later (at start-up the first
/// check often runs before the node listens).
fn a_connection_marks_a_node_up_again(legacy: bool) {
    let mut stack = Stack::builder()
        .ingest(node("a"))
        .edge(
            EdgeOptions::new()
                .legacy_driver(legacy)
                .front_door()
                .toml("[front_door]\nhealth_interval_ms = 4000\nhealth_timeout_ms = 100\n"),
        )
        .start();
    wait_until(Duration::from_secs(10), "a up", || {
        node_up(stack.edge(), "a") == 1
    });
    // A stopped process still accepts connections (the kernel does) but never answers: the
    // check times out and marks it down.
    stack.ingest_mut().process.signal(libc::SIGSTOP);
    wait_until(Duration::from_secs(10), "a marked down", || {
        node_up(stack.edge(), "a") == 0
    });
    stack.ingest_mut().process.signal(libc::SIGCONT);
    let edge = stack.edge();
    // The only node is marked down, so creation tries it anyway, connects, and marks it up;
    // the upload's own requests (bound to a) then go through at once.
    let r = create(edge, 10);
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").expect("Location").to_string();
    let r = edge
        .conn()
        .request("HEAD", &loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 200, "the upload's node is reachable again");
    assert_eq!(node_up(edge, "a"), 1);
}

/// A publisher: an endless chunked PUT.
struct Publisher(TcpStream);

impl Publisher {
    fn start(addr: SocketAddr) -> Self {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        write!(
            s,
            "PUT /live/{LIVE_KEY} HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp2t\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .expect("head");
        Self(s)
    }

    fn send(&mut self, data: &[u8]) {
        write!(self.0, "{:x}\r\n", data.len()).expect("size");
        self.0.write_all(data).expect("data");
        self.0.write_all(b"\r\n").expect("crlf");
    }

    fn finish(mut self) -> String {
        self.0.write_all(b"0\r\n\r\n").expect("last chunk");
        read_head(&mut self.0)
    }
}

fn live(node: &Service, what: &str) -> u64 {
    node.counter(&format!("ringcast_ingest_live_{what}_total"))
}

fn live_push_lands_on_one_node_and_reconnects_there(legacy: bool) {
    let stack = stack(legacy, "");
    let edge = stack.edge();
    let (a, b) = (stack.service("ingest-a"), stack.service("ingest-b"));
    let mut p = Publisher::start(edge.addr);
    let mut pushed = 0;
    for i in 0..40u32 {
        let piece = vec![i as u8; 1000 + i as usize * 997];
        p.send(&piece);
        pushed += piece.len() as u64;
    }
    let received = || live(a, "bytes_received") + live(b, "bytes_received");
    wait_until(
        Duration::from_secs(10),
        "the pushed bytes on a node",
        || received() == pushed,
    );
    let (node, other) = if live(a, "streams_started") == 1 {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(live(node, "streams_started"), 1);
    assert_eq!(live(other, "streams_started"), 0);
    assert_eq!(live(node, "bytes_received"), pushed, "all on one node");
    // A second publisher on the key reaches the same node and gets its 409 before sending any
    // body (it waits for the answer, as ffmpeg does not, but a careful client would).
    let mut second = Publisher::start(edge.addr);
    let refused = read_head(&mut second.0);
    assert!(refused.starts_with("HTTP/1.1 409 "), "{refused}");
    drop(second);
    let head = p.finish();
    assert!(head.starts_with("HTTP/1.1 204 "), "{head}");

    // The reconnect (within the grace period) lands on the same node and continues the stream.
    let mut again = Publisher::start(edge.addr);
    again.send(&[7u8; 5000]);
    wait_until(Duration::from_secs(10), "the reconnect's bytes", || {
        live(node, "bytes_received") == pushed + 5000
    });
    assert_eq!(live(node, "reconnects"), 1);
    assert_eq!(live(other, "bytes_received"), 0);
    let head = again.finish();
    assert!(head.starts_with("HTTP/1.1 204 "), "{head}");
}

fn rate_limits_answer_429(legacy: bool) {
    let stack = stack(
        legacy,
        "[front_door.rate_limit]\nper_address_per_sec = 0.2\nper_address_burst = 3\nper_key_per_sec = 0.0\n",
    );
    let edge = stack.edge();
    let mut conn = edge.conn();
    for _ in 0..3 {
        let r = conn.request("GET", "/v1/videos/x", &[], b"").expect("GET");
        assert_eq!(r.status, 404, "{}", r.text());
    }
    let r = conn.request("GET", "/v1/videos/x", &[], b"").expect("GET");
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=5).contains(&wait), "{wait}");
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Playback is not the front door's: never limited.
    assert_eq!(edge.get("/healthz").status, 200);
    assert_eq!(
        edge.counter("ringcast_edge_front_door_rate_limited_total{by=\"address\"}"),
        1
    );
}

fn rate_limits_per_api_key(legacy: bool) {
    let stack = stack(
        legacy,
        "[front_door.rate_limit]\nper_address_per_sec = 0.0\nper_key_per_sec = 0.2\nper_key_burst = 2\n",
    );
    let edge = stack.edge();
    let get = |key: &str| {
        let auth = format!("Bearer {key}");
        edge.conn()
            .request(
                "GET",
                "/v1/videos/x",
                &[("Authorization", auth.as_str())],
                b"",
            )
            .expect("GET")
    };
    assert_ne!(get("rck_one").status, 429);
    assert_ne!(get("rck_one").status, 429);
    let r = get("rck_one");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // Another key has its own bucket; no key at all is limited by address only (off here).
    assert_ne!(get("rck_two").status, 429);
    let r = edge
        .conn()
        .request("GET", "/v1/videos/x", &[], b"")
        .expect("GET");
    assert_ne!(r.status, 429);
}

fn both_framings_never_reach_a_node(legacy: bool) {
    let stack = stack(legacy, "");
    let edge = stack.edge();
    let before = requests_to(edge, "a") + requests_to(edge, "b");
    let mut s = TcpStream::connect(edge.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(
        b"POST /files/ HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/videos/x HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .expect("send");
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert_eq!(requests_to(edge, "a") + requests_to(edge, "b"), before);
}

/// tus concatenation and termination through the front door: parallel partial uploads of one
/// client land on one node (rendezvous of its key), the final upload naming them by full URLs
/// through the edge goes to that node and finishes, and DELETE passes through.
fn tus_extensions_work_through_the_front_door(legacy: bool) {
    let stack = stack(legacy, "");
    let video = mp4(&stack);
    let edge = stack.edge();
    let r = edge
        .conn()
        .request("OPTIONS", "/files/", &[], b"")
        .expect("OPTIONS");
    assert!(
        r.header("tus-extension")
            .is_some_and(|e| e.contains("concatenation")),
        "{:?}",
        r.header("tus-extension")
    );
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256,md5"));
    let half = video.len() / 2;
    let pieces = [&video[..half], &video[half..]];
    let mut urls = Vec::new();
    let mut tags = Vec::new();
    for piece in pieces {
        let len = piece.len().to_string();
        let r = edge
            .conn()
            .request(
                "POST",
                "/files/",
                &[TUS, ("Upload-Concat", "partial"), ("Upload-Length", &len)],
                b"",
            )
            .expect("POST partial");
        assert_eq!(r.status, 201, "{}", r.text());
        let loc = r.header("location").expect("Location").to_string();
        tags.push(tag_of(&loc));
        let r = edge
            .conn()
            .request("PATCH", &loc, &[TUS, OCTETS, ("Upload-Offset", "0")], piece)
            .expect("PATCH");
        assert_eq!(r.status, 204, "{}", r.text());
        urls.push(format!("http://{}{loc}", edge.addr));
    }
    assert_eq!(tags[0], tags[1], "one client's partials on one node");
    let concat = format!("final;{}", urls.join(" "));
    let r = edge
        .conn()
        .request("POST", "/files/", &[TUS, ("Upload-Concat", &concat)], b"")
        .expect("POST final");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    let id = tag_of(r.header("location").expect("Location"));
    assert_eq!(id, tags[0], "the final upload is on its partials' node");

    // Termination through the edge.
    let r = create(edge, 1000);
    let loc = r.header("location").expect("Location").to_string();
    let r = edge
        .conn()
        .request("DELETE", &loc, &[TUS], b"")
        .expect("DELETE");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = edge
        .conn()
        .request("HEAD", &loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 404);
}

both_drivers!(
    tus_extensions_work_through_the_front_door,
    tus_upload_reaches_its_node,
    a_dead_nodes_requests_go_to_the_live_one,
    a_connection_marks_a_node_up_again,
    live_push_lands_on_one_node_and_reconnects_there,
    rate_limits_answer_429,
    rate_limits_per_api_key,
    both_framings_never_reach_a_node,
);
