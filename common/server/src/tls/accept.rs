//! A connection accepted on the TLS listener: handshake (bounded by the header timeout), then
//! kernel TLS where the kernel takes it, then the same request loop as plain connections.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use monoio::net::TcpStream;
use rustls::HandshakeKind;

use super::ktls::{self, Offer};
use super::stream::TlsSession;
use super::TlsContext;
use crate::conn::Conn;
use crate::connection::serve_conn;
use crate::handler::Handler;
use crate::worker::{OpenGuard, Worker};

/// Serve one connection accepted on the TLS listener.
pub(crate) async fn serve_tls<H: Handler>(
    stream: TcpStream,
    worker: Rc<Worker>,
    handler: Rc<H>,
    ctx: Arc<TlsContext>,
) {
    let _open = OpenGuard::new(&worker);
    let _ = stream.set_nodelay(true);
    let stats = &worker.stats.tls;
    let mut conn = Conn::new(stream, Rc::clone(&worker));
    conn.secure = true;
    let session = match TlsSession::new(ctx.current()) {
        Ok(s) => s,
        Err(e) => {
            stats.handshake_failed();
            tracing::warn!(error = %e, "cannot start a TLS session");
            return;
        }
    };
    let mut session = Box::new(session);
    let limit = worker.settings.header_timeout;
    let (_, mut wire) = conn.split();
    let done = monoio::time::timeout(limit, session.handshake(&mut wire)).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            stats.handshake_failed();
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_elapsed) => {
            stats.handshake_failed();
            tracing::debug!(?limit, "TLS handshake timed out");
            return;
        }
    }
    stats.handshake_done(matches!(
        session.connection().handshake_kind(),
        Some(HandshakeKind::Resumed)
    ));
    if session.connection().alpn_protocol() == Some(b"h2") {
        // HTTP/2 frames its own bodies: no sendfile to keep, so no kTLS either.
        stats.user_space();
        let Some(stream) = conn.stream.take() else {
            return;
        };
        let parts = session.into_parts();
        crate::h2::serve(stream, Some(parts), Rc::clone(&worker), handler).await;
        return;
    }
    if ctx.kernel_tls() {
        match to_kernel(&mut conn, session) {
            Ok(None) => stats.kernel(),
            Ok(Some(user)) => {
                stats.user_space();
                conn.tls = Some(user);
            }
            Err(e) => {
                stats.kernel_failed();
                tracing::warn!(error = %e, "kernel TLS half set up; closing the connection");
                return;
            }
        }
    } else {
        stats.user_space();
        conn.tls = Some(session);
    }
    serve_conn(&mut conn, &*handler).await;
}

/// Move the connection's TLS into the kernel: `Ok(None)` when done, `Ok(Some(session))` when
/// it stays in user space (the fallback), `Err` when the keys could not be installed after the
/// session was consumed (the connection is lost).
fn to_kernel(
    conn: &mut Conn,
    mut session: Box<TlsSession>,
) -> std::io::Result<Option<Box<TlsSession>>> {
    let Some(fd) = conn.stream.as_ref().map(|s| s.as_raw_fd()) else {
        return Ok(Some(session));
    };
    match ktls::offer(fd, session.connection()) {
        Offer::Refused(e) => {
            tracing::trace!(error = %e, "kernel TLS refused; rustls stays in user space");
            return Ok(Some(session));
        }
        Offer::Accepted => {}
    }
    // Plaintext that came with the handshake goes to the head buffer first.
    if !session.drain_for_kernel(&mut conn.buf)? {
        return Ok(Some(session));
    }
    ktls::install(fd, session.into_connection())?;
    Ok(None)
}
