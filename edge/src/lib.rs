//! ringcast-edge: the CDN node that serves HLS to players. It owns the thread-per-core monoio
//! HTTP/1.1 server (one runtime and one `SO_REUSEPORT` listener per worker, io_uring with an
//! epoll fallback), the routes under `/v/` that map request paths to object keys, the in-memory
//! cache tier with single-flight origin fetches, the caching and content-type policy for HLS
//! objects, `/healthz`, and `/metrics`. Protocol parsing is `ringcast_proto::http` (RFC 9112);
//! this crate only moves bytes and decides what to answer: ranges, conditionals and gzip per
//! object ([`representation`]), purge ([`purge`]), admin key and signed playback URLs
//! ([`access_control`]), the JSON access log ([`access_log`]). Live LL-HLS (rfc8216bis
//! §6.2.5–6.2.6: blocking playlist reload, delta updates, preload-hinted parts) is served from
//! Redis event streams followed on the tokio side runtime (`live_*` modules). The disk tier
//! (files under a cache directory, LRU by bytes, sent with `sendfile`) sits behind the memory
//! tier for large immutable objects; the origin is the object store, a plain directory or an
//! HTTP origin ([`origin`]).
//!
//! Embedding (tests, tools): build an [`EdgeConfig`], then [`Server::start`] returns once every
//! worker listens; [`Server::stop`] shuts it down.

pub mod access_log;
pub mod clock;
pub mod config;
pub mod connection;
pub mod error;
pub mod live;
pub mod metrics;
pub mod origin;
pub mod representation;
pub mod response;
pub mod routes;
pub mod server;
pub mod shared;
pub mod signals;
pub mod tiers;

pub use config::{EdgeConfig, Overrides};
pub use error::EdgeError;
pub use server::{Server, ShutdownHandle};
