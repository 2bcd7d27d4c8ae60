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
    /// `listen(2)` backlog of each worker's socket.
    pub listen_backlog: i32,
    /// An idle keep-alive connection closes after this; a write (or a body read) that makes no
    /// progress for this long ends the connection.
    pub idle_timeout: Duration,
    /// A head must complete within this of its first byte (else 408).
    pub header_timeout: Duration,
    /// In-flight requests get this long to finish after a shutdown.
    pub shutdown_grace: Duration,
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
    /// `Access-Control-Expose-Headers` of every response (with `Access-Control-Allow-Origin: *`).
    pub cors_expose_headers: &'static str,
}

impl ServerSettings {
    /// Defaults for everything but the name, the address and the CORS list.
    pub fn new(name: &'static str, listen: SocketAddr, cors_expose_headers: &'static str) -> Self {
        Self {
            name,
            listen,
            workers: 1,
            pin_workers: false,
            listen_backlog: 1024,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            limits: Limits::default(),
            max_connections: 10_000,
            drain_max: 0,
            linger_time: Duration::from_secs(2),
            linger_bytes: 1024 * 1024,
            cors_expose_headers,
        }
    }
}
