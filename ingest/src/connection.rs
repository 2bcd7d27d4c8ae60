//! One HTTP/1.1 connection on a monoio core: read request heads (with limits and timeouts), give
//! the handler incremental access to the body, write the response with framing and CORS headers,
//! then either keep the connection alive, drain a small unread body, or close it gracefully.
//!
//! Timeouts: a connection with no request in progress may idle for `idle_timeout`; once the
//! first byte of a head arrived the whole head must follow within `header_timeout` (slow-header
//! defence, answered 408); body reads wait at most `idle_timeout` each.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::{parse_request, HttpError, Limits, Method, RequestHead, ResponseHead};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::response::Response;
use crate::router;
use crate::server::App;

/// Headers a browser (tus-js-client) may read from cross-origin responses.
pub const CORS_EXPOSE_HEADERS: &str = "Location, Upload-Offset, Upload-Length, Tus-Resumable, \
     Tus-Version, Tus-Extension, Tus-Max-Size, Ringcast-Video-Id, Ringcast-Job-Id";

/// Unread request bodies up to this size are read and dropped to keep the connection; larger
/// ones cost more than a new connection does.
const DRAIN_MAX: u64 = 256 * 1024;
/// How long a closing connection keeps reading (and dropping) what the client still sends, so
/// that closing with unread data does not make the kernel send RST and destroy the response
/// before the client read it (nginx's lingering close).
const LINGER: Duration = Duration::from_secs(2);
/// Read buffer growth step for request heads.
const HEAD_READ: usize = 8 * 1024;

/// What waiting for a request head produced.
enum HeadRead {
    Request(RequestHead),
    /// Peer closed, idle timeout or shutdown between requests: close quietly.
    Closed,
    /// The head broke the syntax or the limits: answer and close.
    Invalid(HttpError),
    /// Part of a head arrived but not the rest in time.
    TimedOut,
}

/// A client connection with its read buffer and the current request's body state.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket and not consumed yet (head bytes, then body bytes).
    buf: Vec<u8>,
    limits: Limits,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Body bytes of the current request not read yet; `None` = unknown (chunked).
    body_remaining: Option<u64>,
    /// The client sent `Expect: 100-continue` and waits for our go-ahead before the body.
    continue_pending: bool,
    /// An I/O error or timeout happened: no further requests on this connection.
    broken: bool,
}

impl Conn {
    fn new(stream: TcpStream, app: &App) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(HEAD_READ),
            limits: app.limits,
            header_timeout: app.config.header_timeout(),
            idle_timeout: app.config.idle_timeout(),
            body_remaining: Some(0),
            continue_pending: false,
            broken: false,
        }
    }

    /// Body bytes not read yet (`None` for a chunked body, which handlers here do not read).
    pub fn body_remaining(&self) -> Option<u64> {
        self.body_remaining
    }

    /// Read the next piece of the request body into `out` (cleared first): up to `max` bytes,
    /// never past the end of this request's body. Returns 0 only when the body is complete.
    /// An early end of the stream is `UnexpectedEof`, a stall longer than the idle timeout is
    /// `TimedOut`; both leave the connection unusable.
    pub async fn read_body(
        &mut self,
        mut out: Vec<u8>,
        max: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        out.clear();
        if out.capacity() == 0 {
            out.reserve(max.max(1));
        }
        let remaining = self.body_remaining.unwrap_or(0);
        let want = remaining.min(max as u64).min(out.capacity() as u64) as usize;
        if want == 0 {
            return (Ok(0), out);
        }
        if self.continue_pending {
            self.continue_pending = false;
            let (res, _) = self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
                .await;
            if let Err(e) = res {
                self.broken = true;
                return (Err(e), out);
            }
        }
        // Bytes that arrived together with the head come first.
        if !self.buf.is_empty() {
            let n = want.min(self.buf.len());
            out.extend_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            self.body_remaining = Some(remaining - n as u64);
            return (Ok(n), out);
        }
        let read =
            monoio::time::timeout(self.idle_timeout, self.stream.read(out.slice_mut(0..want)));
        match read.await {
            Err(_elapsed) => {
                // The buffer went down with the cancelled read; hand back a fresh one.
                self.broken = true;
                (Err(io::ErrorKind::TimedOut.into()), Vec::new())
            }
            Ok((Ok(0), slice)) => {
                self.broken = true;
                (Err(io::ErrorKind::UnexpectedEof.into()), slice.into_inner())
            }
            Ok((Ok(n), slice)) => {
                self.body_remaining = Some(remaining - n as u64);
                (Ok(n), slice.into_inner())
            }
            Ok((Err(e), slice)) => {
                self.broken = true;
                (Err(e), slice.into_inner())
            }
        }
    }

    /// Next piece of a `Transfer-Encoding: chunked` body, decoded into `out` (cleared first).
    /// `Ok(false)` once the last chunk (and trailers) were read; the connection then carries
    /// on with the next request. Errors leave the connection unusable: a stall longer than the
    /// idle timeout is `TimedOut`, an early end `UnexpectedEof`, bad framing `InvalidData`.
    pub async fn read_chunked(
        &mut self,
        decoder: &mut ChunkedDecoder,
        out: &mut Vec<u8>,
    ) -> io::Result<bool> {
        out.clear();
        if decoder.is_done() {
            return Ok(false);
        }
        if self.continue_pending {
            self.continue_pending = false;
            let (res, _) = self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
                .await;
            if let Err(e) = res {
                self.broken = true;
                return Err(e);
            }
        }
        loop {
            if !self.buf.is_empty() {
                let used = match decoder.decode(&self.buf, out) {
                    Ok(used) => used,
                    Err(e) => {
                        self.broken = true;
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                };
                self.buf.drain(..used);
                if decoder.is_done() {
                    self.body_remaining = Some(0);
                }
                // The last data may arrive together with the terminating chunk: hand it out
                // first; the next call reports the end.
                if !out.is_empty() {
                    return Ok(true);
                }
                if decoder.is_done() {
                    return Ok(false);
                }
            }
            match monoio::time::timeout(self.idle_timeout, self.fill()).await {
                Err(_elapsed) => {
                    self.broken = true;
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Ok(Ok(0)) => {
                    self.broken = true;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
    }

    /// Write bytes straight to the socket (streamed responses that frame themselves), giving
    /// up after the idle timeout: a reader that takes nothing for that long is dropped.
    pub async fn write_raw(&mut self, data: Vec<u8>) -> io::Result<()> {
        match monoio::time::timeout(self.idle_timeout, self.stream.write_all(data)).await {
            Ok((Ok(_), _)) => Ok(()),
            Ok((Err(e), _)) => {
                self.broken = true;
                Err(e)
            }
            Err(_elapsed) => {
                self.broken = true;
                Err(io::ErrorKind::TimedOut.into())
            }
        }
    }

    /// Read and drop the rest of the body.
    async fn discard_body(&mut self) -> io::Result<()> {
        let mut scratch = Vec::with_capacity(16 * 1024);
        loop {
            let (res, b) = self.read_body(scratch, 16 * 1024).await;
            scratch = b;
            if res? == 0 {
                return Ok(());
            }
        }
    }

    /// Append whatever the socket has to `buf`.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < HEAD_READ / 2 {
            self.buf.reserve(HEAD_READ);
        }
        let buf = std::mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.stream.read(buf.slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        res
    }

    async fn read_head(&mut self, shutdown: &mut watch::Receiver<bool>) -> HeadRead {
        let mut deadline: Option<Instant> = None;
        loop {
            if !self.buf.is_empty() {
                match parse_request(&self.buf, &self.limits) {
                    Ok(Some((head, used))) => {
                        self.buf.drain(..used);
                        return HeadRead::Request(head);
                    }
                    Ok(None) => {}
                    Err(e) => return HeadRead::Invalid(e),
                }
            }
            let result = match deadline {
                // A head is under way: it must complete before its deadline.
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    match monoio::time::timeout(left, self.fill()).await {
                        Ok(r) => r,
                        Err(_) => return HeadRead::TimedOut,
                    }
                }
                // Between requests: idle timeout, and a shutdown closes the connection now.
                None => {
                    let idle = self.idle_timeout;
                    monoio::select! {
                        _ = shutdown.wait_for(|stop| *stop) => return HeadRead::Closed,
                        r = monoio::time::timeout(idle, self.fill()) => match r {
                            Ok(r) => r,
                            Err(_) => return HeadRead::Closed,
                        },
                    }
                }
            };
            match result {
                Ok(0) | Err(_) => return HeadRead::Closed,
                Ok(_) => {
                    deadline.get_or_insert_with(|| Instant::now() + self.header_timeout);
                }
            }
        }
    }

    /// Write `resp` with framing and CORS headers; the body is left out for HEAD requests.
    async fn write_response(
        &mut self,
        resp: &Response,
        head_request: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = ResponseHead::new(resp.status);
        for (name, value) in &resp.headers {
            head = head.header(name, value.clone());
        }
        head = head
            .header("Access-Control-Allow-Origin", "*")
            .header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
        // RFC 9110 §8.6: no Content-Length on 1xx/204 (and 304, which we never send).
        let framed = !(resp.status < 200 || resp.status == 204 || resp.status == 304);
        let len = framed.then_some(resp.body.len() as u64);
        let mut out = Vec::with_capacity(512 + resp.body.len());
        head.write(&mut out, len, keep_alive);
        if framed && !head_request {
            out.extend_from_slice(&resp.body);
        }
        let (res, _) = self.stream.write_all(out).await;
        res.map(|_| ())
    }

    /// Close after a response while the client may still be sending: half-close our side, then
    /// read and drop its bytes until it closes too or [`LINGER`] passes.
    async fn linger_close(mut self) {
        let _ = self.stream.shutdown().await;
        let deadline = Instant::now() + LINGER;
        let mut scratch = Vec::with_capacity(16 * 1024);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            scratch.clear();
            match monoio::time::timeout(left, self.stream.read(scratch)).await {
                Ok((Ok(n), b)) if n > 0 => scratch = b,
                _ => return,
            }
        }
    }
}

/// Serve requests on `stream` until the client closes, an error, or shutdown.
pub async fn serve(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    // Responses are written in one piece; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, &app);
    loop {
        let head = match conn.read_head(&mut shutdown).await {
            HeadRead::Request(head) => head,
            HeadRead::Closed => return,
            HeadRead::Invalid(e) => {
                tracing::debug!(%peer, error = %e, "bad request head");
                app.metrics.request();
                let resp = crate::error::IngestError::Http(e).to_response();
                if conn.write_response(&resp, false, false).await.is_ok() {
                    conn.linger_close().await;
                }
                return;
            }
            HeadRead::TimedOut => {
                let resp =
                    Response::error(408, "request_timeout", "request head not received in time");
                let _ = conn.write_response(&resp, false, false).await;
                return;
            }
        };
        app.metrics.request();
        conn.body_remaining = if head.chunked {
            None
        } else {
            Some(head.body_len())
        };
        conn.continue_pending = head.version_minor >= 1
            && conn.body_remaining != Some(0)
            && head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

        let started = Instant::now();
        let span =
            tracing::info_span!("request", method = head.method.as_str(), path = head.path());
        let resp = router::route(&app, &head, &mut conn)
            .instrument(span.clone())
            .await;
        let Some(resp) = resp else {
            // The client went away mid-request; nobody is left to answer.
            return;
        };

        let mut keep_alive = head.keep_alive && !resp.close && !conn.broken && !*shutdown.borrow();
        // A body the handler did not read must be consumed or the connection closed, since its
        // bytes would otherwise be parsed as the next request.
        let mut drain = false;
        match conn.body_remaining {
            Some(0) => {}
            Some(n) if n <= DRAIN_MAX && !conn.continue_pending && keep_alive => drain = true,
            _ => keep_alive = false,
        }
        let head_request = head.method == Method::Head;
        let written = conn.write_response(&resp, head_request, keep_alive).await;
        span.in_scope(|| {
            tracing::debug!(
                status = resp.status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request done"
            )
        });
        if written.is_err() {
            return;
        }
        if drain && conn.discard_body().await.is_err() {
            return;
        }
        if !keep_alive {
            // Linger only when the client may still be sending; a broken peer gets nothing.
            if !conn.broken && (conn.body_remaining != Some(0) || !conn.buf.is_empty()) {
                conn.linger_close().await;
            }
            return;
        }
    }
}
