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

use std::cell::Cell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
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
    // Streams run in a runner (below) polled here: most streams (cache hits) finish without
    // waiting, so each is run here once and only one that waits (a miss, an LL-HLS blocking
    // reload, flow control) leaves, its runner spawned as a task and a new runner made. That
    // saves a task per stream, and an allocation and a move of the stream's future (several
    // KiB, the edge's handler inside) per stream: the runner builds each stream's future in
    // its own state. A spawned runner is polled again by its own task at once, so what its
    // stream waits on learns that task's waker.
    let mut runner: Option<Runner> = None;
    // No timer around `accept`: one per stream costs a timer insert and cancel each; the
    // shutdown flag is checked as streams arrive, and idle h2 connections are dropped with the
    // worker's runtime after the grace period, like idle HTTP/1.1 keep-alive connections.
    while let Some(next) = conn.accept().await {
        if worker.draining.get() && !draining {
            draining = true;
            conn.graceful_shutdown();
        }
        match next {
            Ok(args) => {
                let r = runner.get_or_insert_with(|| {
                    Runner::new(Rc::clone(&worker), Rc::clone(&handler), peer, secure)
                });
                r.inbox.args.set(Some(args));
                std::future::poll_fn(|cx| {
                    // Ready only once it is done for good (never while it serves streams).
                    let _ = r.run.as_mut().poll(cx);
                    Poll::Ready(())
                })
                .await;
                if r.inbox.busy.get() {
                    // The stream waits: it keeps this runner (which ends after it).
                    if let Some(r) = runner.take() {
                        r.inbox.detached.set(true);
                        monoio::spawn(r.run);
                    }
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

type StreamArgs = (
    http::Request<h2::RecvStream>,
    h2::server::SendResponse<Bytes>,
);

/// What the connection hands its runner.
#[derive(Default)]
struct Inbox {
    /// The next stream (set just before the runner is polled).
    args: Cell<Option<StreamArgs>>,
    /// A stream is being served (it waited if this is still set after the poll).
    busy: Cell<bool>,
    /// Spawned with a waiting stream: end after it.
    detached: Cell<bool>,
}

/// A future that serves one stream after another, each built in place in its own state.
struct Runner {
    inbox: Rc<Inbox>,
    run: Pin<Box<dyn Future<Output = ()>>>,
}

impl Runner {
    fn new<H: Handler>(
        worker: Rc<Worker>,
        handler: Rc<H>,
        peer: Option<IpAddr>,
        secure: bool,
    ) -> Self {
        let inbox = Rc::new(Inbox::default());
        let run = Box::pin(run_streams(
            Rc::clone(&inbox),
            worker,
            handler,
            peer,
            secure,
        ));
        Self { inbox, run }
    }
}

async fn run_streams<H: Handler>(
    inbox: Rc<Inbox>,
    worker: Rc<Worker>,
    handler: Rc<H>,
    peer: Option<IpAddr>,
    secure: bool,
) {
    loop {
        // Polled by the connection right after it set the next stream; between streams
        // nobody needs to wake it.
        let next = std::future::poll_fn(|_| match inbox.args.take() {
            Some(a) => Poll::Ready(Some(a)),
            None if inbox.detached.get() => Poll::Ready(None),
            None => Poll::Pending,
        })
        .await;
        let Some((req, respond)) = next else { return };
        inbox.busy.set(true);
        let (w, h) = (Rc::clone(&worker), Rc::clone(&handler));
        stream::serve(req, respond, w, h, peer, secure).await;
        inbox.busy.set(false);
        if inbox.detached.get() {
            return;
        }
    }
}
