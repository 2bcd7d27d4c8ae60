//! HTTP/1.1 behaviour on real sockets: path validation, methods, limits, keep-alive,
//! pipelining, timeouts. Both drivers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{error_code, options, pattern, Edge, VOD_PLAYLIST};

fn bad_paths_are_400(legacy: bool) {
    let edge = Edge::start(legacy);
    // Something a traversal would reach: the config and log live next to the store.
    edge.put("v/ok/seg.m4s", b"fine");
    let long = format!("/v/{}", "a".repeat(1500));
    let targets = [
        "/v/../edge.toml",
        "/v/ok/../../edge.toml",
        "/v/%2e%2e/edge.toml",
        "/v/%2E%2e/edge.toml",
        "/v/ok/%2e%2e/%2e%2e/edge.toml",
        "/v/./ok/seg.m4s",
        "/v/%2e/ok/seg.m4s",
        "/v//ok/seg.m4s",
        "/v/ok%00/seg.m4s",
        "/v/ok/seg.m4s%00.m3u8",
        "/v/ok%5c..%5cedge.toml",
        "/v/ok%2f..%2fedge.toml",
        "/v/ok/%zz",
        long.as_str(),
    ];
    for target in targets {
        let r = edge.get(target);
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(error_code(&r), "bad_path", "{target}");
        assert_eq!(r.header("vary"), Some("Origin"), "{target}");
        // A player on another origin can read the refusal.
        let r = edge
            .conn()
            .request("GET", target, &[("Origin", "https://player.example")], b"")
            .expect("GET with Origin");
        assert_eq!(error_code(&r), "bad_path", "{target}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    // Raw NUL and backslash never reach routing: the request line itself is refused.
    for raw in [
        "GET /v/ok\0/seg.m4s HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v/ok\\..\\x HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut conn = edge.conn();
        conn.send_raw(raw.as_bytes()).expect("send");
        let r = conn.read_response(false).expect("response");
        assert_eq!(r.status, 400, "{raw:?}");
        assert!(error_code(&r).starts_with("bad_"), "{raw:?}");
    }
    // And the valid neighbour still works.
    assert_eq!(edge.get("/v/ok/seg.m4s").text(), "fine");
}

fn methods_405_501_and_preflight(legacy: bool) {
    let edge = Edge::start(legacy);
    edge.put("v/m/1/seg.m4s", b"m");
    let mut conn = edge.conn();
    for method in ["POST", "DELETE", "PATCH"] {
        let r = conn
            .request(method, "/v/m/1/seg.m4s", &[], b"")
            .expect(method);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{method}");
        assert_eq!(error_code(&r), "method_not_allowed");
        if r.header("connection") == Some("close") {
            conn = edge.conn();
        }
    }
    let r = edge
        .conn()
        .request("BREW", "/v/m/1/seg.m4s", &[], b"")
        .expect("BREW");
    assert_eq!(r.status, 501);
    assert_eq!(error_code(&r), "not_implemented");
    let r = edge
        .conn()
        .request("BREW", "/healthz", &[], b"")
        .expect("BREW");
    assert_eq!(r.status, 501);

    // CORS preflight: 204, no body, and the connection stays usable.
    let mut conn = edge.conn();
    let r = conn
        .request(
            "OPTIONS",
            "/v/m/1/seg.m4s",
            &[
                ("Origin", "https://player.example"),
                ("Access-Control-Request-Method", "GET"),
            ],
            b"",
        )
        .expect("OPTIONS");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("Range")));
    assert!(r.header("content-length").is_none());
    let r = conn
        .request("GET", "/v/m/1/seg.m4s", &[], b"")
        .expect("GET after OPTIONS");
    assert_eq!((r.status, r.text().as_str()), (200, "m"));

    // A request with a body is answered and the connection closed (the edge reads no bodies).
    let mut conn = edge.conn();
    let r = conn
        .request("PUT", "/v/m/1/seg.m4s", &[], b"payload")
        .expect("PUT");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("connection"), Some("close"));
}

fn oversized_heads_get_414_and_431(legacy: bool) {
    let edge = Edge::start(legacy);
    let cases = [
        (
            format!("GET /v/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000)),
            414,
            "uri_too_long",
        ),
        (
            format!(
                "GET /v/a HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..100)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
            431,
            "headers_too_large",
        ),
        (
            format!(
                "GET /v/a HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "b".repeat(20_000)
            ),
            431,
            "headers_too_large",
        ),
        (
            "GET /v/a HTTP/2.0\r\nHost: x\r\n\r\n".to_string(),
            505,
            "version_not_supported",
        ),
        ("GET /v/a HTTP/1.1\r\n\r\n".to_string(), 400, "bad_request"),
    ];
    for (raw, status, code) in cases {
        let mut conn = edge.conn();
        conn.send_raw(raw.as_bytes()).expect("send");
        let r = conn.read_response(false).expect("response");
        assert_eq!(r.status, status, "{}", &raw[..40]);
        assert_eq!(error_code(&r), code);
        assert_eq!(r.header("connection"), Some("close"));
    }
    // The server is still fine.
    assert_eq!(edge.get("/healthz").status, 200);
}

fn keep_alive_serves_two_requests_on_one_connection(legacy: bool) {
    let edge = Edge::start(legacy);
    edge.put("v/k/1/a.m4s", b"first");
    edge.put("v/k/1/b.m4s", b"second");
    let before = edge.counter("ringcast_edge_connections_total");
    let mut conn = edge.conn();
    let r1 = conn
        .request("GET", "/v/k/1/a.m4s", &[], b"")
        .expect("first");
    let r2 = conn
        .request("GET", "/v/k/1/b.m4s", &[], b"")
        .expect("second");
    assert_eq!((r1.status, r1.text().as_str()), (200, "first"));
    assert_eq!((r2.status, r2.text().as_str()), (200, "second"));
    assert!(r1.header("connection").is_none() && r2.header("connection").is_none());
    // One connection for both requests, plus the one that reads /metrics now.
    assert_eq!(edge.counter("ringcast_edge_connections_total") - before, 2);
    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut stream = TcpStream::connect(edge.addr).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("send");
    let mut all = String::new();
    stream.read_to_string(&mut all).expect("read until close");
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(
        all.contains("Connection: close\r\n") && all.ends_with("\r\n\r\nok"),
        "{all}"
    );
    // HTTP/1.0 asking for keep-alive gets it, announced, and the connection stays usable.
    let mut conn = edge.conn();
    let raw = b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    conn.send_raw(raw).expect("send");
    let r = conn.read_response(false).expect("1.0 keep-alive");
    assert_eq!(
        (r.status, r.header("connection")),
        (200, Some("keep-alive"))
    );
    conn.send_raw(raw).expect("send again");
    assert_eq!(conn.read_response(false).expect("second").text(), "ok");
}

fn pipelined_requests_are_answered_in_order(legacy: bool) {
    let edge = Edge::start(legacy);
    let big = pattern(30_000, 9);
    edge.put("v/p/1/720p/seg1.m4s", &big);
    edge.put("v/p/1/720p/index.m3u8", VOD_PLAYLIST.as_bytes());
    let mut conn = edge.conn();
    conn.send_raw(
        b"GET /v/p/1/720p/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /v/p/1/720p/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /v/p/1/720p/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /v/p/1/720p/missing.m4s HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("send pipeline");
    let r = conn.read_response(false).expect("1");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "first response is the segment");
    let r = conn.read_response(true).expect("2");
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some(&*VOD_PLAYLIST.len().to_string()))
    );
    let r = conn.read_response(false).expect("3");
    assert_eq!(r.text(), VOD_PLAYLIST);
    let r = conn.read_response(false).expect("4");
    assert_eq!(r.status, 404);
    let r = conn.read_response(false).expect("5");
    assert_eq!(r.text(), "ok");
    // A pipeline split mid-head across two writes is reassembled.
    conn.send_raw(b"GET /healthz HTTP/1.1\r\nHo")
        .expect("part 1");
    conn.send_raw(b"st: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("part 2");
    assert_eq!(conn.read_response(false).expect("6").text(), "ok");
    assert_eq!(conn.read_response(false).expect("7").text(), "ok");
}

fn slow_heads_get_408_and_idle_connections_close(legacy: bool) {
    let edge =
        Edge::start_with(options(legacy).toml("header_timeout_ms = 300\nidle_timeout_ms = 600"));
    // An incomplete head: the server answers 408 once the header timeout passes.
    let mut conn = edge.conn();
    conn.send_raw(b"GET /healthz HTTP/1.1\r\nHost")
        .expect("send");
    let r = conn.read_response(false).expect("408");
    assert_eq!(r.status, 408);
    assert_eq!(error_code(&r), "request_timeout");
    // An idle keep-alive connection: closed without a response after the idle timeout.
    let mut stream = TcpStream::connect(edge.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        let n = stream.read(&mut buf).expect("read until the server closes");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("ok"),
        "{text}"
    );
}

both_drivers!(
    bad_paths_are_400,
    methods_405_501_and_preflight,
    oversized_heads_get_414_and_431,
    keep_alive_serves_two_requests_on_one_connection,
    pipelined_requests_are_answered_in_order,
    slow_heads_get_408_and_idle_connections_close,
);
