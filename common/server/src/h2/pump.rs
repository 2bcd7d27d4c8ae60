//! Bytes between the socket (monoio, owned buffers, rustls) and the h2 library (tokio io traits
//! on an in-memory duplex). See the module docs of [`super`].
//!
//! Two tasks, because reading and writing must go on at once (a client uploads while we
//! answer; h2 sends WINDOW_UPDATEs while we receive): the reader owns the socket's read half,
//! the writer its write half; the rustls session is shared in a `RefCell` and never borrowed
//! across an await. Only the writer writes the socket: when the reader makes rustls produce
//! records (alerts, TLS 1.3 key-update answers) it wakes the writer to send them.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use futures_channel::mpsc;
use futures_core::Stream;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use ringcast_proto::http::h2_guard::FrameGuard;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf};

use crate::worker::Worker;

/// Bytes in flight in each direction of the duplex.
const DUPLEX: usize = 256 * 1024;
const CHUNK: usize = 64 * 1024;

type Tls = Rc<RefCell<ServerConnection>>;

/// Start the two tasks; returns h2's end of the duplex and a future that ends with both.
pub(super) fn start(
    stream: TcpStream,
    tls: Option<(ServerConnection, Vec<u8>)>,
    worker: Rc<Worker>,
) -> (DuplexStream, impl Future<Output = ()>) {
    let (h2_end, our_end) = tokio::io::duplex(DUPLEX);
    let (from_h2, to_h2) = tokio::io::split(our_end);
    let (rd, wr) = stream.into_split();
    let (tls, pending) = match tls {
        Some((mut c, pending)) => {
            // The writer flushes after every piece: no need for rustls to stop taking input.
            c.set_buffer_limit(None);
            (Some(Rc::new(RefCell::new(c))), pending)
        }
        None => (None, Vec::new()),
    };
    let (wake, woken) = mpsc::unbounded();
    // The writer ends first when h2 closes the connection; the reader, parked on a socket read,
    // must not hold the connection open until the client closes or the idle timeout fires.
    let (writer_done, stop_reading) = futures_channel::oneshot::channel::<()>();
    let reader = monoio::spawn(read_side(
        rd,
        tls.clone(),
        pending,
        to_h2,
        wake,
        stop_reading,
        Rc::clone(&worker),
    ));
    let writer = monoio::spawn(async move {
        write_side(wr, tls, from_h2, woken, worker).await;
        drop(writer_done);
    });
    (h2_end, async move {
        writer.await;
        reader.await;
    })
}

/// Move plaintext out of rustls into `plain`; `Ok(true)` once the peer sent close_notify.
fn drain(tls: &mut ServerConnection, plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut piece = [0u8; 16 * 1024];
    loop {
        match tls.reader().read(&mut piece) {
            Ok(0) => return Ok(true),
            Ok(n) => plain.extend_from_slice(&piece[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Decrypt `cipher` into `plain`; `Ok(true)` on close_notify.
fn decrypt(tls: &mut ServerConnection, mut cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut closed = drain(tls, plain)?;
    while !cipher.is_empty() {
        tls.read_tls(&mut cipher)?;
        tls.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        closed |= drain(tls, plain)?;
    }
    Ok(closed)
}

async fn read_side<R: AsyncReadRent>(
    mut rd: R,
    tls: Option<Tls>,
    pending: Vec<u8>,
    mut to_h2: tokio::io::WriteHalf<DuplexStream>,
    wake: mpsc::UnboundedSender<()>,
    mut stop: futures_channel::oneshot::Receiver<()>,
    worker: Rc<Worker>,
) {
    let mut guard = FrameGuard::new(worker.settings.h2.limits);
    let idle = worker.settings.idle_timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut plain = Vec::with_capacity(CHUNK);
    let mut cipher = pending;
    loop {
        plain.clear();
        let closed = match &tls {
            Some(t) => {
                let res = decrypt(&mut t.borrow_mut(), &cipher, &mut plain);
                if t.borrow().wants_write() {
                    let _ = wake.unbounded_send(());
                }
                match res {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "h2: TLS error");
                        break;
                    }
                }
            }
            None => {
                plain.extend_from_slice(&cipher);
                false
            }
        };
        if let Err(flood) = guard.feed(&plain, Instant::now()) {
            worker.stats.h2.flood(flood);
            tracing::info!(
                frame = flood.as_str(),
                "h2: flood limit; closing the connection"
            );
            break;
        }
        if !plain.is_empty() && to_h2.write_all(&plain).await.is_err() {
            break;
        }
        if closed {
            break;
        }
        buf.clear();
        let read = monoio::time::timeout(idle, rd.read(buf.slice_mut(0..CHUNK)));
        let read = monoio::select! {
            r = read => r,
            // The writer finished (h2 closed the connection): the socket is done.
            _ = &mut stop => break,
        };
        let Ok((res, slice)) = read else {
            // Idle past the timeout: end the connection.
            break;
        };
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                cipher.clear();
                cipher.extend_from_slice(&buf[..n]);
            }
        }
    }
    // h2 sees the end of its input and finishes the connection.
    let _ = to_h2.shutdown().await;
}

enum Next {
    Data(usize),
    Flush,
    End,
}

async fn write_side<W: AsyncWriteRent>(
    mut wr: W,
    tls: Option<Tls>,
    mut from_h2: tokio::io::ReadHalf<DuplexStream>,
    mut woken: mpsc::UnboundedReceiver<()>,
    worker: Rc<Worker>,
) {
    let idle = worker.settings.idle_timeout;
    let mut buf = vec![0u8; CHUNK];
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK + 1024);
    let mut reader_gone = false;
    loop {
        let next = poll_fn(|cx| {
            if !reader_gone {
                match Pin::new(&mut woken).poll_next(cx) {
                    Poll::Ready(Some(())) => return Poll::Ready(Next::Flush),
                    Poll::Ready(None) => reader_gone = true,
                    Poll::Pending => {}
                }
            }
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut from_h2).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(Next::End),
                Poll::Ready(Ok(())) => Poll::Ready(Next::Data(rb.filled().len())),
                Poll::Ready(Err(_)) => Poll::Ready(Next::End),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        out.clear();
        let end = matches!(next, Next::End);
        match &tls {
            Some(t) => {
                let mut t = t.borrow_mut();
                if let Next::Data(n) = next {
                    if t.writer().write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                if end {
                    t.send_close_notify();
                }
                while t.wants_write() {
                    if t.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            None => {
                if let Next::Data(n) = next {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        }
        if !out.is_empty() {
            let len = out.len();
            let write = monoio::time::timeout(idle, wr.write_all(std::mem::take(&mut out)));
            match write.await {
                Ok((Ok(_), b)) => {
                    worker.stats.bytes_sent(len as u64);
                    out = b;
                }
                _ => break,
            }
        }
        if end {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
