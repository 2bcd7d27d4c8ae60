//! The shell itself, with a small test handler: pipelining, `100 Continue`, bodies (length,
//! chunked, drained, refused), head and idle timeouts, the connection cap, lingering close,
//! HEAD, file bodies, HTTP/1.0 keep-alive and the shutdown drain. Every test runs under both
//! monoio drivers: FusionDriver decides once per process, so the test re-runs itself in a
//! child process per driver (`MONOIO_FORCE_LEGACY_DRIVER=1` for the epoll one).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::RequestHead;
use ringcast_server::{
    BodyError, Conn, Driver, Handler, Response, Server, ServerSettings, ServerStats, WorkerInfo,
};

const CHILD: &str = "RINGCAST_SERVER_TEST_CHILD";

/// Run `body` once per driver, each in a child process of this test binary.
fn both_drivers(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    for legacy in [false, true] {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1");
        if legacy {
            cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
        } else {
            cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
        }
        let out = cmd.output().expect("run the test in a child");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "legacy={legacy}:\n{text}");
        // A filter that matched nothing would pass silently.
        assert!(
            text.contains("1 passed"),
            "legacy={legacy}: did not run:\n{text}"
        );
    }
}

struct TestHandler;

/// Body size of `/huge`: more than the default maximum socket buffers of both ends together
/// (`net.ipv4.tcp_wmem` 4 MiB + `tcp_rmem` 6 MiB).
const HUGE: usize = 16 << 20;

impl Handler for TestHandler {
    async fn handle(&self, req: &RequestHead, conn: &mut Conn) -> Option<Response> {
        Some(match req.path() {
            "/hello" => Response::text(200, "text/plain", "hi"),
            "/big" => Response::text(200, "application/octet-stream", vec![7u8; 200 * 1024]),
            // More than the kernel's socket buffers hold: its write waits for the client.
            "/huge" => Response::text(200, "application/octet-stream", vec![9u8; HUGE]),
            // Between the copy limit and the inline limit (an LL-HLS part's size): head and
            // body leave in one writev; each byte tells which request and offset it is.
            "/mid" => {
                let seed: usize = req.query().unwrap_or_default().parse().ok()?;
                Response::text(200, "application/octet-stream", mid_body(seed))
            }
            "/echo" => {
                let mut body = Vec::new();
                if req.chunked {
                    let mut d = ChunkedDecoder::new();
                    let mut piece = Vec::new();
                    while conn.read_chunked(&mut d, &mut piece).await.ok()? {
                        body.extend_from_slice(&piece);
                    }
                } else {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        let (res, b) = conn.read_body(buf, 4096).await;
                        buf = b;
                        match res.ok()? {
                            0 => break,
                            _ => body.extend_from_slice(&buf),
                        }
                    }
                }
                Response::text(200, "application/octet-stream", body)
            }
            "/file" => {
                let path = req.query().unwrap_or_default().to_string();
                let file = std::fs::File::open(path).ok()?;
                let len = file.metadata().ok()?.len();
                Response::new(200).file("application/octet-stream", file, 1, len - 1)
            }
            "/small" => match conn.read_to_end(8, Duration::from_millis(300)).await {
                Ok(body) => Response::text(200, "text/plain", body),
                Err(BodyError::TooLarge(_)) => Response::error_parts(413, "too_large", "no"),
                Err(BodyError::TimedOut) => Response::error_parts(408, "slow", "no"),
                Err(BodyError::Io(_)) => return None,
            },
            // The body appended to a buffer that already holds "PFX" (`read_body_into`), at
            // most 5 bytes a read; a stall of 200 ms answers 408 with what the buffer holds then.
            "/into" => {
                conn.set_body_read_timeout(Duration::from_millis(200));
                let mut buf = Vec::with_capacity(64);
                buf.extend_from_slice(b"PFX");
                loop {
                    let (res, b) = conn.read_body_into(buf, 5).await;
                    buf = b;
                    match res {
                        Ok(0) => break Response::text(200, "text/plain", buf),
                        Ok(n) => assert!(n <= 5, "at most max: {n}"),
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            break Response::text(408, "text/plain", buf)
                        }
                        Err(_) => return None,
                    }
                }
            }
            "/slow" => {
                monoio::time::sleep(Duration::from_millis(300)).await;
                Response::text(200, "text/plain", "slow")
            }
            // Leaves any body unread.
            _ => Response::new(204),
        })
    }
}

/// `/mid?seed`'s body: 40 000 bytes that differ per seed and offset.
fn mid_body(seed: usize) -> Vec<u8> {
    (0..40_000).map(|i| (i * 7 + seed * 13) as u8).collect()
}

fn start(tune: impl FnOnce(&mut ServerSettings)) -> (Server, Arc<ServerStats>) {
    let mut s = ServerSettings::new(
        "shell-test",
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "Content-Length",
    );
    s.workers = 1;
    tune(&mut s);
    let stats = Arc::new(ServerStats::default());
    let server = Server::start(s, Arc::clone(&stats), |_: WorkerInfo| TestHandler).expect("start");
    if std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_some() {
        assert_eq!(server.driver(), Driver::Legacy);
    }
    eprintln!("driver: {}", server.driver().as_str());
    (server, stats)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Read one response (Content-Length framed; `head_only` for HEAD) from `s`, keeping any
/// bytes past it in `rest`.
fn read_reply(s: &mut TcpStream, rest: &mut Vec<u8>, head_only: bool) -> Reply {
    let mut buf = std::mem::take(rest);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).expect("read head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head[9..12].parse().expect("status");
    let mut reply = Reply {
        status,
        head,
        body: Vec::new(),
    };
    let len: usize = match (head_only, reply.header("content-length")) {
        (false, Some(v)) => v.parse().expect("length"),
        _ => 0,
    };
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("read body");
        assert!(n > 0, "closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    reply.body = buf[head_end..head_end + len].to_vec();
    *rest = buf[head_end + len..].to_vec();
    reply
}

/// Whether the server closed the connection (EOF) within the read timeout.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    both_drivers("pipelined_requests_are_answered_in_order", || {
        let (server, stats) = start(|_| {});
        let mut s = connect(server.addr());
        let req = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n");
        let batch = req("/hello") + &req("/big") + &req("/nothing") + &req("/hello");
        s.write_all(batch.as_bytes()).expect("write");
        let mut rest = Vec::new();
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("Content-Length")
        );
        assert!(r.header("date").is_some());
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!((r.status, r.body.len()), (200, 200 * 1024));
        assert_eq!(read_reply(&mut s, &mut rest, false).status, 204);
        assert_eq!(read_reply(&mut s, &mut rest, false).body, b"hi");
        assert_eq!(stats.requests(), 4);
        assert_eq!(stats.responses(), [0, 4, 0, 0, 0]);
        assert!(server.stop());
    });
}

/// A keep-alive connection's wait for its next request (on io_uring a receive that arms the
/// socket's poll before it tries, `IORING_RECVSEND_POLL_FIRST`) must see that request whether it
/// arrives after the wait began, in pieces, or before the wait is issued (written while the
/// previous response is still unread), after small and large responses.
#[test]
fn keep_alive_waits_see_the_next_request_however_it_arrives() {
    both_drivers(
        "keep_alive_waits_see_the_next_request_however_it_arrives",
        || {
            let (server, stats) = start(|_| {});
            let mut s = connect(server.addr());
            s.set_nodelay(true).expect("nodelay");
            let mut rest = Vec::new();
            let n = 60;
            let mut answered = 0;
            for i in 0..n {
                let path = if i % 10 == 5 { "/big" } else { "/hello" };
                let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
                match i % 3 {
                    // Whole, after the last response was read.
                    0 => s.write_all(req.as_bytes()).expect("write"),
                    // In two writes: the second lands while the server holds a partial head.
                    1 => {
                        let (a, b) = req.as_bytes().split_at(7);
                        s.write_all(a).expect("write");
                        s.write_all(b).expect("write");
                    }
                    // This one and the next before reading this one's answer: the next is there
                    // before the server waits for it.
                    _ => {
                        s.write_all(req.as_bytes()).expect("write");
                        s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                            .expect("write");
                        let r = read_reply(&mut s, &mut rest, false);
                        assert_eq!(r.status, 200, "request {i}");
                        answered += 1;
                    }
                }
                let r = read_reply(&mut s, &mut rest, false);
                assert_eq!(r.status, 200, "request {i}");
                let want = if path == "/big" && i % 3 != 2 {
                    200 * 1024
                } else {
                    2
                };
                assert_eq!(r.body.len(), want, "request {i}");
                answered += 1;
            }
            assert!(rest.is_empty(), "nothing unasked for");
            assert_eq!(stats.requests(), answered);
            assert!(server.stop());
        },
    );
}

#[test]
fn gathered_head_and_body_survive_full_socket_buffers() {
    both_drivers("gathered_head_and_body_survive_full_socket_buffers", || {
        let (server, stats) = start(|_| {});
        let mut s = connect(server.addr());
        // 300 × 40 KB pipelined and read only once all are asked for: more than both socket
        // buffers hold, so writes stop part-way through a head or a body and must resume.
        let n = 300;
        let mut batch = String::new();
        for i in 0..n {
            batch += &format!("GET /mid?{i} HTTP/1.1\r\nHost: t\r\n\r\n");
            if i % 50 == 0 {
                batch += "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
            }
        }
        s.write_all(batch.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(200));
        let mut rest = Vec::new();
        for i in 0..n {
            let r = read_reply(&mut s, &mut rest, false);
            assert_eq!(r.status, 200, "request {i}");
            assert!(
                r.body == mid_body(i),
                "body of request {i} intact and in order"
            );
            if i % 50 == 0 {
                assert_eq!(read_reply(&mut s, &mut rest, false).body, b"hi");
            }
        }
        assert_eq!(stats.requests(), (n + n.div_ceil(50)) as u64);
        assert!(server.stop());
    });
}

#[test]
fn continue_is_sent_before_the_body_is_read() {
    both_drivers("continue_is_sent_before_the_body_is_read", || {
        let (server, _) = start(|_| {});
        let mut s = connect(server.addr());
        s.write_all(
            b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .expect("write head");
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).expect("100 Continue");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(b"hello").expect("write body");
        let r = read_reply(&mut s, &mut Vec::new(), false);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        // Not asked for: no interim response.
        s.write_all(b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
            .expect("write");
        let r = read_reply(&mut s, &mut Vec::new(), false);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert!(server.stop());
    });
}

#[test]
fn chunked_bodies_are_decoded_and_the_connection_goes_on() {
    both_drivers(
        "chunked_bodies_are_decoded_and_the_connection_goes_on",
        || {
            let (server, _) = start(|_| {});
            let mut s = connect(server.addr());
            s.write_all(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            )
            .expect("write");
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b"2\r\nde\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("write");
            let mut rest = Vec::new();
            let r = read_reply(&mut s, &mut rest, false);
            assert_eq!(r.body, b"abcde");
            assert_eq!(read_reply(&mut s, &mut rest, false).body, b"hi");
            assert!(server.stop());
        },
    );
}

#[test]
fn small_unread_bodies_are_drained_large_ones_close() {
    both_drivers("small_unread_bodies_are_drained_large_ones_close", || {
        let (server, _) = start(|s| s.drain_max = 16);
        let mut s = connect(server.addr());
        s.write_all(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        let mut rest = Vec::new();
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!(r.status, 204);
        assert_eq!(r.header("connection"), None);
        assert_eq!(read_reply(&mut s, &mut rest, false).body, b"hi");
        // Over drain_max: answered with Connection: close, then closed.
        s.write_all(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            .expect("write");
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut s));
        assert!(server.stop());
    });
}

#[test]
fn lingering_close_half_closes_and_drains_within_its_bounds() {
    both_drivers(
        "lingering_close_half_closes_and_drains_within_its_bounds",
        || {
            let (server, _) = start(|s| s.linger_bytes = 256 * 1024);
            // A body the handler never reads, partly sent: closing with it unread would make the
            // kernel answer with a reset (which can destroy the response in flight); the server
            // half-closes instead, so the client sees the response and then a clean end.
            let mut s = connect(server.addr());
            let mut req =
                b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n".to_vec();
            req.extend_from_slice(&[0u8; 64 * 1024]);
            s.write_all(&req).expect("write");
            let r = read_reply(&mut s, &mut Vec::new(), false);
            assert_eq!((r.status, r.header("connection")), (204, Some("close")));
            let mut b = [0u8; 1];
            let end = s.read(&mut b);
            assert!(matches!(end, Ok(0)), "expected a FIN, got {end:?}");

            // The drain is bounded in bytes: a client that keeps sending is cut off.
            let mut s = connect(server.addr());
            s.write_all(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")
                .expect("write head");
            assert_eq!(read_reply(&mut s, &mut Vec::new(), false).status, 204);
            let chunk = vec![0u8; 64 * 1024];
            let total = 64 * 1024 * 1024;
            let mut sent = 0;
            while sent < total && s.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
            assert!(
                sent >= 64 * 1024,
                "the server took no input after answering"
            );
            assert!(
                sent < total,
                "the server drained {sent} bytes past its 256 KiB bound"
            );
            assert!(server.stop());
        },
    );
}

#[test]
fn a_slow_head_gets_408_and_an_idle_connection_closes_quietly() {
    both_drivers(
        "a_slow_head_gets_408_and_an_idle_connection_closes_quietly",
        || {
            let (server, stats) = start(|s| {
                s.header_timeout = Duration::from_millis(200);
                s.idle_timeout = Duration::from_millis(400);
            });
            let mut s = connect(server.addr());
            let t = Instant::now();
            s.write_all(b"GET /hello HTTP/1.1\r\nHost:").expect("write");
            let r = read_reply(&mut s, &mut Vec::new(), false);
            assert_eq!(r.status, 408);
            assert!(
                t.elapsed() >= Duration::from_millis(200),
                "{:?}",
                t.elapsed()
            );
            assert!(String::from_utf8_lossy(&r.body).contains("request_timeout"));
            assert!(closed(&mut s));

            let mut idle = connect(server.addr());
            let t = Instant::now();
            assert!(closed(&mut idle), "idle connection not closed");
            assert!(
                t.elapsed() >= Duration::from_millis(400),
                "{:?}",
                t.elapsed()
            );
            assert_eq!(stats.responses()[3], 1);
            assert!(server.stop());
        },
    );
}

#[test]
fn a_write_that_stalls_for_the_idle_timeout_ends_the_connection() {
    both_drivers(
        "a_write_that_stalls_for_the_idle_timeout_ends_the_connection",
        || {
            let idle = Duration::from_millis(600);
            let (server, _) = start(|s| s.idle_timeout = idle);
            let get = b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n";

            // Pauses shorter than the timeout, adding up to far more than it: each wait for
            // the socket to drain gets the whole timeout, so the body arrives complete. Between
            // pauses the client reads 3 MiB, so the server's send buffer drains (a reader that
            // frees little does not reopen the window enough for the sender to progress).
            let mut s = connect(server.addr());
            s.write_all(get).expect("write");
            let t0 = Instant::now();
            let mut got = 0usize;
            let mut buf = vec![0u8; 1 << 20];
            let mut pauses = 0;
            while got < HUGE {
                if got > (pauses + 1) * (3 << 20) && pauses < 4 {
                    std::thread::sleep(Duration::from_millis(300));
                    pauses += 1;
                }
                match s.read(&mut buf).expect("read") {
                    0 => panic!(
                        "closed after {got} bytes, {:?} after the request",
                        t0.elapsed()
                    ),
                    n => got += n,
                }
            }
            assert_eq!(pauses, 4);
            // More than both sockets' buffers hold: the writes went on after every pause.
            assert!(got >= HUGE, "the response after 4 pauses of 300 ms: {got}");

            // A client that stops reading: the write makes no progress and the server gives up
            // after the timeout, closing the connection with the body unfinished.
            let mut s = connect(server.addr());
            s.write_all(get).expect("write");
            std::thread::sleep(idle * 3);
            let mut got = 0usize;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    // The client's read timeout (10 s): the server kept the connection open.
                    Err(e) => panic!("not closed by the server: {e} after {got} bytes"),
                }
            }
            assert!(got < HUGE, "the body cannot have been sent whole: {got}");
            assert!(server.stop());
        },
    );
}

#[test]
fn bad_heads_get_their_status_and_a_close() {
    both_drivers("bad_heads_get_their_status_and_a_close", || {
        let (server, _) = start(|s| s.limits.max_headers = 4);
        let mut s = connect(server.addr());
        let mut head = String::from("GET /hello HTTP/1.1\r\nHost: t\r\n");
        for i in 0..8 {
            head += &format!("X-{i}: v\r\n");
        }
        s.write_all((head + "\r\n").as_bytes()).expect("write");
        let r = read_reply(&mut s, &mut Vec::new(), false);
        assert_eq!(r.status, 431);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut s));
        assert!(server.stop());
    });
}

#[test]
fn connections_over_the_cap_get_503() {
    both_drivers("connections_over_the_cap_get_503", || {
        let (server, stats) = start(|s| s.max_connections = 1);
        let mut first = connect(server.addr());
        first
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        assert_eq!(read_reply(&mut first, &mut Vec::new(), false).status, 200);
        let mut second = connect(server.addr());
        let r = read_reply(&mut second, &mut Vec::new(), false);
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(String::from_utf8_lossy(&r.body).contains("too_many_connections"));
        assert_eq!(stats.connections_rejected(), 1);
        // The first one is still served.
        first
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        assert_eq!(read_reply(&mut first, &mut Vec::new(), false).status, 200);
        assert!(server.stop());
    });
}

#[test]
fn file_bodies_head_and_http10_keep_alive() {
    both_drivers("file_bodies_head_and_http10_keep_alive", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write file");
        let (server, stats) = start(|_| {});
        let mut s = connect(server.addr());
        let target = format!("/file?{}", path.display());
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: t\r\n\r\nHEAD {target} HTTP/1.1\r\nHost: t\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut rest = Vec::new();
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!(r.body, &data[1..]);
        let h = read_reply(&mut s, &mut rest, true);
        assert_eq!(h.header("content-length"), Some("299999"));
        assert!(stats.bytes() > 299_999);
        // HTTP/1.0 asks for persistence and is told it got it.
        s.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .expect("write");
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        s.write_all(b"GET /hello HTTP/1.0\r\n\r\n").expect("write");
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut s));
        assert!(server.stop());
    });
}

#[test]
fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    both_drivers(
        "shutdown_finishes_in_flight_requests_and_stops_accepting",
        || {
            let (server, stats) = start(|_| {});
            let addr = server.addr();
            let mut s = connect(addr);
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("write");
            // Readiness, not a sleep: the request is in flight once the stats say so.
            let t = Instant::now();
            while stats.inflight() == 0 {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "request never started"
                );
                std::thread::yield_now();
            }
            let handle = server.shutdown_handle();
            let stopper = std::thread::spawn(move || server.wait());
            handle.trigger();
            let r = read_reply(&mut s, &mut Vec::new(), false);
            assert_eq!((r.status, r.body.as_slice()), (200, &b"slow"[..]));
            assert_eq!(r.header("connection"), Some("close"));
            assert!(stopper.join().expect("join"));
            assert!(TcpStream::connect(addr).is_err(), "still accepting");
            let _ = s.shutdown(Shutdown::Both);
        },
    );
}

/// A response still being written when shutdown comes (its handler returned long ago, the
/// client reads slowly) is finished before the worker stops: the request stays in flight until
/// its response is flushed, not only while its handler runs.
#[test]
fn shutdown_waits_for_a_response_still_being_written() {
    both_drivers("shutdown_waits_for_a_response_still_being_written", || {
        let (server, _) = start(|_| {});
        let mut s = connect(server.addr());
        s.write_all(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        // The first bytes are here: the handler has returned, and the rest of the body waits
        // for this client to read (more than both sockets' buffers hold).
        let mut first = [0u8; 1024];
        s.read_exact(&mut first).expect("first bytes");
        let handle = server.shutdown_handle();
        let stopper = std::thread::spawn(move || server.wait());
        handle.trigger();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read the rest");
        let total = first.len() + rest.len();
        let head_len = first
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head in the first bytes")
            + 4;
        assert_eq!(total - head_len, HUGE, "the response was cut at shutdown");
        assert!(stopper.join().expect("join"));
    });
}

#[test]
fn whole_small_bodies_have_a_size_and_a_time_limit() {
    both_drivers("whole_small_bodies_have_a_size_and_a_time_limit", || {
        let (server, _) = start(|_| {});
        let mut s = connect(server.addr());
        s.write_all(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd")
            .expect("write");
        let mut rest = Vec::new();
        assert_eq!(read_reply(&mut s, &mut rest, false).body, b"abcd");
        // Over the limit: refused before reading, and the unread body closes the connection.
        s.write_all(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n")
            .expect("write");
        let r = read_reply(&mut s, &mut rest, false);
        assert_eq!((r.status, r.header("connection")), (413, Some("close")));
        assert!(closed(&mut s));
        // Announced but never sent: the time limit answers.
        let mut s = connect(server.addr());
        let t = Instant::now();
        s.write_all(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab")
            .expect("write");
        let r = read_reply(&mut s, &mut Vec::new(), false);
        assert_eq!(r.status, 408);
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.header("connection"), Some("close"));
        assert!(server.stop());
    });
}

#[test]
fn a_body_read_into_a_caller_buffer_appends_and_the_buffer_survives_a_timeout() {
    both_drivers(
        "a_body_read_into_a_caller_buffer_appends_and_the_buffer_survives_a_timeout",
        || {
            let (server, _) = start(|_| {});
            let mut s = connect(server.addr());
            // Part of the body comes with the head, the rest in later segments.
            s.write_all(b"POST /into HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\nhello")
                .expect("write");
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b" world!").expect("write");
            let mut rest = Vec::new();
            let r = read_reply(&mut s, &mut rest, false);
            assert_eq!(
                (r.status, r.body.as_slice()),
                (200, &b"PFXhello world!"[..])
            );
            // A stall: the read is cancelled on its deadline and the buffer comes back with
            // the prefix and the bytes read before the stall.
            let mut s = connect(server.addr());
            s.write_all(b"POST /into HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n")
                .expect("write");
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b"abc").expect("write");
            let r = read_reply(&mut s, &mut Vec::new(), false);
            assert_eq!((r.status, r.body.as_slice()), (408, &b"PFXabc"[..]));
            assert!(server.stop());
        },
    );
}

#[test]
fn a_port_in_use_is_a_start_error() {
    both_drivers("a_port_in_use_is_a_start_error", || {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let mut s = ServerSettings::new("shell-test", addr, "");
        s.workers = 2;
        let stats = Arc::new(ServerStats::default());
        // A plain listener without SO_REUSEPORT keeps the port to itself.
        let err = Server::start(s, stats, |_: WorkerInfo| TestHandler)
            .err()
            .expect("start must fail");
        assert!(err.to_string().contains("bind listener"), "{err}");
    });
}
