//! HTTP/2 on the edge (TLS, ALPN h2) with real clients: curl `--http2` gets the same objects,
//! heads and errors as over HTTP/1.1 (memory tier and disk tier), h2load multiplexes hundreds
//! of streams over two connections, and raw frame floods sent through `openssl s_client -alpn
//! h2` (PING, SETTINGS, rapid reset, an endless CONTINUATION chain) close the connection and
//! are counted while the edge keeps serving. Both drivers for the serving paths. Front-door
//! requests (bodies streamed to and from an ingest) are refused on h2 with
//! `HTTP_1_1_REQUIRED` and curl sends them again over HTTP/1.1, while objects stay on h2.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringcast_testkit::tls::{TestCa, TlsFiles};
use ringcast_testkit::{wait_until, EdgeOptions, IngestOptions, Stack};
use support::{options, pattern, Edge};

const STREAMS: &str = "ringcast_edge_h2_streams_total";
const CONNECTIONS: &str = "ringcast_edge_h2_connections_total";

fn h2_certs(dir: &Path) -> TlsFiles {
    let mut files = TestCa::new(dir, "h2").issue(dir, "edge");
    files.http2 = true;
    files
}

/// curl with `args`, trusting `ca`; (exit code, stdout, stderr).
fn curl(ca: &Path, args: &[&str]) -> (i32, Vec<u8>, String) {
    let o = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("run curl");
    (
        o.status.code().unwrap_or(-1),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn serves_over_h2(legacy: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let files = h2_certs(dir.path());
    let edge = Edge::start_with(
        options(legacy)
            .disk_cache(cache.path(), 64 << 20, 64 * 1024)
            .tls(&files)
            .toml("http2_cleartext = true"),
    );
    let small = pattern(1000, 5);
    let big = pattern(2 * 1024 * 1024 + 5, 6);
    edge.put("v/h/1/720p/init.mp4", &small);
    edge.put("v/h/1/720p/seg1.m4s", &big);
    let base = format!("{}/v/h/1/720p", edge.https_url());

    let (code, _, err) = curl(
        &files.ca,
        &[
            "--http2",
            "-v",
            "-o",
            "/dev/null",
            &format!("{base}/init.mp4"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ALPN: server accepted h2"), "{err}");
    for (path, body) in [("init.mp4", &small), ("seg1.m4s", &big), ("seg1.m4s", &big)] {
        let (code, got, err) = curl(&files.ca, &["--http2", &format!("{base}/{path}")]);
        assert_eq!(code, 0, "{path}: {err}");
        assert!(got == *body, "{path}: body differs ({} bytes)", got.len());
    }
    assert!(
        edge.counter("ringcast_edge_disk_hits_total") >= 1,
        "a file body went out over h2"
    );

    // Same head fields as HTTP/1.1 (minus hop-by-hop), HEAD without a body, a range, a 404.
    let (_, head, _) = curl(
        &files.ca,
        &[
            "--http2",
            "-I",
            "-H",
            "Origin: https://player.example",
            &format!("{base}/init.mp4"),
        ],
    );
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    for field in [
        "content-length: 1000",
        "etag:",
        "date:",
        "access-control-allow-origin: *",
        "vary: origin",
    ] {
        assert!(head.contains(field), "{field} missing: {head}");
    }
    assert!(
        !head.contains("connection:") && !head.contains("keep-alive"),
        "{head}"
    );
    let (_, part, _) = curl(
        &files.ca,
        &["--http2", "-r", "10-19", &format!("{base}/seg1.m4s")],
    );
    assert_eq!(part, big[10..20]);
    let (_, missing, _) = curl(
        &files.ca,
        &[
            "--http2",
            "-w",
            "%{http_code} %{http_version}",
            &format!("{base}/nope.m4s"),
        ],
    );
    let missing = String::from_utf8_lossy(&missing);
    assert!(
        missing.contains("not_found") && missing.ends_with("404 2"),
        "{missing}"
    );

    // h2c with prior knowledge on the plain listener, next to HTTP/1.1 there.
    let plain = format!("http://127.0.0.1:{}/v/h/1/720p/seg1.m4s", edge.addr.port());
    let (code, got, err) = curl(
        &files.ca,
        &["--http2-prior-knowledge", "-w", "%{http_version}", &plain],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        got.ends_with(b"2") && got[..got.len() - 1] == big[..],
        "h2c body"
    );
    let r = edge.get("/v/h/1/720p/init.mp4");
    assert!(
        r.status == 200 && r.body == small,
        "HTTP/1.1 on the same listener"
    );

    // Plain HTTP/1.1 clients on the TLS port still get HTTP/1.1.
    let (code, _, err) = curl(
        &files.ca,
        &[
            "--http1.1",
            "-v",
            "-o",
            "/dev/null",
            &format!("{base}/init.mp4"),
        ],
    );
    assert!(
        code == 0 && err.contains("ALPN: server accepted http/1.1"),
        "{err}"
    );

    // Multiplexing: 400 requests, 20 at a time on each of 2 connections.
    let before = (edge.counter(STREAMS), edge.counter(CONNECTIONS));
    let o = Command::new("h2load")
        .args(["-n", "400", "-c", "2", "-m", "20"])
        .arg(format!("{base}/init.mp4"))
        .output();
    match o {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains("400 succeeded") && text.contains("400 2xx"),
                "{text}"
            );
            assert!(text.contains("Application protocol: h2"), "{text}");
            assert_eq!(edge.counter(STREAMS) - before.0, 400);
            assert_eq!(edge.counter(CONNECTIONS) - before.1, 2);
        }
        // h2load comes from the nghttp2-client package (scripts/install-deps).
        Err(e) => eprintln!("h2load not run: {e}"),
    }
}

#[test]
fn serves_over_h2_io_uring() {
    serves_over_h2(false);
}

#[test]
fn serves_over_h2_legacy() {
    serves_over_h2(true);
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `GET /healthz` for `localhost`, HPACK with static-table entries and literals only.
fn get_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x87]; // :method GET, :scheme https
    b.push(0x04); // :path, literal without indexing (name index 4)
    b.push(8);
    b.extend_from_slice(b"/healthz");
    b.push(0x01); // :authority, literal without indexing (name index 1)
    b.push(9);
    b.extend_from_slice(b"localhost");
    b
}

/// Send `wire` (after the preface and an empty SETTINGS) over TLS with ALPN h2; returns how
/// many bytes the server answered before closing (s_client ends when the server closes).
fn raw_h2(port: u16, ca: &Path, wire: &[u8]) -> usize {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-alpn",
            "h2",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["-servername", "localhost", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut all = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    all.extend(frame(0x4, 0, 0, &[]));
    all.extend_from_slice(wire);
    // The server may close before it read everything: a broken pipe is expected then.
    let _ = stdin.write_all(&all);
    let _ = stdin.flush();
    // Keep stdin open: s_client must end because the server closed, not because we did.
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server kept the flooding connection open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("output");
    out.stdout.len()
}

#[test]
fn frame_floods_close_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = h2_certs(dir.path());
    let mut edge = Edge::start_with(options(false).tls(&files));
    let port = edge.tls_addr.expect("tls").port();
    let flood = |f: &str| edge.counter(&format!("ringcast_edge_h2_floods_total{{frame=\"{f}\"}}"));

    // PING flood: 500 pings in one burst (limit 20/s).
    let wire: Vec<u8> = (0..500).flat_map(|_| frame(0x6, 0, 0, &[7; 8])).collect();
    raw_h2(port, &files.ca, &wire);
    assert_eq!(flood("ping"), 1);

    // SETTINGS flood.
    let wire: Vec<u8> = (0..500).flat_map(|_| frame(0x4, 0, 0, &[])).collect();
    raw_h2(port, &files.ca, &wire);
    assert_eq!(flood("settings"), 1);

    // Rapid reset: HEADERS then RST_STREAM(CANCEL), 500 times on new streams.
    let mut wire = Vec::new();
    for i in 0..500u32 {
        let id = 2 * i + 1;
        wire.extend(frame(0x1, 0x4 | 0x1, id, &get_block()));
        wire.extend(frame(0x3, 0, id, &8u32.to_be_bytes()));
    }
    raw_h2(port, &files.ca, &wire);
    assert_eq!(flood("rst_stream"), 1, "{}", edge.metrics());

    // CONTINUATION flood: a header block that never ends.
    let mut wire = frame(0x1, 0x1, 1, &get_block()[..2]);
    for _ in 0..200 {
        wire.extend(frame(0x9, 0, 1, &[0x40, 0x01, b'x', 0x01, b'y']));
    }
    raw_h2(port, &files.ca, &wire);
    assert_eq!(flood("continuation"), 1);

    // The edge still serves, over h2 too.
    let _ = flood;
    let (code, got, err) = curl(
        &files.ca,
        &["--http2", &format!("{}/healthz", edge.https_url())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!got.is_empty());
    edge.process.assert_running();
}

#[test]
fn front_door_requests_move_to_http1_and_objects_stay_on_h2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = h2_certs(dir.path());
    let stack = Stack::builder()
        .ingest(IngestOptions::new().node_tag("a"))
        .edge(EdgeOptions::new().front_door().tls(&files))
        .start();
    let edge = stack.edge();
    wait_until(Duration::from_secs(5), "the node is up", || {
        edge.counter("ringcast_edge_front_door_node_up{node=\"a\"}") == 1
    });
    let refused = || edge.counter("ringcast_edge_h2_http1_required_total");
    let base = edge.https_url();

    // A tus creation and a 2 MiB PATCH (larger than an h2 stream's body buffer; the first half
    // of a 4 MiB upload) through the front door: refused on h2 before anything reached the
    // node, sent again over HTTP/1.1.
    let (code, out, err) = curl(
        &files.ca,
        &[
            "--http2",
            "-X",
            "POST",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Length: 4194304",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &format!("{base}/files/"),
        ],
    );
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("201 1.1"), "created over HTTP/1.1: {out}");
    assert_eq!(refused(), 1);
    let location = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .expect("Location")
        .trim()
        .to_string();
    let body = dir.path().join("body");
    std::fs::write(&body, pattern(2 << 20, 9)).expect("body");
    let target = if location.starts_with("http") {
        location.clone()
    } else {
        format!("{base}{location}")
    };
    let (code, out, err) = curl(
        &files.ca,
        &[
            "--http2",
            "-X",
            "PATCH",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Offset: 0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            "--data-binary",
            &format!("@{}", body.display()),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &target,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "204 1.1", "{err}");
    assert_eq!(refused(), 2);

    // An object on the same edge and listener stays on h2.
    stack.put("v/h/1/720p/init.mp4", &pattern(1000, 5));
    let (code, out, err) = curl(
        &files.ca,
        &[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &format!("{base}/v/h/1/720p/init.mp4"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "200 2");
    assert_eq!(refused(), 2);
}
