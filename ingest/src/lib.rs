//! `ringcast-ingest`: the upload front door of ringcast, a handler on the `ringcast-server`
//! monoio thread-per-core HTTP/1.1 shell (one runtime and one `SO_REUSEPORT` listener per core,
//! FusionDriver: io_uring with an epoll fallback). By feature:
//!
//! - [`tus`]: the tus 1.0.0 resumable-upload protocol — core protocol (HEAD, PATCH, OPTIONS)
//!   and the Creation extension (POST) — at `/files/`; PATCH bodies stream into spool files with
//!   offsets made durable (fdatasync) before they are acknowledged; a complete upload has its
//!   container magic bytes checked, is stored as `sources/{video}/{version}/source` in the
//!   object store and a transcode job is enqueued in Redis.
//! - [`admission`]: limits an upload must pass (spool free-space reserve, per-owner quota,
//!   PATCH body pace, pooled PATCH buffers); [`scan`]: the clamd virus scan of finished uploads.
//! - [`live`]: live push (`/live/{key}`) and its fan-out to pullers on every core.
//! - [`api`]: the route table ([`api::routes`]) and the videos API (`/v1/videos…`: list, get,
//!   update, delete, signed playback URLs).
//! - [`auth`]: who is calling (API keys, `auth.mode`); [`keys_cli`]: `ringcast-ingest keys …`;
//!   [`cli`]: the command line.
//! - [`router`]: paths to handlers, CORS, `/healthz`, `/readyz` and Prometheus `/metrics`;
//!   [`app`]: the state they share; [`server`]: start-up on the shell; [`redis_call`]: the
//!   bounded wait for a Redis call.
//!
//! Header parsing and tus header rules live in `ringcast-proto` (sans-IO); this crate moves the
//! bytes and owns the upload state machine.

pub mod admission;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod keys_cli;
pub mod live;
pub mod metrics;
pub mod readiness;
pub mod redis_call;
pub mod router;
pub mod scan;
pub mod server;
pub mod tus;
pub mod versions;

pub use app::App;
pub use config::IngestConfig;
pub use error::IngestError;
