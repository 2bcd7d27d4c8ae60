//! ringcast-edge: the CDN node that serves HLS to players. It runs as a [`handler`] on the
//! `ringcast-server` thread-per-core monoio HTTP/1.1 shell (one runtime and one `SO_REUSEPORT`
//! listener per worker, io_uring with an epoll fallback) and owns the routes under `/v/` that
//! map request paths to object keys, the in-memory cache tier with single-flight origin fetches, the caching and content-type policy for HLS
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

pub mod access_control;
pub mod access_log;
pub mod cache;
pub mod config;
pub mod content;
pub mod disk_index;
pub mod disk_tier;
pub mod error;
pub mod handler;
pub mod http_date;
pub mod http_origin;
pub mod live_config;
pub mod live_follow;
pub mod live_hub;
pub mod live_key;
pub mod live_local;
pub mod live_serve;
pub mod live_tail;
pub mod metrics;
pub mod origin;
pub mod page_cache;
pub mod path;
pub mod purge;
pub mod representation;
pub mod response;
pub mod routes;
pub mod server;
pub mod tier_policy;
pub mod tiers;

pub use config::{EdgeConfig, Overrides};
pub use error::EdgeError;
pub use server::{Server, ShutdownHandle};
