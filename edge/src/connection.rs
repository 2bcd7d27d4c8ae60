//! One HTTP/1.1 connection: read, parse (sans-IO, `ringcast_proto::http`), route, write.
//!
//! - Keep-alive and pipelining: every complete request already in the read buffer is answered
//!   in order before reading again; responses to a pipelined batch go out in one write.
//! - Bounded memory: the read buffer holds at most one incomplete head, and the parser refuses a
//!   head past its limits (414/431), so a client cannot grow it without bound.
//! - Timeouts: an idle keep-alive connection closes after `idle_timeout`; a head must complete
//!   within `header_timeout` of its first byte (else 408); a write that makes no progress for
//!   `idle_timeout` ends the connection.
//! - After an error response (or a request with a body the edge does not read) the connection
//!   half-closes and drains what the client still sends for a moment before closing ("lingering
//!   close", as nginx does): closing a socket with unread input makes the kernel send RST, which
//!   can destroy the error response before the client reads it.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use ringcast_proto::http::{parse_request, Limits, RequestHead};

use crate::access_log::{self, Record, WorkerLog};
use crate::error::EdgeError;
use crate::response::Response;
use crate::routes::purge;
use crate::{routes, shared::Shared};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 8 * 1024;
/// Bodies up to this size are copied behind the head so head and body leave in one write;
/// larger ones are written from the cached `Bytes` directly (no copy, two writes). 128 KiB
/// covers LL-HLS parts (≈30 KB at 360p, ≈125 KB at 720p): the copy costs a few µs, a second
/// write costs another io_uring round trip and a TCP segment of its own; 33 KB parts, wrk
/// -c256: 20.7k req/s vs 15.6k with a 16 KiB limit (medians of 6 interleaved runs).
const INLINE_BODY_MAX: usize = 128 * 1024;
/// Pending output is flushed once it reaches this size even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Lingering close: how long and how much to drain before closing.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// What one worker's connections share (single-threaded: `Cell`s, no atomics).
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub limits: Limits,
    pub idle_timeout: Duration,
    pub header_timeout: Duration,
    /// Requests being answered right now on this worker (shutdown waits for them).
    pub inflight: Cell<usize>,
    /// Set at shutdown: finish the current request, then close.
    pub draining: Cell<bool>,
    /// Connections open on this worker.
    pub open: Cell<usize>,
    /// Beyond this many open connections, new ones get 503 and are closed.
    pub max_connections: usize,
    /// This worker's access log, when on.
    pub log: Option<WorkerLog>,
    /// Worker index (for the access log).
    pub worker: usize,
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard<'a>(&'a ConnCtx);

impl<'a> OpenGuard<'a> {
    fn new(ctx: &'a ConnCtx) -> Self {
        ctx.open.set(ctx.open.get() + 1);
        ctx.shared.metrics.connection_opened();
        Self(ctx)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
        self.0.shared.metrics.connection_closed();
    }
}

/// How a connection ends after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
    /// Close, but drain unread input first.
    Linger,
}

/// Serve one accepted connection until it closes.
pub async fn serve(mut stream: TcpStream, ctx: Rc<ConnCtx>) {
    let _open = OpenGuard::new(&ctx);
    // Responses are written whole; Nagle would only delay the tail of a body.
    let _ = stream.set_nodelay(true);
    match run(&mut stream, &ctx).await {
        Ok(After::Linger) => linger(&mut stream).await,
        Ok(_) => {
            let _ = stream.shutdown().await;
        }
        Err(_) => {}
    }
}

async fn run(stream: &mut TcpStream, ctx: &ConnCtx) -> io::Result<After> {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut start = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut head_started: Option<Instant> = None;
    loop {
        // Answer every complete request already buffered (pipelining), in order.
        while start < buf.len() {
            let (req, used) = match parse_request(&buf[start..], &ctx.limits) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(e) => {
                    let resp = Response::error(&EdgeError::Http(e));
                    send(stream, &mut out, ctx, resp, false).await?;
                    flush(stream, &mut out, ctx).await?;
                    return Ok(After::Linger);
                }
            };
            start += used;
            // The next pipelined head's clock starts now, not when its bytes arrived.
            head_started = (start < buf.len()).then(Instant::now);
            // The purge API reads a small Content-Length body; it may already be buffered.
            let mut body: Option<Vec<u8>> = None;
            if routes::wants_body(&req) && !req.chunked {
                let len = req.body_len();
                if len > purge::MAX_BODY as u64 {
                    let resp = Response::error(&EdgeError::PayloadTooLarge);
                    send(stream, &mut out, ctx, resp, false).await?;
                    flush(stream, &mut out, ctx).await?;
                    return Ok(After::Linger);
                }
                let len = len as usize;
                let Some(read) = read_body(stream, &mut buf, start, len, ctx).await? else {
                    let resp = Response::error(&EdgeError::HeaderTimeout);
                    send(stream, &mut out, ctx, resp, false).await?;
                    flush(stream, &mut out, ctx).await?;
                    return Ok(After::Linger);
                };
                buf = read;
                body = Some(buf[start..start + len].to_vec());
                start += len;
                head_started = (start < buf.len()).then(Instant::now);
            }
            ctx.inflight.set(ctx.inflight.get() + 1);
            ctx.shared.metrics.request_started();
            let after = respond(stream, &mut out, ctx, &req, body.as_deref()).await;
            ctx.shared.metrics.request_finished();
            ctx.inflight.set(ctx.inflight.get() - 1);
            match after? {
                After::KeepOpen => {}
                close => {
                    flush(stream, &mut out, ctx).await?;
                    return Ok(close);
                }
            }
        }
        flush(stream, &mut out, ctx).await?;
        if ctx.draining.get() && start == buf.len() {
            return Ok(After::Close);
        }

        // Keep only the unparsed tail, then read more.
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        let partial = !buf.is_empty();
        let wait = match head_started {
            Some(t) if partial => ctx.header_timeout.saturating_sub(t.elapsed()),
            _ => ctx.idle_timeout,
        };
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        match monoio::time::timeout(wait, stream.read(buf.slice_mut(len..cap))).await {
            Err(_elapsed) if partial => {
                let resp = Response::error(&EdgeError::HeaderTimeout);
                send(stream, &mut out, ctx, resp, false).await?;
                flush(stream, &mut out, ctx).await?;
                return Ok(After::Linger);
            }
            // Idle keep-alive connection: close quietly.
            Err(_elapsed) => return Ok(After::Close),
            Ok((result, slice)) => {
                buf = slice.into_inner();
                match result {
                    Ok(0) => return Ok(After::Close),
                    Ok(_) => {
                        if head_started.is_none() {
                            head_started = Some(Instant::now());
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// A connection over the worker's limit: 503 with a JSON error, then close (with lingering, so
/// the answer is not destroyed by a reset when the client already sent its request).
pub async fn reject(mut stream: TcpStream, ctx: Rc<ConnCtx>) {
    let mut out = Vec::with_capacity(512);
    let resp = Response::error(&EdgeError::TooManyConnections).header("Retry-After", "1");
    resp.write_head(&mut out, false);
    out.extend_from_slice(resp.wire_body());
    ctx.shared.metrics.response(resp.status);
    if write_all(&mut stream, out, &ctx).await.is_ok() {
        linger(&mut stream).await;
    }
}

/// Route one request and queue (or write) its response.
async fn respond(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    ctx: &ConnCtx,
    req: &RequestHead,
    body: Option<&[u8]>,
) -> io::Result<After> {
    // The edge reads no request bodies but the purge API's; with an unread one pending, the
    // connection cannot be reused safely (the body would be parsed as the next request), so it
    // closes after the response.
    let started = Instant::now();
    let has_body = body.is_none() && (req.chunked || req.body_len() > 0);
    let keep_alive = req.keep_alive && !has_body && !ctx.draining.get();
    let mut resp = routes::handle_with_body(req, body.unwrap_or(&[]), &ctx.shared).await;
    if let Some(log) = ctx.log.as_ref().filter(|l| l.sample()) {
        let rec = Record {
            ts_ms: access_log::unix_ms(),
            method: req.method.as_str(),
            target: &req.target,
            status: resp.status,
            bytes: resp.wire_body().len(),
            dur_us: access_log::micros_since(started),
            worker: ctx.worker,
        };
        log.record(&rec, &ctx.shared.metrics);
    }
    if keep_alive && req.version_minor == 0 {
        // HTTP/1.0 persistence is opt-in on both sides (RFC 9112 §9.3): say we keep it open.
        resp = resp.header("Connection", "keep-alive");
    }
    send(stream, out, ctx, resp, keep_alive).await?;
    Ok(match (keep_alive, has_body) {
        (true, _) => After::KeepOpen,
        (false, true) => After::Linger,
        (false, false) => After::Close,
    })
}

/// Queue `resp` behind pending output; write large bodies straight from their `Bytes`.
async fn send(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    ctx: &ConnCtx,
    resp: Response,
    keep_alive: bool,
) -> io::Result<()> {
    let metrics = &ctx.shared.metrics;
    metrics.request();
    metrics.response(resp.status);
    resp.write_head(out, keep_alive);
    if let Some(f) = resp.wire_file() {
        // The queued output (this head and pipelined answers before it) goes out with the file.
        let sent = crate::tiers::sendfile::send_file(
            stream,
            out,
            &f.file,
            f.offset,
            f.len,
            ctx.idle_timeout,
            |n| metrics.bytes_sent(n),
        )
        .await;
        out.clear();
        sent?;
        return Ok(());
    }
    let body = resp.wire_body();
    if body.len() <= INLINE_BODY_MAX {
        out.extend_from_slice(body);
        if out.len() >= FLUSH_AT {
            flush(stream, out, ctx).await?;
        }
    } else {
        flush(stream, out, ctx).await?;
        write_all(stream, body.clone(), ctx).await?;
    }
    Ok(())
}

/// Make sure `buf[start..start + len]` holds a body, reading more within the header timeout.
/// `Ok(None)`: the client did not send it in time.
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
    len: usize,
    ctx: &ConnCtx,
) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + ctx.header_timeout;
    let mut b = std::mem::take(buf);
    while b.len() < start + len {
        b.reserve(start + len - b.len());
        let (l, cap) = (b.len(), b.capacity());
        let wait = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(wait, stream.read(b.slice_mut(l..cap))).await {
            Err(_elapsed) => return Ok(None),
            Ok((result, slice)) => {
                b = slice.into_inner();
                match result {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(Some(b))
}

/// Write and clear the pending output (keeping its allocation).
async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>, ctx: &ConnCtx) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let mut buf = write_all(stream, std::mem::take(out), ctx).await?;
    buf.clear();
    *out = buf;
    Ok(())
}

/// Write all of `buf`; each write must make progress within the idle timeout.
async fn write_all<T: IoBuf + 'static>(
    stream: &mut TcpStream,
    mut buf: T,
    ctx: &ConnCtx,
) -> io::Result<T> {
    let len = buf.bytes_init();
    let mut written = 0;
    while written < len {
        let write = stream.write(buf.slice(written..len));
        let Ok((result, slice)) = monoio::time::timeout(ctx.idle_timeout, write).await else {
            return Err(io::ErrorKind::TimedOut.into());
        };
        buf = slice.into_inner();
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                ctx.shared.metrics.bytes_sent(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Half-close, then discard input until the client closes (bounded in time and bytes).
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut scratch: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    while drained < LINGER_BYTES {
        let wait = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(wait, stream.read(scratch)).await {
            Ok((Ok(n), buf)) if n > 0 => {
                drained += n;
                scratch = buf;
                scratch.clear();
            }
            _ => return,
        }
    }
}
