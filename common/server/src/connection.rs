//! The HTTP/1.1 connection loop: read, parse (sans-IO, `ringcast_proto::http`), hand each
//! request to the [`Handler`], write, and decide what comes next
//! (`ringcast_proto::http::persistence`).
//!
//! - Keep-alive and pipelining: every complete request already in the read buffer is answered
//!   in order before reading again; responses to a pipelined batch go out in one write.
//! - Bounded memory: the read buffer holds at most one incomplete head (plus the body bytes
//!   that came with it), and the parser refuses a head past its limits (414/431).
//! - Timeouts: an idle keep-alive connection closes after `idle_timeout`; a head must complete
//!   within `header_timeout` of its first byte (else 408); a write or body read that makes no
//!   progress for `idle_timeout` ends the connection.
//! - Bodies: the handler reads them incrementally; `Expect: 100-continue` is answered on its
//!   first read; a small unread body is drained, a larger one closes the connection.
//! - After an error response (or with unread input) the connection half-closes and drains what
//!   the client still sends for a bounded time before closing ("lingering close", as nginx
//!   does): closing a socket with unread input makes the kernel send RST, which can destroy
//!   the response before the client reads it.

use std::io;
use std::rc::Rc;
use std::time::Instant;

use monoio::net::TcpStream;
use ringcast_proto::http::persistence::{
    after_response, expects_continue, read_wait, After, Exchange, ReadWait, Unread,
};
use ringcast_proto::http::{parse_request_into, Method, RequestHead};

use crate::conn::Conn;
use crate::cors::Cors;
use crate::handler::{Handler, Refusal};
use crate::idle_timer::IdleTimer;
use crate::worker::{InflightGuard, OpenGuard, Worker};
use crate::Response;

/// Under TLS, bodies up to this size are copied behind the head so head and body leave in one
/// write; larger ones are written from their `Bytes` directly (no copy, two writes). 128 KiB
/// covers LL-HLS parts (≈30 KB at 360p, ≈125 KB at 720p): the copy costs a few µs, a second
/// write costs another io_uring round trip and a TCP segment of its own; 33 KB parts, wrk
/// -c256: 20.7k req/s vs 15.6k with a 16 KiB limit (medians of 6 interleaved runs).
const INLINE_BODY_MAX: usize = 128 * 1024;
/// On plain TCP only bodies up to this size are copied behind the head; larger ones leave with
/// the head in one `writev` from their shared `Bytes` (no copy, one write: see
/// [`crate::head_body`]). Small bodies (playlists) are cheaper to copy than to gather.
const COPY_BODY_MAX: usize = 8 * 1024;
/// The first line of the HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0\r\n";
/// Pending output is flushed once it reaches this size even mid-batch.
const FLUSH_AT: usize = 64 * 1024;

/// Serve one accepted connection until it closes.
pub(crate) async fn serve<H: Handler>(stream: TcpStream, worker: Rc<Worker>, handler: Rc<H>) {
    let _open = OpenGuard::new(&worker);
    // Responses are written whole; Nagle would only delay the tail of a body.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, Rc::clone(&worker));
    serve_conn(&mut conn, &*handler).await;
    if conn.h2c {
        // The client opened with the HTTP/2 preface (prior knowledge): h2 takes the socket
        // and the bytes already read.
        if let Some(stream) = conn.stream.take() {
            let pending = conn.buf[conn.start..].to_vec();
            crate::h2::serve(stream, None, pending, Rc::clone(&worker), handler).await;
        }
    }
}

/// The request loop of an open connection (plain, or TLS after its handshake), then its close.
pub(crate) async fn serve_conn<H: Handler>(conn: &mut Conn, handler: &H) {
    match run(conn, handler).await {
        Ok(_) if conn.h2c => {}
        Ok(After::Linger) => conn.linger().await,
        Ok(_) => conn.close().await,
        Err(_) => {}
    }
}

/// A connection over the worker's limit: 503, then close (lingering, so the answer is not
/// destroyed by a reset when the client already sent its request).
pub(crate) async fn reject<H: Handler>(stream: TcpStream, worker: Rc<Worker>, handler: Rc<H>) {
    let mut conn = Conn::new(stream, worker);
    let resp = handler
        .refuse(Refusal::TooManyConnections)
        .header("Retry-After", "1");
    let cors = conn.worker.settings.cors.for_unparsed();
    queue(&mut conn, &resp, false, cors);
    if conn.flush().await.is_ok() {
        conn.linger().await;
    }
}

async fn run<H: Handler>(conn: &mut Conn, handler: &H) -> io::Result<After> {
    let mut head_started: Option<Instant> = None;
    // The last answered request of the batch stays in flight until the batch is flushed.
    let mut unflushed: Option<InflightGuard> = None;
    let mut first = true;
    // Every request of the connection is parsed into this one head: its strings are reused.
    let mut req = RequestHead::empty();
    let mut idle = IdleTimer::default();
    loop {
        // Answer every complete request already buffered (pipelining), in order.
        while conn.start < conn.buf.len() {
            // HTTP/2 with prior knowledge (cleartext) starts a connection with its preface.
            if first
                && conn.worker.settings.h2c
                && conn.tls.is_none()
                && !conn.secure
                && conn.buf[conn.start..].starts_with(H2_PREFACE_START)
            {
                conn.h2c = true;
                return Ok(After::Close);
            }
            first = false;
            let used = match parse_request_into(
                &conn.buf[conn.start..],
                &conn.worker.settings.limits,
                &mut req,
            ) {
                Ok(Some(used)) => used,
                Ok(None) => {
                    // A head is under way: its clock starts with the read that brought
                    // its first bytes (just now), not per read (one clock read per
                    // request less on keep-alive connections).
                    head_started.get_or_insert_with(Instant::now);
                    break;
                }
                Err(e) => {
                    conn.worker.stats.request();
                    let cors = conn.worker.settings.cors.for_unparsed();
                    send(conn, handler.refuse(Refusal::BadHead(e)), false, cors).await?;
                    conn.flush().await?;
                    return Ok(After::Linger);
                }
            };
            conn.start += used;
            conn.unread = Unread::of(&req);
            conn.body_read_timeout = None;
            conn.continue_pending = expects_continue(&req);
            conn.worker.stats.request();
            let inflight = InflightGuard::new(&conn.worker);
            let resp = handler.handle(&req, conn).await;
            unflushed.replace(inflight);
            // The handler wrote its own response or the client is gone.
            let Some(mut resp) = resp else {
                return Ok(After::Close);
            };
            // The next pipelined head's clock starts now, not when its bytes arrived.
            head_started = (conn.start < conn.buf.len()).then(Instant::now);
            let after = after_response(
                &Exchange {
                    keep_alive: req.keep_alive,
                    close_requested: resp.close,
                    draining: conn.worker.draining.get(),
                    broken: conn.broken,
                    unread: conn.unread,
                    continue_pending: conn.continue_pending,
                    buffered: conn.start < conn.buf.len(),
                },
                conn.worker.settings.drain_max,
            );
            let keep_alive = matches!(after, After::KeepOpen | After::DrainThenKeepOpen);
            if keep_alive && req.version_minor == 0 {
                // HTTP/1.0 persistence is opt-in on both sides (RFC 9112 §9.3): say we keep it.
                resp = resp.header("Connection", "keep-alive");
            }
            if req.method == Method::Head {
                resp.head_only = true;
            }
            if resp.sent {
                // Written by the handler (framing and `Connection` included): only counted.
                conn.worker.stats.response(resp.status);
            } else {
                let cors = conn.worker.settings.cors.for_head(&req);
                send(conn, resp, keep_alive, cors).await?;
            }
            match after {
                After::KeepOpen => {}
                After::DrainThenKeepOpen => {
                    conn.flush().await?;
                    conn.discard_body().await?;
                    head_started = (conn.start < conn.buf.len()).then(Instant::now);
                }
                close => {
                    conn.flush().await?;
                    return Ok(close);
                }
            }
        }
        conn.flush().await?;
        drop(unflushed.take());
        if conn.worker.draining.get() && conn.start == conn.buf.len() {
            return Ok(After::Close);
        }

        let s = &conn.worker.settings;
        let partial = conn.start < conn.buf.len();
        // Only a head under way needs the clock (what is left of its header timeout).
        let wait = if partial {
            read_wait(
                Instant::now(),
                partial,
                head_started,
                s.header_timeout,
                s.idle_timeout,
            )
        } else {
            ReadWait::Idle(s.idle_timeout)
        };
        let read = match wait {
            // Between requests: the connection's one idle timer (no timer per request).
            // After a response, nothing is there yet (the client reads it first): the receive
            // waits for the poll instead of trying first. A new connection's first request
            // usually came with or right after the handshake: tried at once.
            ReadWait::Idle(d) if !first => idle.wait(d, conn.fill_next_request()).await.ok_or(()),
            ReadWait::Idle(d) => idle.wait(d, conn.fill()).await.ok_or(()),
            ReadWait::Head(d) => monoio::time::timeout(d, conn.fill()).await.map_err(|_| ()),
        };
        match read {
            Err(()) => match wait {
                ReadWait::Head(_) => {
                    conn.worker.stats.request();
                    let cors = conn.worker.settings.cors.for_unparsed();
                    send(conn, handler.refuse(Refusal::HeadTimeout), false, cors).await?;
                    conn.flush().await?;
                    return Ok(After::Linger);
                }
                // Idle keep-alive connection: close quietly.
                ReadWait::Idle(_) => return Ok(After::Close),
            },
            Ok(Ok(0)) => return Ok(After::Close),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Append `resp`'s head (and a small body) to the pending output.
fn queue(conn: &mut Conn, resp: &Response, keep_alive: bool, cors: Cors) -> bool {
    conn.worker.stats.response(resp.status);
    resp.write_head_cors(
        &mut conn.out,
        keep_alive,
        conn.worker.settings.cors_expose_headers,
        cors,
    );
    let body = resp.wire_body();
    let limit = if conn.tls.is_some() || conn.stream.is_none() {
        INLINE_BODY_MAX
    } else {
        COPY_BODY_MAX
    };
    if body.len() <= limit {
        conn.out.extend_from_slice(body);
        true
    } else {
        false
    }
}

/// Queue `resp` behind pending output; write large bodies straight from their `Bytes` and
/// file bodies with `sendfile`.
async fn send(conn: &mut Conn, resp: Response, keep_alive: bool, cors: Cors) -> io::Result<()> {
    let inline = queue(conn, &resp, keep_alive, cors);
    if let Some(f) = resp.wire_file() {
        if conn.tls.is_some() {
            // TLS in user space: read and encrypt (kernel TLS goes through `sendfile` below).
            let out = std::mem::take(&mut conn.out);
            let (tls, mut wire) = conn.split();
            let tls = tls.expect("checked");
            let sent = tls
                .send_file(&mut wire, &out, &f.file, f.offset, f.len)
                .await;
            conn.out = out;
            conn.out.clear();
            sent?;
            return Ok(());
        }
        // The queued output (this head and pipelined answers before it) goes out with the file.
        let stats = &conn.worker.stats;
        let stream = conn
            .stream
            .as_ref()
            .expect("an HTTP/1.1 connection has its socket");
        if !conn.nonblocking {
            crate::sendfile::set_nonblocking(stream)?;
            conn.nonblocking = true;
        }
        let sent = crate::sendfile::send_file(
            stream,
            &conn.out,
            &f.file,
            f.offset,
            f.len,
            conn.worker.settings.idle_timeout,
            |n| stats.bytes_sent(n),
        )
        .await;
        conn.out.clear();
        sent?;
        return Ok(());
    }
    if inline {
        if conn.out.len() >= FLUSH_AT {
            conn.flush().await?;
        }
    } else {
        conn.write_with_body(resp.wire_body().clone()).await?;
    }
    Ok(())
}
