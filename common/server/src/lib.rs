//! `ringcast-server`: the monoio thread-per-core HTTP/1.1 server shell the edge and the ingest
//! run on. A service implements [`Handler`]; the shell owns everything between the socket and
//! the handler:
//!
//! - bootstrap ([`Server::start`]): one thread, FusionDriver runtime and `SO_REUSEPORT`
//!   listener per worker, configurable backlog, optional CPU pinning, the driver reported;
//! - shutdown ([`ShutdownHandle`], [`signals`]): SIGTERM/SIGINT on a dedicated thread, then
//!   stop accepting and drain in-flight requests within a grace period;
//! - the connection loop ([`Conn`]): keep-alive, pipelining, `100 Continue`, head/body/idle
//!   timeouts, head limits, a per-worker connection cap (503), lingering close bounded in time
//!   and bytes, incremental request bodies, zero-copy file bodies ([`sendfile`]);
//! - TLS on a listener of its own ([`tls`]): rustls, reload on SIGHUP, kernel TLS where the
//!   kernel has it;
//! - one [`Response`] type with `Date` and the CORS fields ([`CorsPolicy`]);
//! - the counters every service exports ([`ServerStats`]) and who may read them
//!   ([`MetricsAccess`]: loopback only unless a `metrics_key` is configured).
//!
//! Protocol decisions (parsing, framing, persistence, `100-continue`) are sans-IO in
//! `ringcast_proto::http`; this crate only moves bytes.

mod conn;
mod connection;
mod cors;
mod date;
mod driver;
mod error;
pub mod h2;
mod handler;
mod head_body;
mod idle_timer;
mod metrics_access;
mod response;
pub mod sendfile;
mod server;
mod settings;
mod shutdown;
pub mod signals;
mod stats;
pub mod tls;
mod worker;

pub use conn::{BodyError, Conn};
pub use cors::{Cors, CorsPolicy};
pub use date::coarse_unix_secs;
pub use driver::Driver;
pub use error::ServerError;
pub use handler::{default_refusal, Handler, Refusal, WorkerInfo};
pub use metrics_access::{MetricsAccess, MetricsDenied};
pub use response::{ErrorResponse, FileBody, Response, SharedHead};
pub use server::Server;
pub use settings::{check_connection_limits, ServerSettings};
pub use shutdown::ShutdownHandle;
pub use stats::ServerStats;
