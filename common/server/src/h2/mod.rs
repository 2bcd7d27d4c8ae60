//! HTTP/2 on the shell (ADR 0010): a TLS connection whose ALPN chose `h2` is served by the
//! `h2` library (hyperium) instead of the HTTP/1.1 loop, with the same [`Handler`]: each stream
//! becomes a [`RequestHead`] and a [`Conn`] of its own (its body buffered), so the edge's cache,
//! LL-HLS blocking reloads and every other route answer over h2 unchanged.
//!
//! - [`pump`]: h2 speaks tokio's poll-based io traits; the shell speaks monoio's owned-buffer
//!   calls. h2 reads plaintext straight from the connection's rustls session and writes into
//!   one buffer; two monoio tasks do the socket reads (feeding rustls) and writes (encrypting
//!   everything h2 wrote in one turn at once). No tokio runtime runs: the io traits need only
//!   wakers. Every byte h2 reads passes the flood guard first
//!   ([`ringcast_proto::http::h2_guard`]).
//! - [`stream`]: one request: head, buffered body (bounded), handler, response with h2 flow
//!   control (bodies in capacity-sized pieces; file bodies read and sent in 64 KiB pieces).
//!   Polled once in the connection task; a task of its own only if it has to wait.
//! - limits: concurrent streams, header list size, pending-accept and locally-errored resets
//!   (rapid reset), send buffer, windows — see [`H2Settings`]; frame floods — the guard.

mod pump;
mod stats;
mod stream;

pub use stats::H2Stats;

use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;
use monoio::net::TcpStream;
use ringcast_proto::http::h2_guard::H2Limits;
use rustls::ServerConnection;

use crate::handler::Handler;
use crate::worker::Worker;

/// What the h2 library is told (the values every h2 connection gets).
#[derive(Debug, Clone, Copy)]
pub struct H2Settings {
    /// Streams a client may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// Per-stream receive window (request bodies).
    pub initial_window_size: u32,
    /// Connection receive window.
    pub initial_connection_window_size: u32,
    /// Largest header list (decoded) a request may have.
    pub max_header_list_size: u32,
    /// Streams the client reset before we accepted them, at once (rapid reset, CVE-2023-44487):
    /// beyond it the connection gets GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we reset because the client broke the protocol, before GOAWAY.
    pub max_local_error_reset_streams: usize,
    /// Response bytes buffered per stream before the handler's send waits for the client.
    pub max_send_buffer_size: usize,
    /// Largest request body (buffered before the handler runs); larger: 413.
    pub max_request_body: usize,
    /// Frame floods (per connection and second).
    pub limits: H2Limits,
}

impl Default for H2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 128,
            initial_window_size: 1 << 20,
            initial_connection_window_size: 4 << 20,
            max_header_list_size: 32 * 1024,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 256,
            max_send_buffer_size: 256 * 1024,
            max_request_body: 1 << 20,
            limits: H2Limits::default(),
        }
    }
}

/// Serve an HTTP/2 connection on `stream`: through `tls` (rustls after the handshake) or in
/// cleartext (h2c with prior knowledge); `pending`: bytes already read from the socket (TLS
/// records, or cleartext frames with the preface).
pub(crate) async fn serve<H: Handler>(
    stream: TcpStream,
    tls: Option<ServerConnection>,
    pending: Vec<u8>,
    worker: Rc<Worker>,
    handler: Rc<H>,
) {
    let s = worker.settings.h2;
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let secure = tls.is_some();
    let (io, pumps) = pump::start(stream, tls, pending, Rc::clone(&worker));
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(s.max_concurrent_streams)
        .initial_window_size(s.initial_window_size)
        .initial_connection_window_size(s.initial_connection_window_size)
        .max_header_list_size(s.max_header_list_size)
        .max_pending_accept_reset_streams(s.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(s.max_local_error_reset_streams))
        .max_send_buffer_size(s.max_send_buffer_size);
    let limit = worker.settings.header_timeout;
    let handshake = monoio::time::timeout(limit, b.handshake::<_, Bytes>(io)).await;
    let mut conn = match handshake {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("h2 preface not received in time");
            return;
        }
    };
    worker.stats.h2.connection();
    let mut draining = false;
    // The allocation the next stream's future is polled in: reused while streams finish
    // without waiting, so a cache hit costs no task and no allocation (glibc malloc of a
    // future this size — several KiB, the edge's handler inside — was most of h2's malloc
    // time); a stream that waits takes it along into its task and the next one gets a new one.
    let mut slot = None;
    // No timer around `accept`: one per stream costs a timer insert and cancel each; the
    // shutdown flag is checked as streams arrive, and idle h2 connections are dropped with the
    // worker's runtime after the grace period, like idle HTTP/1.1 keep-alive connections.
    while let Some(next) = conn.accept().await {
        if worker.draining.get() && !draining {
            draining = true;
            conn.graceful_shutdown();
        }
        match next {
            Ok((req, respond)) => {
                let (w, h) = (Rc::clone(&worker), Rc::clone(&handler));
                let fut = stream::serve(req, respond, w, h, peer, secure);
                let stream = slot.get_or_insert_with(|| Box::pin(None));
                stream.set(Some(fut));
                // Most streams (cache hits) finish without waiting: run each here once and
                // spawn only those that wait (a miss, an LL-HLS blocking reload, flow control),
                // which saves scheduling a task per stream. A spawned stream is polled again
                // by its own task at once, so what it waits on learns that task's waker.
                let done = std::future::poll_fn(|cx| {
                    Poll::Ready(match stream.as_mut().as_pin_mut() {
                        Some(f) => f.poll(cx).is_ready(),
                        None => true,
                    })
                })
                .await;
                if done {
                    // Drop it now (the stream's handles, its `Conn`), keep the allocation.
                    stream.set(None);
                } else if let Some(mut waiting) = slot.take() {
                    monoio::spawn(async move {
                        if let Some(f) = waiting.as_mut().as_pin_mut() {
                            f.await;
                        }
                    });
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "h2 connection ended");
                break;
            }
        }
    }
    drop(conn);
    pumps.await;
}
