//! ringcast-edge: the CDN node that serves HLS to players. It runs as a [`handler`] on the
//! `ringcast-server` thread-per-core monoio HTTP/1.1 shell (one runtime and one `SO_REUSEPORT`
//! listener per worker, io_uring with an epoll fallback) and owns the routes under `/v/` that
//! map request paths to object keys, the memory and disk cache tiers with single-flight origin
//! fetches, the caching and content-type policy for HLS objects, live LL-HLS from the
//! packager's Redis event streams, `/healthz` and `/metrics`. Protocol parsing is
//! `ringcast_proto::http` (RFC 9112); this crate only moves bytes and decides what to answer.
//!
//! Module map (folders by feature):
//! - on the shell: [`server`] (start/stop on `ringcast-server`), [`handler`] (a request on a
//!   connection → routes, access log), [`response`] (edge constants, errors → responses),
//!   [`metrics`], [`access_log`];
//! - [`config`]: the configuration (file, env, CLI) and its bounds;
//! - [`shared`]: the state every worker shares; [`clock`]: the injectable clock of the caches
//!   and the live path; [`error`]: every failure and the status it answers;
//! - [`routes`]: request → handler, with [`routes::purge`], [`routes::access_control`] (admin
//!   key, signed URLs), [`routes::playback`] (visibility) and [`routes::path`] (path → object
//!   key);
//! - [`representation`]: answering an object: ranges, conditionals, gzip, dates;
//! - [`tiers`]: memory cache, disk tier, the lookup across them, and what is cached how long;
//! - [`origin`]: where misses go: the object store, a directory, or an HTTP origin;
//! - [`platform`]: per-video visibility (private videos need signed URLs, checked by
//!   [`routes::playback`]) and fleet-wide purges over Redis pub/sub;
//! - [`front_door`]: `/files/`, `/v1/`, `/live/` proxied to a pool of ingest nodes
//!   (health-checked, routed by upload tag, rate-limited);
//! - [`web`]: the browser page at `/` (upload, library, player, live list), built in;
//! - [`peers`]: the edge tier: each object has an owner edge (rendezvous hash) that other edges
//!   ask on a miss before the origin; [`nodes`] holds the health-checked node sets of both;
//! - [`prefetch`]: players' CMCD next-object hints warm the memory tier;
//! - [`live`]: LL-HLS blocking reloads, delta updates and preload-hinted parts from Redis
//!   event streams followed on the tokio side runtime (ADR 0004).
//!
//! Embedding (tests, tools): build an [`EdgeConfig`], then [`Server::start`] returns once every
//! worker listens; [`Server::stop`] shuts it down.

pub mod access_log;
pub mod clock;
pub mod config;
pub mod error;
pub mod front_door;
pub mod handler;
pub mod live;
pub mod metrics;
pub mod nodes;
pub mod origin;
pub mod peers;
pub mod platform;
pub mod prefetch;
pub mod readiness;
pub mod representation;
pub mod response;
pub mod routes;
pub mod server;
pub mod shared;
pub mod tiers;
pub mod web;

pub use config::{EdgeConfig, Overrides};
pub use error::EdgeError;
pub use server::{Server, ShutdownHandle};
