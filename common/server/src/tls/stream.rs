//! rustls driven by hand over monoio's owned-buffer I/O.
//!
//! Why not `monoio-rustls`: the shell keeps the `TcpStream` itself (sendfile, peer address,
//! shutdown, kTLS all need the raw socket), reads into its own head buffer and writes `Bytes`
//! bodies; a wrapper stream would hide the socket and add a copy through its own buffers. What
//! rustls needs is small: feed it ciphertext (`read_tls` + `process_new_packets`), take
//! plaintext (`reader`), give it plaintext (`writer`) and write what it produced (`write_tls`).
//! Only `read`/`write` on the socket are used, so it behaves the same under io_uring and the
//! epoll driver.
//!
//! Buffers: `rx` holds ciphertext read from the socket and not yet taken by rustls (rustls
//! refuses more when its plaintext buffer is full, so a read can leave some behind); `tx` the
//! ciphertext of one flush. A read or write cancelled by a timeout loses its buffer (monoio
//! owns it during the call); the connection is then broken anyway, and the next use starts
//! from a fresh one.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::idle_timer::IdleTimer;
use crate::sendfile::{ready, would_block, Interest};
use crate::ServerStats;

/// Ciphertext read per socket read: a full TLS record (16 KiB + overhead) and then some.
const RX_CHUNK: usize = 32 * 1024;
/// Plaintext rustls may hold encrypted before we flush it: one socket write per this much.
const TX_LIMIT: usize = 256 * 1024;
/// File bodies are read and encrypted this much at a time (without kTLS).
const FILE_CHUNK: usize = 128 * 1024;

/// One TLS connection's protocol state and buffers (the socket stays with the caller).
pub(crate) struct TlsSession {
    tls: ServerConnection,
    rx: Vec<u8>,
    rx_start: usize,
    tx: Vec<u8>,
    /// The socket reported end of stream.
    eof: bool,
    /// Plaintext rustls holds that nobody read yet (from the last `process_new_packets`, less
    /// what was read since): a read zero-fills only that much of its destination, not all of
    /// it (an 8 KiB `memset` per request was 1.5 % of a TLS worker on 1 KiB hits).
    plain_ready: usize,
}

/// The writes a connection makes, TLS or plain: the socket, the per-write timeout and the
/// connection's timer that bounds it, the byte counter.
pub(crate) struct Wire<'a> {
    pub stream: &'a mut TcpStream,
    pub idle: Duration,
    pub timer: &'a mut IdleTimer,
    pub stats: &'a ServerStats,
}

impl Wire<'_> {
    /// Write all of `buf` to the socket (TLS records, or a plain connection's bytes); each
    /// write must progress within the idle timeout.
    pub(crate) async fn write_all<T: IoBuf + 'static>(&mut self, mut buf: T) -> io::Result<T> {
        let len = buf.bytes_init();
        let mut written = 0;
        while written < len {
            let write = self.stream.write(buf.slice(written..len));
            let Some((result, slice)) = self.timer.wait(self.idle, write).await else {
                return Err(io::ErrorKind::TimedOut.into());
            };
            buf = slice.into_inner();
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.stats.bytes_sent(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if would_block(&e) => ready(self.stream, Interest::Write, self.idle).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(buf)
    }
}

fn tls_err(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsSession {
    pub(crate) fn new(config: Arc<ServerConfig>) -> io::Result<Self> {
        let mut tls = ServerConnection::new(config).map_err(tls_err)?;
        tls.set_buffer_limit(Some(TX_LIMIT));
        Ok(Self {
            tls,
            rx: Vec::new(),
            rx_start: 0,
            tx: Vec::new(),
            eof: false,
            plain_ready: 0,
        })
    }

    pub(crate) fn connection(&self) -> &ServerConnection {
        &self.tls
    }

    /// Complete the handshake (the caller bounds it in time).
    pub(crate) async fn handshake(&mut self, wire: &mut Wire<'_>) -> io::Result<()> {
        while self.tls.is_handshaking() {
            self.flush(wire).await?;
            if !self.tls.is_handshaking() {
                break;
            }
            if !self.feed(wire).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        // The last flight and, in TLS 1.3, the session tickets.
        self.flush(wire).await
    }

    /// Give rustls more ciphertext (buffered, else from the socket) and act on it. `false`:
    /// the socket ended and nothing is buffered.
    async fn feed(&mut self, wire: &mut Wire<'_>) -> io::Result<bool> {
        if self.rx_start == self.rx.len() {
            if self.eof {
                return Ok(false);
            }
            let mut rx = std::mem::take(&mut self.rx);
            rx.clear();
            self.rx_start = 0;
            rx.reserve(RX_CHUNK);
            let (res, slice) = wire.stream.read(rx.slice_mut(0..RX_CHUNK)).await;
            self.rx = slice.into_inner();
            if res? == 0 {
                self.eof = true;
                // Tell rustls, so a missing close_notify reads as such.
                let _ = self.tls.read_tls(&mut io::empty());
                return Ok(false);
            }
        }
        let used = self.tls.read_tls(&mut &self.rx[self.rx_start..])?;
        self.rx_start += used;
        match self.tls.process_new_packets() {
            Ok(state) => self.plain_ready = state.plaintext_bytes_to_read(),
            Err(e) => {
                // rustls queued an alert saying why; send it before giving up.
                let _ = self.flush(wire).await;
                return Err(tls_err(e));
            }
        }
        // Handshake messages, key updates, alerts.
        self.flush(wire).await?;
        Ok(true)
    }

    /// Append up to `max` bytes of plaintext to `dst`: `Ok(0)` when the peer closed.
    pub(crate) async fn read_plain(
        &mut self,
        wire: &mut Wire<'_>,
        dst: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<usize> {
        loop {
            let len = dst.len();
            // At least one byte, so the reader still reports the end or an error when it holds
            // nothing.
            dst.resize(len + max.min(self.plain_ready.max(1)), 0);
            let got = self.tls.reader().read(&mut dst[len..]);
            dst.truncate(len + *got.as_ref().unwrap_or(&0));
            match got {
                Ok(n) => {
                    self.plain_ready = self.plain_ready.saturating_sub(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the socket without close_notify: most clients do that to
                // idle keep-alive connections; an end like any other (truncation of a response
                // is the client's problem, of a request body `read_body`'s).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.feed(wire).await? {
                // `read_tls` saw the end: the reader now reports it.
                continue;
            }
        }
    }

    /// Encrypt and write all of `data`.
    pub(crate) async fn write_plain(&mut self, wire: &mut Wire<'_>, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() {
            let n = self.tls.writer().write(&data[off..])?;
            off += n;
            self.flush(wire).await?;
            // Nothing taken with the send buffer just flushed: the session no longer sends
            // (closed); never spin on it.
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// `head`, then `len` bytes of `file` from `offset`, read and encrypted in user space (the
    /// TLS path of [`crate::sendfile::send_file`]; same contract).
    pub(crate) async fn send_file(
        &mut self,
        wire: &mut Wire<'_>,
        head: &[u8],
        file: &File,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        // rustls encrypts the head now and holds it; it leaves with the first file chunk.
        let mut off = 0;
        while off < head.len() {
            off += self.tls.writer().write(&head[off..])?;
            if off < head.len() {
                self.flush(wire).await?;
            }
        }
        let mut buf = vec![0u8; FILE_CHUNK.min(len as usize).max(1)];
        let mut sent = 0u64;
        while sent < len {
            let want = (len - sent).min(buf.len() as u64) as usize;
            // A page-cache read like sendfile's (a cold disk blocks the worker as sendfile does).
            let n = file.read_at(&mut buf[..want], offset + sent)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.write_plain(wire, &buf[..n]).await?;
            sent += n as u64;
        }
        self.flush(wire).await?;
        Ok(sent)
    }

    /// Queue close_notify and write it (best effort).
    pub(crate) async fn close(&mut self, wire: &mut Wire<'_>) {
        self.tls.send_close_notify();
        let _ = self.flush(wire).await;
    }

    /// Write everything rustls has produced.
    pub(crate) async fn flush(&mut self, wire: &mut Wire<'_>) -> io::Result<()> {
        while self.tls.wants_write() {
            let mut tx = std::mem::take(&mut self.tx);
            tx.clear();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut tx)?;
            }
            let tx = wire.write_all(tx).await?;
            self.tx = tx;
        }
        Ok(())
    }

    /// Plaintext rustls decrypted and nobody read yet (moved to `dst`), and whether
    /// ciphertext is left unprocessed: kTLS may take over only when it is not.
    pub(crate) fn drain_for_kernel(&mut self, dst: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            let len = dst.len();
            dst.resize(len + 16 * 1024, 0);
            let got = self.tls.reader().read(&mut dst[len..]);
            dst.truncate(len + *got.as_ref().unwrap_or(&0));
            match got {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.rx_start == self.rx.len() && !self.tls.wants_write())
    }

    pub(crate) fn into_connection(self) -> ServerConnection {
        self.tls
    }

    /// The rustls session and the ciphertext read but not yet given to it (HTTP/2 takes over
    /// the connection with both).
    pub(crate) fn into_parts(self) -> (ServerConnection, Vec<u8>) {
        let rest = self.rx[self.rx_start..].to_vec();
        (self.tls, rest)
    }
}
