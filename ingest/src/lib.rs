//! `ringcast-ingest`: the upload front door of ringcast. A monoio thread-per-core HTTP/1.1 server
//! (one runtime and one `SO_REUSEPORT` listener per core, FusionDriver: io_uring with an epoll
//! fallback) that implements the tus 1.0.0 resumable-upload protocol — core protocol (HEAD,
//! PATCH, OPTIONS) and the Creation extension (POST) — at `/files/`, streams PATCH bodies into
//! spool files with offsets made durable (fdatasync) before they are acknowledged, and, once an
//! upload is complete, checks its container magic bytes, stores it as
//! `sources/{video}/{version}/source` in the object store and enqueues a transcode job in Redis.
//! It also serves the video status API (`GET /v1/videos/{id}`), `/healthz`, `/readyz` and
//! Prometheus `/metrics`. Header parsing and tus header rules live in `ringcast-common`
//! (sans-IO); this crate moves the bytes and owns the upload state machine.

pub mod app;
pub mod config;
pub mod error;
pub mod finish;
pub mod live_config;
pub mod live_hub;
pub mod live_metrics;
pub mod live_push;
pub mod metrics;
pub mod router;
pub mod server;
pub mod tus_handler;
pub mod upload_store;
pub mod videos_api;

pub use app::App;
pub use config::IngestConfig;
pub use error::IngestError;
