//! `ringcast-infra`: the I/O the services share, built on tokio and kept off the monoio cores.
//!
//! - [`store`]: the object store with S3 and filesystem backends.
//! - [`queue`]: the Redis job queue and job state; [`queue::consumer`]: the one job consumer
//!   (claim by priority, reclaim of abandoned jobs, claim heartbeat, poison bookkeeping, dead
//!   letter, ack) that the transcoder's workers run.
//! - [`live_events`]: the Redis side of live LL-HLS events: the publisher the transcoder writes
//!   with and the subscriber the edge follows with, owning stream names, MAXLEN and expiry.
//! - [`platform`]: the platform's metadata in Redis (API keys, owners, roles).
//! - [`purge`]: fleet-wide purges over Redis pub/sub: the publisher (ingest, edge admin) and
//!   the edge's subscription with reconnects.
//! - [`visibility`]: the edge's lookup of a video's visibility (`rc:video:{id}`).
//! - [`lazy_redis`]: a Redis connection opened on first use, for services that start while
//!   Redis may be down.
//! - [`side_runtime`]: the tokio side runtime that runs redis and rust-s3 calls for monoio
//!   services, answering on oneshot channels.
//! - [`config`]: TOML config loading with `RINGCAST_*` env overrides, store and Redis settings.
//! - [`health`]: the dependency checks behind every service's `/readyz` (bounded in time).
//! - [`trace_export`]: spans of an upload's trace and their OTLP/HTTP JSON export (off by
//!   default).
//! - [`telemetry`]: tracing setup (JSON logs or human-readable on a terminal).
//! - [`cpu_affinity`]: pinning worker threads to cores.
//! - [`sched_policy`]: worker threads that do not preempt their core's other threads on wake-up.
//! - [`rlimit`]: the open-file limit raised to the hard limit at the start of every server.
//!
//! Protocol logic and schemas live in `ringcast-proto`; this crate only moves them over the
//! network and disk.

pub mod config;
pub mod cpu_affinity;
pub mod health;
pub mod lazy_redis;
pub mod live_events;
pub mod log_limit;
pub mod platform;
pub mod purge;
pub mod queue;
pub mod rlimit;
pub mod sched_policy;
pub mod side_runtime;
pub mod store;
pub mod telemetry;
pub mod trace_export;
pub mod visibility;
