//! ringcast-edge: the CDN node that serves HLS to players. It owns the thread-per-core monoio
//! HTTP/1.1 server (one runtime and one `SO_REUSEPORT` listener per worker, io_uring with an
//! epoll fallback), the routes under `/v/` that map request paths to object keys, the in-memory
//! cache tier with single-flight origin fetches, the caching and content-type policy for HLS
//! objects, `/healthz`, and `/metrics`. Protocol parsing is `ringcast_common::http` (RFC 9112);
//! this crate only moves bytes and decides what to answer. The disk tier (files under a cache
//! directory, LRU by bytes, sent with `sendfile`) sits behind the memory tier for large
//! immutable objects; the origin is the object store, a plain directory or an HTTP origin
//! ([`origin`]). LL-HLS blocking reload and purge come later.
//!
//! Embedding (tests, tools): build an [`EdgeConfig`], then [`Server::start`] returns once every
//! worker listens; [`Server::stop`] shuts it down.

pub mod cache;
pub mod config;
pub mod connection;
pub mod content;
pub mod disk_index;
pub mod disk_tier;
pub mod error;
pub mod http_date;
pub mod http_origin;
pub mod metrics;
pub mod origin;
pub mod path;
pub mod response;
pub mod routes;
pub mod sendfile;
pub mod server;
pub mod signals;
pub mod tier_policy;
pub mod tiers;

pub use config::{EdgeConfig, Overrides};
pub use error::EdgeError;
pub use server::{Server, ShutdownHandle};
