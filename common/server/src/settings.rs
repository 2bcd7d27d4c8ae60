//! What a server is started with. Each service maps its documented config onto this.

use std::net::SocketAddr;
use std::time::Duration;

use ringcast_proto::http::Limits;

/// Everything the shell needs besides the handler.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Thread names are `{name}-worker-{i}`; the ready log line says `ringcast-{name} listening on`.
    pub name: &'static str,
    /// Address every worker listens on (port 0: worker 0 picks one, the others share it).
    pub listen: SocketAddr,
    pub workers: usize,
    /// Bind worker `i` to the `i`-th CPU the process may use.
    pub pin_workers: bool,
    /// Run the workers under `SCHED_BATCH`: a worker that wakes up does not preempt another
    /// process on its core ([`ringcast_infra::sched_policy`]).
    pub batch_workers: bool,
    /// `listen(2)` backlog of each worker's socket.
    pub listen_backlog: i32,
    /// An idle keep-alive connection closes after this; a write (or a body read) that makes no
    /// progress for this long ends the connection.
    pub idle_timeout: Duration,
    /// A head must complete within this of its first byte (else 408).
    pub header_timeout: Duration,
    /// In-flight requests get this long to finish after a shutdown.
    pub shutdown_grace: Duration,
    /// After the first SIGTERM/SIGINT, keep serving this long with `/readyz` answering 503
    /// (draining) before the shutdown starts, so load balancers stop sending work first.
    /// Zero (the default): shut down at once.
    pub drain_delay: Duration,
    /// Request head limits (414/431).
    pub limits: Limits,
    /// Beyond this many open connections on a worker, new ones get 503 and are closed.
    pub max_connections: usize,
    /// Unread `Content-Length` bodies up to this size are read and dropped to keep the
    /// connection; larger ones (and chunked ones) close it. 0: always close.
    pub drain_max: u64,
    /// Lingering close: how long and how much to drain before closing.
    pub linger_time: Duration,
    pub linger_bytes: usize,
    /// `Access-Control-Expose-Headers` of the responses that carry the CORS pair (with
    /// `Access-Control-Allow-Origin: *`).
    pub cors_expose_headers: &'static str,
    /// Which responses carry the pair: all, or those to requests with `Origin` (ADR 0012).
    pub cors: crate::cors::CorsPolicy,
    /// A TLS listener besides the plain one (`None`: plain HTTP only).
    pub tls: Option<crate::tls::TlsSettings>,
    /// HTTP/2 limits (connections that chose `h2` by ALPN, and h2c ones).
    pub h2: crate::h2::H2Settings,
    /// Accept HTTP/2 with prior knowledge (h2c: the preface instead of a request) on the plain
    /// listener.
    pub h2c: bool,
}

/// Checks the connection settings every service on the shell exposes in its config file (same
/// names and bounds in the edge and the ingest): `Err` names the field and its range.
pub fn check_connection_limits(
    max_headers: usize,
    listen_backlog: u32,
    max_connections_per_worker: usize,
) -> Result<(), &'static str> {
    if max_headers == 0 || max_headers > 1024 {
        return Err("max_headers must be between 1 and 1024");
    }
    if listen_backlog == 0 || listen_backlog > 65_535 {
        return Err("listen_backlog must be between 1 and 65535");
    }
    if max_connections_per_worker == 0 {
        return Err("max_connections_per_worker must be positive");
    }
    Ok(())
}

impl ServerSettings {
    /// Defaults for everything but the name, the address and the CORS list.
    pub fn new(name: &'static str, listen: SocketAddr, cors_expose_headers: &'static str) -> Self {
        Self {
            name,
            listen,
            workers: 1,
            pin_workers: false,
            batch_workers: false,
            listen_backlog: 1024,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            limits: Limits::default(),
            max_connections: 10_000,
            drain_max: 0,
            linger_time: Duration::from_secs(2),
            linger_bytes: 1024 * 1024,
            cors_expose_headers,
            cors: crate::cors::CorsPolicy::Always,
            tls: None,
            h2: crate::h2::H2Settings::default(),
            h2c: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_connection_limits;

    #[test]
    fn connection_limits_are_bounded() {
        assert_eq!(check_connection_limits(64, 1024, 10_000), Ok(()));
        assert_eq!(check_connection_limits(1, 1, 1), Ok(()));
        assert_eq!(check_connection_limits(1024, 65_535, 1), Ok(()));
        for (h, b, c, field) in [
            (0, 1024, 1, "max_headers"),
            (1025, 1024, 1, "max_headers"),
            (64, 0, 1, "listen_backlog"),
            (64, 65_536, 1, "listen_backlog"),
            (64, 1024, 0, "max_connections_per_worker"),
        ] {
            let err = check_connection_limits(h, b, c).expect_err(field);
            assert!(err.starts_with(field), "{err}");
        }
    }
}
