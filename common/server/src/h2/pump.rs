//! Bytes between the socket (monoio, owned buffers, rustls) and the h2 library (tokio io traits).
//! See the module docs of [`super`].
//!
//! h2 gets an [`H2Io`]: its `poll_read` takes plaintext straight out of the rustls session (or,
//! in cleartext, out of the last socket read) and its `poll_write` appends to one plaintext
//! buffer. Two monoio tasks do the socket I/O, because reading and writing must go on at once
//! (a client uploads while we answer; h2 sends WINDOW_UPDATEs while we receive): the reader
//! reads the socket and feeds rustls, the writer encrypts what h2 wrote and writes it. All
//! state is in one `RefCell` shared by the three, never borrowed across an await.
//!
//! Why not a `tokio::io::duplex` between h2 and the tasks (the first version): it cost a copy
//! each way plus a mutex and waker juggling per call, and the writer encrypted whatever piece
//! the duplex held. Here the writer runs only after the connection task yields (one thread,
//! FIFO run queue), so everything h2 wrote in that turn — the HEADERS and DATA frames of every
//! stream it answered — is encrypted in one go: full 16 KiB TLS records and one socket write
//! per batch instead of a record per frame (fewer records also cost the client less).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, BufRead, IoSlice, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use ringcast_proto::http::h2_guard::FrameGuard;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::worker::Worker;

/// Socket read size.
const CHUNK: usize = 64 * 1024;
/// Plaintext h2 may have written and the writer not yet taken (it takes all of it each turn,
/// so this is per socket write in flight): beyond it `poll_write` waits.
const OUT_LIMIT: usize = 256 * 1024;

/// What the connection task (h2) and the two socket tasks share.
struct Shared {
    tls: Option<ServerConnection>,
    /// Cleartext only: bytes read from the socket h2 has not taken yet, from `in_pos`.
    plain_in: Vec<u8>,
    in_pos: usize,
    /// The input ended (socket end, close_notify, a TLS error): h2 reads the end once the
    /// plaintext before it is taken.
    in_end: bool,
    /// Plaintext h2 wrote and the writer has not taken yet.
    out_plain: Vec<u8>,
    /// h2 shut its side down (or dropped it): the writer sends what is left and closes.
    out_closed: bool,
    /// A socket write failed: h2's writes fail from now on.
    out_broken: bool,
    /// h2 waits for input / for room in `out_plain`.
    h2_read: Option<Waker>,
    h2_write: Option<Waker>,
    /// The reader waits for h2 to take the plaintext before feeding rustls more.
    reader: Option<Waker>,
    /// The writer waits for something to write.
    writer: Option<Waker>,
}

fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        // A monoio wake only queues the task (same thread): safe with the state borrowed.
        w.wake();
    }
}

impl Shared {
    /// The reader may give rustls (or h2) more input.
    fn room_for_input(&self) -> bool {
        match &self.tls {
            // Without pending plaintext (rustls's own back-pressure rule).
            Some(t) => t.wants_read() || self.in_end,
            None => self.in_pos == self.plain_in.len(),
        }
    }

    /// The writer has something to send.
    fn output_ready(&self) -> bool {
        !self.out_plain.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}

/// h2's end of the connection: tokio io traits over [`Shared`].
pub(super) struct H2Io {
    shared: Rc<RefCell<Shared>>,
    guard: FrameGuard,
    worker: Rc<Worker>,
}

/// Start the two tasks; returns h2's io and a future that ends with both.
pub(super) fn start(
    stream: TcpStream,
    tls: Option<ServerConnection>,
    pending: Vec<u8>,
    worker: Rc<Worker>,
) -> (H2Io, impl Future<Output = ()>) {
    let tls = tls.map(|mut c| {
        // The writer hands rustls all of h2's output at once; `OUT_LIMIT` bounds it.
        c.set_buffer_limit(None);
        c
    });
    let shared = Rc::new(RefCell::new(Shared {
        tls,
        plain_in: Vec::new(),
        in_pos: 0,
        in_end: false,
        out_plain: Vec::with_capacity(16 * 1024),
        out_closed: false,
        out_broken: false,
        h2_read: None,
        h2_write: None,
        reader: None,
        writer: None,
    }));
    let (rd, wr) = stream.into_split();
    // The writer ends first when h2 closes the connection; the reader, parked on a socket read,
    // must not hold the connection open until the client closes or the idle timeout fires.
    let (writer_done, stop_reading) = futures_channel::oneshot::channel::<()>();
    let reader = monoio::spawn(read_side(
        rd,
        Rc::clone(&shared),
        pending,
        stop_reading,
        Rc::clone(&worker),
    ));
    let writer = monoio::spawn({
        let shared = Rc::clone(&shared);
        let worker = Rc::clone(&worker);
        async move {
            write_side(wr, shared, worker).await;
            drop(writer_done);
        }
    });
    let io = H2Io {
        shared,
        guard: FrameGuard::new(worker.settings.h2.limits),
        worker,
    };
    (io, async move {
        writer.await;
        reader.await;
    })
}

impl H2Io {
    /// Run the flood guard over the bytes just given to h2.
    fn check(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Err(flood) = self.guard.feed(bytes, Instant::now()) {
            self.worker.stats.h2.flood(flood);
            tracing::info!(
                frame = flood.as_str(),
                "h2: flood limit; closing the connection"
            );
            return Err(io::Error::new(io::ErrorKind::InvalidData, "h2 flood limit"));
        }
        Ok(())
    }
}

impl AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let start = buf.filled().len();
        {
            let mut guard = this.shared.borrow_mut();
            let sh = &mut *guard;
            match &mut sh.tls {
                Some(tls) => {
                    // Copied out of rustls's buffer by chunk (`fill_buf`): `read` would want
                    // h2's uninitialised buffer zeroed first, on every call.
                    let mut reader = tls.reader();
                    let mut got = 0;
                    let end = loop {
                        match reader.fill_buf() {
                            // close_notify: the end.
                            Ok([]) => break got == 0,
                            Ok(chunk) => {
                                let n = chunk.len().min(buf.remaining());
                                buf.put_slice(&chunk[..n]);
                                reader.consume(n);
                                got += n;
                                if buf.remaining() == 0 {
                                    break false;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                if got == 0 && !sh.in_end {
                                    park(&mut sh.h2_read, cx);
                                    wake(&mut sh.reader);
                                    return Poll::Pending;
                                }
                                // Data, or the socket ended / rustls failed (the end).
                                break false;
                            }
                            // The peer closed the socket without close_notify: an end like
                            // any other (h2 notices a truncated frame itself).
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break got == 0,
                            Err(_) if got > 0 => break false,
                            Err(e) => return Poll::Ready(Err(e)),
                        }
                    };
                    if end {
                        sh.in_end = true;
                    }
                    // rustls may take more ciphertext now.
                    wake(&mut sh.reader);
                }
                None => {
                    let avail = &sh.plain_in[sh.in_pos..];
                    if avail.is_empty() {
                        if !sh.in_end {
                            park(&mut sh.h2_read, cx);
                            wake(&mut sh.reader);
                            return Poll::Pending;
                        }
                    } else {
                        let n = avail.len().min(buf.remaining());
                        buf.put_slice(&avail[..n]);
                        sh.in_pos += n;
                        if sh.in_pos == sh.plain_in.len() {
                            wake(&mut sh.reader);
                        }
                    }
                }
            }
        }
        // Every byte h2 gets passes the flood guard first.
        Poll::Ready(this.check(&buf.filled()[start..]))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.shared.borrow_mut();
        let sh = &mut *guard;
        if sh.out_broken || sh.out_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if sh.out_plain.len() >= OUT_LIMIT {
            park(&mut sh.h2_write, cx);
            return Poll::Pending;
        }
        let mut n = 0;
        for b in bufs {
            sh.out_plain.extend_from_slice(b);
            n += b.len();
        }
        // The writer runs after this task yields: whatever else h2 writes in this turn goes
        // out with it.
        wake(&mut sh.writer);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        // h2 then hands a DATA frame's head and payload in one call (and chains payloads from
        // 256 bytes on instead of copying them into its own buffer first).
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer was woken by the write; it sends after this turn.
        if self.shared.borrow().out_broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut sh = self.shared.borrow_mut();
        sh.out_closed = true;
        wake(&mut sh.writer);
        Poll::Ready(Ok(()))
    }
}

impl Drop for H2Io {
    fn drop(&mut self) {
        let mut sh = self.shared.borrow_mut();
        sh.out_closed = true;
        wake(&mut sh.writer);
    }
}

async fn read_side<R: AsyncReadRent>(
    mut rd: R,
    shared: Rc<RefCell<Shared>>,
    pending: Vec<u8>,
    mut stop: futures_channel::oneshot::Receiver<()>,
    worker: Rc<Worker>,
) {
    let idle = worker.settings.idle_timeout;
    let mut rx = pending;
    let mut pos = 0;
    loop {
        if pos < rx.len() {
            // Wait until h2 took what was given before (or the writer ended the connection).
            let room = poll_fn(|cx| {
                let mut sh = shared.borrow_mut();
                if sh.room_for_input() || sh.out_closed {
                    Poll::Ready(!sh.out_closed)
                } else {
                    park(&mut sh.reader, cx);
                    Poll::Pending
                }
            })
            .await;
            if !room {
                break;
            }
            let mut guard = shared.borrow_mut();
            let sh = &mut *guard;
            if sh.in_end {
                break;
            }
            match &mut sh.tls {
                Some(tls) => {
                    let fed = tls.read_tls(&mut &rx[pos..]).and_then(|n| {
                        tls.process_new_packets()
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        Ok(n)
                    });
                    match fed {
                        // Nothing taken: rustls saw close_notify; nothing after it counts.
                        Ok(0) => sh.in_end = true,
                        Ok(n) => pos += n,
                        Err(e) => {
                            tracing::debug!(error = %e, "h2: TLS error");
                            sh.in_end = true;
                        }
                    }
                    // Alerts, TLS 1.3 key-update answers: the writer sends them.
                    if tls.wants_write() {
                        wake(&mut sh.writer);
                    }
                }
                None => {
                    // h2 took everything before: hand it this read's buffer whole (no copy).
                    std::mem::swap(&mut sh.plain_in, &mut rx);
                    sh.in_pos = pos;
                    rx.clear();
                    pos = 0;
                }
            }
            wake(&mut sh.h2_read);
            if sh.in_end {
                break;
            }
            continue;
        }
        rx.clear();
        pos = 0;
        // (`pending`, or the buffer h2 gave back in cleartext, may be smaller.)
        rx.reserve(CHUNK);
        let read = monoio::time::timeout(idle, rd.read(rx.slice_mut(0..CHUNK)));
        let read = monoio::select! {
            r = read => r,
            // The writer finished (h2 closed the connection): the socket is done.
            _ = &mut stop => break,
        };
        // Idle past the timeout, or the socket ended: the end of h2's input.
        let Ok((res, slice)) = read else { break };
        rx = slice.into_inner();
        match res {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let mut sh = shared.borrow_mut();
    sh.in_end = true;
    if let Some(tls) = &mut sh.tls {
        // Tell rustls, so a missing close_notify reads as such.
        let _ = tls.read_tls(&mut io::empty());
    }
    wake(&mut sh.h2_read);
}

async fn write_side<W: AsyncWriteRent>(mut wr: W, shared: Rc<RefCell<Shared>>, worker: Rc<Worker>) {
    let idle = worker.settings.idle_timeout;
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let closing = poll_fn(|cx| {
            let mut sh = shared.borrow_mut();
            if sh.output_ready() {
                Poll::Ready(false)
            } else if sh.out_closed {
                Poll::Ready(true)
            } else {
                park(&mut sh.writer, cx);
                Poll::Pending
            }
        })
        .await;
        out.clear();
        {
            let mut guard = shared.borrow_mut();
            let sh = &mut *guard;
            match &mut sh.tls {
                Some(tls) => {
                    if !sh.out_plain.is_empty() {
                        // Buffer limit off: rustls takes it all (as full records).
                        let _ = tls.writer().write_all(&sh.out_plain);
                        sh.out_plain.clear();
                    }
                    if closing {
                        tls.send_close_notify();
                    }
                    while tls.wants_write() {
                        if tls.write_tls(&mut out).is_err() {
                            break;
                        }
                    }
                }
                // h2 gets the empty buffer back to write into while this one is sent.
                None => std::mem::swap(&mut out, &mut sh.out_plain),
            }
            wake(&mut sh.h2_write);
        }
        if !out.is_empty() {
            let len = out.len();
            let write = monoio::time::timeout(idle, wr.write_all(std::mem::take(&mut out)));
            match write.await {
                Ok((Ok(_), b)) => {
                    worker.stats.bytes_sent(len as u64);
                    out = b;
                }
                _ => {
                    let mut sh = shared.borrow_mut();
                    sh.out_broken = true;
                    wake(&mut sh.h2_write);
                    wake(&mut sh.h2_read);
                    break;
                }
            }
        }
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
