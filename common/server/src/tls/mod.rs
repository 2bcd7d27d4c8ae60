//! TLS on the shell: a second listener (its own port; plain HTTP keeps its own) whose
//! connections are TLS 1.3 or 1.2 through rustls (ring provider, no OpenSSL), then served by the
//! same HTTP/1.1 connection loop as plain ones.
//!
//! - [`config`]: certificate chain and key from PEM files, ALPN, session resumption (tickets
//!   and a server-side session cache), reload on demand (SIGHUP) without touching open
//!   connections;
//! - [`stream`]: rustls driven by hand over monoio's owned-buffer I/O (works the same under
//!   io_uring and the epoll driver: it only uses `read`/`write` on the `TcpStream`);
//! - [`ktls`]: after the handshake, the traffic keys go to the kernel (`TCP_ULP` "tls") where
//!   it can, so file bodies still leave with `sendfile`; where it cannot, rustls stays in user
//!   space for that connection.

pub(crate) mod accept;
pub mod config;
pub(crate) mod ktls;
mod stats;
pub(crate) mod stream;

pub use config::{TlsContext, TlsError, TlsSettings};
pub use stats::TlsStats;
