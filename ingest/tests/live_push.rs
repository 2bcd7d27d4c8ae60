//! Live push and pull over real sockets against the real binary (2 cores, so publisher and
//! puller usually sit on different monoio runtimes) and a real redis-server: stream-key auth
//! before the body, one publisher per key, byte-exact fan-out, reconnect within the grace
//! period, EOF after it, and a slow puller that cannot stall the publisher.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::job::Priority;
use ringcast_testkit::{wait_until, IngestOptions};
use support::*;

const GRACE_SECS: u64 = 2;

fn live_opts(buffer_bytes: usize) -> IngestOptions {
    options()
        .live_key("cam1-publish-key-0001", "cam1")
        .live_grace_secs(GRACE_SECS)
        .live_buffer_bytes(buffer_bytes)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Read a response head (status, raw head text) byte by byte, leaving the body in the socket.
fn read_head(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert_eq!(n, 1, "connection closed inside the head: {head:?}");
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text[9..12].parse().expect("status");
    (status, text)
}

/// A publisher with a chunked body.
struct Publisher(TcpStream);

impl Publisher {
    fn start(addr: SocketAddr, key: &str) -> Self {
        let mut s = connect(addr);
        write!(
            s,
            "PUT /live/{key} HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp2t\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .expect("send head");
        Self(s)
    }

    fn send(&mut self, data: &[u8]) {
        write!(self.0, "{:x}\r\n", data.len()).expect("size");
        self.0.write_all(data).expect("data");
        self.0.write_all(b"\r\n").expect("crlf");
    }

    /// Last chunk; the response.
    fn finish(mut self) -> (u16, String) {
        self.0.write_all(b"0\r\n\r\n").expect("last chunk");
        read_head(&mut self.0)
    }
}

/// A puller decoding the chunked response in the background.
struct Puller {
    rx: std::sync::mpsc::Receiver<PullerEvent>,
    got: Vec<u8>,
}

enum PullerEvent {
    Data(Vec<u8>),
    /// The terminating chunk arrived.
    Eof,
    /// The connection closed without the terminating chunk.
    Cut,
}

impl Puller {
    fn start(addr: SocketAddr, target: &str) -> Self {
        let mut s = connect(addr);
        write!(s, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
        let (status, head) = read_head(&mut s);
        assert_eq!(status, 200, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut dec = ChunkedDecoder::new();
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(PullerEvent::Cut);
                        return;
                    }
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                let mut out = Vec::new();
                let used = dec
                    .decode(&pending, &mut out)
                    .expect("valid chunked response");
                pending.drain(..used);
                if !out.is_empty() {
                    let _ = tx.send(PullerEvent::Data(out));
                }
                if dec.is_done() {
                    let _ = tx.send(PullerEvent::Eof);
                    return;
                }
            }
        });
        Self {
            rx,
            got: Vec::new(),
        }
    }

    /// Collect data until `len` bytes arrived.
    fn wait_for_len(&mut self, len: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.got.len() < len {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(PullerEvent::Data(d)) => self.got.extend_from_slice(&d),
                Ok(PullerEvent::Eof) => panic!("EOF at {} bytes, expected {len}", self.got.len()),
                Ok(PullerEvent::Cut) => panic!("cut at {} bytes, expected {len}", self.got.len()),
                Err(_) => panic!("only {} of {len} bytes pulled", self.got.len()),
            }
        }
    }

    /// Collect data until the stream ends; true for a clean EOF, false for a cut.
    fn wait_for_end(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(PullerEvent::Data(d)) => self.got.extend_from_slice(&d),
                Ok(PullerEvent::Eof) => return true,
                Ok(PullerEvent::Cut) => return false,
                Err(_) => panic!("the pull did not end within {within:?}"),
            }
        }
    }

    /// Nothing more arrives for `d`.
    fn assert_quiet(&mut self, d: Duration) {
        match self.rx.recv_timeout(d) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(PullerEvent::Data(x)) => panic!("unexpected {} bytes", x.len()),
            Ok(_) => panic!("the pull ended early"),
            Err(e) => panic!("{e}"),
        }
    }
}

fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_add((i % 251) as u8))
        .collect()
}

/// The pull target of the live job the ingest queued (path and query of its pull URL).
fn pull_target(job: &ringcast_proto::job::TranscodeJob, addr: SocketAddr) -> String {
    let live = job.live.as_ref().expect("a live job");
    let prefix = format!("http://{addr}");
    live.pull_url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("pull URL {} not on {prefix}", live.pull_url))
        .to_string()
}

#[test]
fn unknown_keys_are_refused_before_the_body_is_read() {
    let stack = start(live_opts(1 << 20));
    let ingest = stack.ingest();
    for key in ["nope", "..%2F", "key2"] {
        // Head only: the answer must come without the body ever being sent.
        let mut s = connect(ingest.addr);
        write!(
            s,
            "PUT /live/{key} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .expect("send");
        let (status, head) = read_head(&mut s);
        assert_eq!(status, 403, "{head}");
        let r = ingest
            .conn()
            .request("POST", &format!("/live/{key}"), &[], b"x")
            .expect("POST");
        assert_eq!(r.status, 403);
        assert!(r.text().contains("\"forbidden\""), "{}", r.text());
    }
    // Pull without the job's token: not found, nothing leaks.
    let r = ingest
        .conn()
        .request("GET", "/live/cam1-publish-key-0001/pull", &[], b"")
        .expect("GET");
    assert_eq!(r.status, 404);
    let r = ingest
        .conn()
        .request("DELETE", "/live/cam1-publish-key-0001", &[], b"")
        .expect("DELETE");
    assert_eq!(r.status, 405);
}

#[test]
fn pull_receives_exactly_the_pushed_bytes_across_a_reconnect_then_eof_after_the_grace() {
    push_pull_reconnect(false);
}

/// The same on monoio's epoll driver (`MONOIO_FORCE_LEGACY_DRIVER=1`).
#[test]
fn pull_receives_exactly_the_pushed_bytes_on_the_legacy_driver() {
    push_pull_reconnect(true);
}

fn push_pull_reconnect(legacy: bool) {
    let stack = start(live_opts(4 << 20).legacy_driver(legacy));
    let ingest = stack.ingest();
    let queue = queue(stack.redis_url());

    let mut pushed = Vec::new();
    let mut publisher = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    let first = payload(1, 100_000);
    publisher.send(&first);
    pushed.extend_from_slice(&first);

    let job = next_job(&queue, Duration::from_secs(10))
        .expect("a live job is queued")
        .job
        .expect("decodable");
    assert_eq!((job.video_id.as_str(), job.version), ("cam1", 1));
    assert_eq!(job.priority, Priority::High);
    let target = pull_target(&job, ingest.addr);
    assert!(
        target.starts_with("/live/cam1-publish-key-0001/pull?token="),
        "{target}"
    );

    // Several pullers (spread over both cores by SO_REUSEPORT) all get the stream from byte 0.
    let mut pullers: Vec<Puller> = (0..3)
        .map(|_| Puller::start(ingest.addr, &target))
        .collect();
    for p in &mut pullers {
        p.wait_for_len(pushed.len());
    }

    // A second publisher on the same key is refused while the first is attached.
    let mut second = connect(ingest.addr);
    write!(
        second,
        "PUT /live/cam1-publish-key-0001 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .expect("send");
    assert_eq!(read_head(&mut second).0, 409);

    for i in 0..20u8 {
        let piece = payload(i, 1 + usize::from(i) * 997);
        publisher.send(&piece);
        pushed.extend_from_slice(&piece);
    }
    assert_eq!(publisher.finish().0, 204);
    for p in &mut pullers {
        p.wait_for_len(pushed.len());
        // Within the grace period the pull stays open.
        p.assert_quiet(Duration::from_millis(300));
    }

    // Reconnect within the grace period: same stream, no new job, the pull goes on.
    let mut again = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    let more = payload(9, 50_000);
    again.send(&more);
    pushed.extend_from_slice(&more);
    for p in &mut pullers {
        p.wait_for_len(pushed.len());
    }
    let video = block_on(queue.video("cam1")).expect("video hash");
    assert_eq!(
        video.get("latest_job"),
        Some(&job.job_id),
        "a reconnect must not queue another job"
    );
    assert_eq!(video.get("latest_version").map(String::as_str), Some("1"));
    // An abrupt disconnect (no last chunk) also starts the grace period.
    drop(again);
    let left = Instant::now();
    for p in &mut pullers {
        assert!(
            p.wait_for_end(Duration::from_secs(GRACE_SECS + 10)),
            "clean EOF"
        );
        assert_eq!(p.got.len(), pushed.len());
        assert!(p.got == pushed, "pulled bytes differ from the pushed ones");
    }
    let waited = left.elapsed();
    assert!(
        waited >= Duration::from_millis(GRACE_SECS * 1000 - 200),
        "EOF came {waited:?} after the disconnect, before the {GRACE_SECS} s grace period"
    );

    assert_eq!(
        ingest.counter("ringcast_ingest_live_streams_started_total"),
        1
    );
    assert_eq!(ingest.counter("ringcast_ingest_live_reconnects_total"), 1);
    assert_eq!(
        ingest.counter("ringcast_ingest_live_bytes_received_total"),
        pushed.len() as u64
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_live_bytes_pulled_total"),
        3 * pushed.len() as u64
    );

    // After the grace period the key starts a new stream: version 2, a new job.
    let mut next = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    next.send(b"x");
    let job2 = next_job(&queue, Duration::from_secs(10))
        .expect("a new live job")
        .job
        .expect("decodable");
    assert_eq!(job2.version, 2);
    assert_ne!(pull_target(&job2, ingest.addr), target, "a new token");
    assert_eq!(next.finish().0, 204);
}

#[test]
fn a_silent_publisher_is_detached_so_its_reconnect_continues_the_stream() {
    // The publisher's network drops without a FIN: its socket stays open and silent. The ingest
    // must let go of it after `publisher_timeout_secs` (not the 60 s idle timeout), so the
    // reconnect finds the key free and the stream still in its grace period.
    const SILENCE_SECS: u64 = 1;
    let stack = start(
        options()
            .live_key("cam1-publish-key-0001", "cam1")
            .live_grace_secs(30)
            .live_publisher_timeout_secs(SILENCE_SECS),
    );
    let ingest = stack.ingest();
    let queue = queue(stack.redis_url());
    let mut silent = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    silent.send(b"first bytes");
    let job = next_job(&queue, Duration::from_secs(10))
        .expect("a live job")
        .job
        .expect("decodable");
    let mut puller = Puller::start(ingest.addr, &pull_target(&job, ingest.addr));
    puller.wait_for_len(11);

    // Keep `silent` open and quiet; a reconnect is refused (409) only while it is attached.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SILENCE_SECS + 15);
    let again = loop {
        let mut p = Publisher::start(ingest.addr, "cam1-publish-key-0001");
        p.send(b" more");
        // A refused publisher gets its 409 at once; an accepted one no answer until it ends.
        p.0.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut b = [0u8; 12];
        match p.0.read(&mut b) {
            Ok(n) if n > 0 && b.starts_with(b"HTTP/1.1 409") => {
                assert!(
                    Instant::now() < deadline,
                    "still 409 after {:?}",
                    started.elapsed()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break p
            }
            other => panic!("unexpected answer to the reconnect: {other:?}"),
        }
    };
    assert!(
        started.elapsed() >= Duration::from_millis(SILENCE_SECS * 1000 - 100),
        "the silent publisher was detached before its timeout"
    );
    // Same stream: the pull goes on with the new bytes, no second job.
    puller.wait_for_len(16);
    assert_eq!(puller.got, b"first bytes more");
    let video = block_on(queue.video("cam1")).expect("video hash");
    assert_eq!(video.get("latest_job"), Some(&job.job_id));
    again
        .0
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    assert_eq!(again.finish().0, 204);
    drop(silent);
}

#[test]
fn versions_are_not_reused_after_redis_loses_its_data() {
    // Edges cache a version's segments for a year under `v/{video}/{version}/…`: a version
    // number given out twice would serve the old stream's media as the new one's.
    let stack = start(
        options()
            .live_key("cam1-publish-key-0001", "cam1")
            .live_grace_secs(1),
    );
    let ingest = stack.ingest();
    let queue = queue(stack.redis_url());
    let mut first = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    first.send(b"one");
    let job = next_job(&queue, Duration::from_secs(10))
        .expect("a live job")
        .job
        .expect("decodable");
    assert_eq!(job.version, 1);
    assert_eq!(first.finish().0, 204);
    wait_until(
        Duration::from_secs(20),
        "the first stream's grace period to end",
        || ingest.log_text().contains("live stream ended"),
    );
    // Redis loses everything (a restart without persistence, a failover to an empty replica).
    let mut c = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("conn");
    let _: () = redis::cmd("FLUSHALL").query(&mut c).expect("FLUSHALL");

    let mut second = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    second.send(b"two");
    let job2 = next_job(&queue, Duration::from_secs(10))
        .expect("a new live job")
        .job
        .expect("decodable");
    assert_eq!(job2.version, 2, "version 1 was already published once");
    assert_eq!(second.finish().0, 204);
}

#[test]
fn a_slow_puller_is_dropped_and_never_stalls_the_publisher() {
    // 256 KiB buffer, far less than what the publisher sends.
    let stack = start(live_opts(256 * 1024));
    let ingest = stack.ingest();
    let queue = queue(stack.redis_url());
    let mut publisher = Publisher::start(ingest.addr, "cam1-publish-key-0001");
    publisher.send(b"start");
    let job = next_job(&queue, Duration::from_secs(10))
        .expect("job")
        .job
        .expect("decodable");
    let target = pull_target(&job, ingest.addr);
    // A puller that sends its request and then reads nothing.
    let mut stalled = connect(ingest.addr);
    write!(stalled, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
    let mut fast = Puller::start(ingest.addr, &target);

    let total = 48 * 1024 * 1024;
    let piece = payload(3, 64 * 1024);
    let started = Instant::now();
    let mut sent = 5;
    while sent < total {
        publisher.send(&piece);
        sent += piece.len();
    }
    assert_eq!(publisher.finish().0, 204);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the publisher was held up for {:?}",
        started.elapsed()
    );
    // A reading puller keeps up (it may lag under load too; either way it ends).
    fast.wait_for_end(Duration::from_secs(GRACE_SECS + 20));

    // The stalled puller, once it reads, gets a cut stream: far fewer bytes, no last chunk.
    stalled
        .set_read_timeout(Some(Duration::from_secs(GRACE_SECS + 20)))
        .expect("timeout");
    let mut all = Vec::new();
    let _ = stalled.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all[..all.len().min(200)]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        all.len() < total,
        "the stalled puller got all {} bytes",
        all.len()
    );
    assert!(
        !all.ends_with(b"0\r\n\r\n"),
        "a lagged pull must not end cleanly"
    );
    assert!(ingest.counter("ringcast_ingest_live_pullers_dropped_total") >= 1);
}
