//! One client connection as the connection loop and the handlers see it: the socket, the read
//! buffer (heads and the body bytes that came with them), the pending output, and the state of
//! the current request's body. Handlers read bodies incrementally through it
//! ([`Conn::read_body`], [`Conn::read_chunked`], [`Conn::read_to_end`]) and may write a
//! streamed response themselves ([`Conn::write_raw`]).
//!
//! On a TLS connection the same methods read and write plaintext through the connection's
//! [`TlsSession`] (rustls in user space); with kernel TLS the socket itself encrypts and the
//! plain paths (and `sendfile`) are used.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::persistence::{Unread, CONTINUE};

use crate::head_body::HeadBody;
use crate::idle_timer::IdleTimer;
use crate::sendfile::{ready, would_block, Interest};
use crate::tls::stream::{TlsSession, Wire};
use crate::worker::Worker;

/// Bytes read per `read` call into the head buffer.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Why [`Conn::read_to_end`] gave no body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body not received in time")]
    TimedOut,
    #[error("request body not readable: {0}")]
    Io(#[from] io::Error),
}

/// A client connection (see the module docs).
pub struct Conn {
    /// The socket; `None` for one stream of an HTTP/2 connection (its body is read beforehand
    /// into `buf`, its response goes out through the h2 connection).
    pub(crate) stream: Option<TcpStream>,
    /// An HTTP/2 stream's client address (the socket belongs to the connection task).
    pub(crate) peer: Option<std::net::IpAddr>,
    /// Bytes read and not consumed yet start at `start` (pipelined heads, body bytes).
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    /// Responses queued for one write (pipelined batches).
    pub(crate) out: Vec<u8>,
    pub(crate) worker: Rc<Worker>,
    /// The current request's body bytes not read yet.
    pub(crate) unread: Unread,
    /// The client sent `Expect: 100-continue` and waits for our go-ahead before the body.
    pub(crate) continue_pending: bool,
    /// An I/O error or timeout happened: no further requests on this connection.
    pub(crate) broken: bool,
    /// This request's body read timeout when the handler set one
    /// ([`Conn::set_body_read_timeout`]); `None`: the server's idle timeout.
    pub(crate) body_read_timeout: Option<Duration>,
    /// TLS in user space; `None` on plain connections and once kernel TLS took over.
    pub(crate) tls: Option<Box<TlsSession>>,
    /// The connection came in on the TLS listener (user-space or kernel TLS).
    pub(crate) secure: bool,
    /// It opened with the HTTP/2 preface on the plain listener (h2c): HTTP/2 takes over.
    pub(crate) h2c: bool,
    /// The socket was switched to O_NONBLOCK for `sendfile` ([`crate::sendfile::set_nonblocking`]).
    pub(crate) nonblocking: bool,
    /// Bounds each write's progress by the idle timeout with one timer per connection instead
    /// of a `monoio::time::timeout` per write (a timer insert/remove and a clock read per
    /// response: half of the ≈5 % timers took of a worker on 1 KiB hits).
    pub(crate) write_timer: IdleTimer,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, worker: Rc<Worker>) -> Self {
        Self {
            stream: Some(stream),
            peer: None,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            out: Vec::with_capacity(4096),
            worker,
            unread: Unread::Nothing,
            continue_pending: false,
            broken: false,
            body_read_timeout: None,
            tls: None,
            secure: false,
            h2c: false,
            nonblocking: false,
            write_timer: IdleTimer::default(),
        }
    }

    /// One HTTP/2 stream seen as a connection by a handler: its whole request `body` (already
    /// received) is buffered, so `read_body`/`read_to_end` serve it; writing a response
    /// itself (`write_raw`) is not possible here (`Unsupported`).
    pub(crate) fn for_h2_stream(
        worker: Rc<Worker>,
        peer: Option<std::net::IpAddr>,
        body: Vec<u8>,
        secure: bool,
    ) -> Self {
        let unread = match body.len() {
            0 => Unread::Nothing,
            n => Unread::Bytes(n as u64),
        };
        Self {
            stream: None,
            peer,
            buf: body,
            start: 0,
            out: Vec::new(),
            worker,
            unread,
            continue_pending: false,
            broken: false,
            body_read_timeout: None,
            tls: None,
            secure,
            h2c: false,
            nonblocking: false,
            write_timer: IdleTimer::default(),
        }
    }

    /// The connection is HTTPS (TLS in user space or in the kernel).
    pub fn is_tls(&self) -> bool {
        self.secure
    }

    /// A file body ([`crate::Response::file`]) leaves this connection by `sendfile` (plain
    /// HTTP/1.1, or kernel TLS), not read and copied (user-space TLS, an HTTP/2 stream): a
    /// handler that could answer from memory or from a file prefers the file only then.
    pub fn sends_files_zero_copy(&self) -> bool {
        self.stream.is_some() && self.tls.is_none()
    }

    /// The socket, the user-space TLS session if any, and what its writes need.
    pub(crate) fn split(&mut self) -> (Option<&mut TlsSession>, Wire<'_>) {
        let idle = self.worker.settings.idle_timeout;
        let wire = Wire {
            stream: self
                .stream
                .as_mut()
                .expect("only HTTP/1.1 connections (with their socket) write through TLS here"),
            idle,
            timer: &mut self.write_timer,
            stats: &self.worker.stats,
        };
        (self.tls.as_deref_mut(), wire)
    }

    /// For the rest of the current request, a body read that waits longer than `timeout` for
    /// data fails with `TimedOut` (instead of after the server's idle timeout). A live
    /// publisher's silence must end its push well before the transcoder's own input timeout,
    /// so that the grace period for a reconnect can still run.
    pub fn set_body_read_timeout(&mut self, timeout: Duration) {
        self.body_read_timeout = Some(timeout);
    }

    fn body_idle(&self) -> Duration {
        self.body_read_timeout
            .unwrap_or(self.worker.settings.idle_timeout)
    }

    /// Body bytes not read yet: `Some(n)` for a `Content-Length` body (0 when none or read),
    /// `None` for (the rest of) a chunked body.
    pub fn body_remaining(&self) -> Option<u64> {
        match self.unread {
            Unread::Nothing => Some(0),
            Unread::Bytes(n) => Some(n),
            Unread::Chunked => None,
        }
    }

    /// The client's IP address (`None` if the socket cannot tell).
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match &self.stream {
            Some(s) => s.peer_addr().ok().map(|a| a.ip()),
            None => self.peer,
        }
    }

    /// The server is shutting down (a handler may end a long stream early).
    pub fn draining(&self) -> bool {
        self.worker.draining.get()
    }

    /// The process is draining or shutting down: `/readyz` should answer 503 (it may still be
    /// serving for the drain delay; see [`crate::shutdown`]).
    pub fn readiness_draining(&self) -> bool {
        self.worker.draining.get() || self.worker.shutdown.is_draining()
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Send `100 Continue` (with anything queued before it) once, before the first body read.
    async fn go_ahead(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.continue_pending) {
            return Ok(());
        }
        self.out.extend_from_slice(CONTINUE);
        self.flush().await
    }

    fn fail<T>(&mut self, e: io::Error) -> io::Result<T> {
        self.broken = true;
        Err(e)
    }

    /// Read the next piece of a `Content-Length` body into `out` (cleared first): up to `max`
    /// bytes, never past the end of this request's body. Returns 0 only when the body is
    /// complete (or chunked: use [`Conn::read_chunked`]). An early end of the stream is
    /// `UnexpectedEof`, a stall longer than the idle timeout `TimedOut`; both leave the
    /// connection unusable.
    pub async fn read_body(
        &mut self,
        mut out: Vec<u8>,
        max: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        out.clear();
        if out.capacity() == 0 {
            out.reserve(max.max(1));
        }
        self.read_body_into(out, max).await
    }

    /// [`Conn::read_body`] into any buffer, appended after its initialised bytes (up to `max`
    /// bytes and the buffer's capacity): the bytes land where the caller wants them, e.g. an
    /// aligned buffer that is written with O_DIRECT, without a copy. The buffer always comes
    /// back, also after a timeout (the read is cancelled, not dropped with it), with its earlier
    /// bytes intact. Returns 0 when the body is complete or the buffer is full.
    pub async fn read_body_into<B: IoBuf + IoBufMut>(
        &mut self,
        mut out: B,
        max: usize,
    ) -> (io::Result<usize>, B) {
        let Unread::Bytes(remaining) = self.unread else {
            return (Ok(0), out);
        };
        let init = out.bytes_init();
        let room = out.bytes_total().saturating_sub(init);
        let want = remaining.min(max as u64).min(room as u64) as usize;
        if want == 0 {
            return (Ok(0), out);
        }
        if let Err(e) = self.go_ahead().await {
            return (self.fail(e), out);
        }
        let left = |n: usize| match remaining - n as u64 {
            0 => Unread::Nothing,
            r => Unread::Bytes(r),
        };
        let idle = self.body_idle();
        if self.buffered().is_empty() && self.tls.is_some() {
            // TLS: decrypted into the connection's buffer (empty here), then copied below
            // like bytes that came with the head.
            match monoio::time::timeout(idle, self.fill()).await {
                Err(_elapsed) => return (self.fail(io::ErrorKind::TimedOut.into()), out),
                Ok(Ok(0)) => return (self.fail(io::ErrorKind::UnexpectedEof.into()), out),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return (self.fail(e), out),
            }
        }
        // Bytes that arrived together with the head (or decrypted) come first.
        if !self.buffered().is_empty() {
            let n = want.min(self.buffered().len());
            // SAFETY: `out` has room for `want >= n` bytes after its `init` initialised ones
            // (`bytes_total`); the source is this connection's own buffer, which cannot
            // overlap a buffer passed in by value; `set_init` then covers exactly the bytes
            // written.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.buf[self.start..].as_ptr(),
                    out.write_ptr().add(init),
                    n,
                );
                out.set_init(init + n);
            }
            self.start += n;
            self.unread = left(n);
            return (Ok(n), out);
        }
        let Some(stream) = self.stream.as_mut() else {
            // An HTTP/2 stream's body is all buffered: nothing more will come.
            return (self.fail(io::ErrorKind::UnexpectedEof.into()), out);
        };
        loop {
            let (res, slice) = read_within(stream, out.slice_mut(init..init + want), idle).await;
            out = slice.into_inner();
            return match res {
                Err(e) if would_block(&e) => {
                    if let Err(e) = ready(stream, Interest::Read, idle).await {
                        return (self.fail(e), out);
                    }
                    continue;
                }
                Ok(0) => (self.fail(io::ErrorKind::UnexpectedEof.into()), out),
                Ok(n) => {
                    self.unread = left(n);
                    (Ok(n), out)
                }
                Err(e) => (self.fail(e), out),
            };
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
        if let Err(e) = self.go_ahead().await {
            return self.fail(e);
        }
        loop {
            if !self.buffered().is_empty() {
                let used = match decoder.decode(&self.buf[self.start..], out) {
                    Ok(used) => used,
                    Err(e) => return self.fail(io::Error::new(io::ErrorKind::InvalidData, e)),
                };
                self.start += used;
                if decoder.is_done() {
                    self.unread = Unread::Nothing;
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
            let idle = self.body_idle();
            match monoio::time::timeout(idle, self.fill()).await {
                Err(_elapsed) => return self.fail(io::ErrorKind::TimedOut.into()),
                Ok(Ok(0)) => return self.fail(io::ErrorKind::UnexpectedEof.into()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return self.fail(e),
            }
        }
    }

    /// The whole `Content-Length` body, if it is at most `max` bytes and arrives `within` the
    /// given time (small bodies such as an API's JSON). Chunked bodies are not read here.
    pub async fn read_to_end(
        &mut self,
        max: usize,
        within: Duration,
    ) -> Result<Vec<u8>, BodyError> {
        let len = match self.unread {
            Unread::Nothing | Unread::Chunked => return Ok(Vec::new()),
            Unread::Bytes(n) if n > max as u64 => return Err(BodyError::TooLarge(max)),
            Unread::Bytes(n) => n as usize,
        };
        let deadline = Instant::now() + within;
        let mut body = Vec::with_capacity(len);
        let mut scratch = Vec::with_capacity(len.min(64 * 1024));
        while body.len() < len {
            let wait = deadline.saturating_duration_since(Instant::now());
            let read = monoio::time::timeout(wait, self.read_body(scratch, len - body.len()));
            // The connection closes after the answer (the body stays unread), lingering.
            let Ok((res, b)) = read.await else {
                return Err(BodyError::TimedOut);
            };
            scratch = b;
            match res? {
                0 => break,
                _ => body.extend_from_slice(&scratch),
            }
        }
        Ok(body)
    }

    /// Read and drop the rest of a `Content-Length` body.
    pub(crate) async fn discard_body(&mut self) -> io::Result<()> {
        let mut scratch = Vec::with_capacity(16 * 1024);
        loop {
            let (res, b) = self.read_body(scratch, 16 * 1024).await;
            scratch = b;
            if res? == 0 {
                return Ok(());
            }
        }
    }

    /// Write bytes straight to the socket (streamed responses that frame themselves) after
    /// anything queued; a reader that takes nothing for the idle timeout is dropped.
    pub async fn write_raw(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.flush().await?;
        match self.write_all(data).await {
            Ok(_) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Append whatever the socket has to `buf` (after dropping consumed bytes).
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        self.fill_with(false).await
    }

    /// [`Conn::fill`] for a keep-alive connection that waits for its next request: the client
    /// sends it only after reading the last response, so a receive tried at once nearly always
    /// finds nothing. On io_uring (Linux ≥ 5.19) the receive then arms the socket's poll first
    /// instead of failing once with `EAGAIN` and arming it after (`tcp_recvmsg` for nothing per
    /// request; nginx reads only sockets epoll reported readable). Plain TCP only.
    pub(crate) async fn fill_next_request(&mut self) -> io::Result<usize> {
        self.fill_with(self.worker.recv_poll_first).await
    }

    async fn fill_with(&mut self, mut poll_first: bool) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        if self.tls.is_some() {
            let mut buf = std::mem::take(&mut self.buf);
            let max = buf.capacity() - buf.len();
            let (tls, mut wire) = self.split();
            let res = tls
                .expect("checked")
                .read_plain(&mut wire, &mut buf, max)
                .await;
            self.buf = buf;
            return res;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        let mut buf = std::mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.capacity());
        let idle = self.worker.settings.idle_timeout;
        loop {
            let into = buf.slice_mut(len..cap);
            let (res, slice) = if poll_first {
                stream.read_poll_first(into).await
            } else {
                stream.read(into).await
            };
            buf = slice.into_inner();
            match res {
                Err(e) if would_block(&e) => {
                    // Readiness is awaited below; the retry needs no poll of its own.
                    poll_first = false;
                    if let Err(e) = ready(stream, Interest::Read, idle).await {
                        self.buf = buf;
                        return Err(e);
                    }
                }
                res => {
                    self.buf = buf;
                    return res;
                }
            }
        }
    }

    /// Write and clear the pending output (keeping its allocation).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let mut buf = self.write_all(out).await?;
        buf.clear();
        self.out = buf;
        Ok(())
    }

    /// Write the pending output followed by `body` with one `writev` (no copy of the body; see
    /// [`crate::head_body`]), then clear the output keeping its allocation. A short write
    /// finishes with plain writes of what is left. Plain TCP only (TLS copies anyway).
    pub(crate) async fn write_with_body(&mut self, body: Bytes) -> io::Result<()> {
        let (Some(stream), None) = (self.stream.as_mut(), self.tls.as_ref()) else {
            self.flush().await?;
            self.write_all(body).await?;
            return Ok(());
        };
        let idle = self.worker.settings.idle_timeout;
        let mut gather = HeadBody::new(std::mem::take(&mut self.out), body);
        let total = gather.len();
        let n = loop {
            let Some((result, back)) = self.write_timer.wait(idle, stream.writev(gather)).await
            else {
                return Err(io::ErrorKind::TimedOut.into());
            };
            gather = back;
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if would_block(&e) => ready(stream, Interest::Write, idle).await?,
                Err(e) => return Err(e),
            }
        };
        self.worker.stats.bytes_sent(n as u64);
        let HeadBody { mut head, body, .. } = gather;
        if n < total {
            if n < head.len() {
                // Rare (a nearly full socket buffer): the rest of the head, then the body.
                self.write_all(head[n..].to_vec()).await?;
                self.write_all(body).await?;
            } else {
                self.write_all(Bytes::slice(&body, n - head.len()..))
                    .await?;
            }
        }
        head.clear();
        self.out = head;
        Ok(())
    }

    /// Write all of `buf`; each write must make progress within the idle timeout.
    pub(crate) async fn write_all<T: IoBuf + AsRef<[u8]> + 'static>(
        &mut self,
        buf: T,
    ) -> io::Result<T> {
        if self.stream.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an HTTP/2 stream's response goes out through its connection",
            ));
        }
        match self.split() {
            (Some(tls), mut wire) => {
                tls.write_plain(&mut wire, buf.as_ref()).await?;
                Ok(buf)
            }
            (None, mut wire) => wire.write_all(buf).await,
        }
    }

    /// Close after the last response: close_notify on TLS, then the TCP half-close.
    pub(crate) async fn close(&mut self) {
        if self.tls.is_some() {
            let (tls, mut wire) = self.split();
            tls.expect("checked").close(&mut wire).await;
        }
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.shutdown().await;
        }
    }

    /// Half-close, then discard input until the client closes (bounded in time and bytes).
    pub(crate) async fn linger(&mut self) {
        if self.tls.is_some() {
            let (tls, mut wire) = self.split();
            tls.expect("checked").close(&mut wire).await;
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if stream.shutdown().await.is_err() {
            return;
        }
        let s = &self.worker.settings;
        let deadline = Instant::now() + s.linger_time;
        let max = s.linger_bytes;
        let mut drained = 0;
        let mut scratch: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        while drained < max {
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
}

/// One read from the socket that gives up after `idle` with `TimedOut` and hands the buffer
/// back either way: on the deadline the read is cancelled and awaited (io_uring owns the buffer
/// until it completes), so a caller's buffer with bytes in it is never lost with the read. A
/// read that completed while it was being cancelled keeps its bytes.
async fn read_within<T: IoBufMut>(
    stream: &mut TcpStream,
    buf: T,
    idle: Duration,
) -> monoio::BufResult<usize, T> {
    let canceller = Canceller::new();
    let mut read = std::pin::pin!(stream.cancelable_read(buf, canceller.handle()));
    monoio::select! {
        done = &mut read => done,
        _ = monoio::time::sleep(idle) => {
            canceller.cancel();
            match read.await {
                (Err(e), buf) if e.raw_os_error() == Some(libc::ECANCELED) => {
                    (Err(io::ErrorKind::TimedOut.into()), buf)
                }
                done => done,
            }
        }
    }
}
