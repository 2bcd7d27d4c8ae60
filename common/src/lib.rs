//! Everything pure and shared in ringcast.
//!
//! - Sans-IO protocol logic: the HTTP/1.1 request parser and response writer used by the monoio
//!   servers ([`http`], RFC 9112), the fragmented-MP4 box reader ([`fmp4`], ISO/IEC 14496-12), the
//!   HLS playlist model and renderer ([`playlist`], RFC 8216 / draft-pantos-hls-rfc8216bis), tus 1.0
//!   header handling ([`tus`]), source container sniffing and the demuxer forced for each
//!   ([`container`]).
//! - Shared clients: the object store with S3 and filesystem backends ([`store`]), the Redis job
//!   queue and job state ([`queue`], [`job`]), both driven from a tokio side runtime
//!   ([`side_runtime`]) so monoio cores never run tokio code.
//! - Live LL-HLS model: part events, per-rendition playlist state, blocking reloads ([`live`]).
//! - Signed playback URLs, HMAC-SHA256 over a path prefix + expiry ([`signed_url`]).
//! - Config loading with env overrides ([`config`]), object/Redis key names ([`keys`]), tracing
//!   setup ([`telemetry`]).
//! - With the `testkit` feature: real redis-server / S3 server processes for integration tests.

pub mod config;
pub mod container;
pub mod cpu_affinity;
pub mod fmp4;
pub mod http;
pub mod job;
pub mod keys;
pub mod live;
pub mod playlist;
pub mod queue;
pub mod side_runtime;
pub mod signed_url;
pub mod store;
pub mod telemetry;
pub mod tus;

#[cfg(feature = "testkit")]
pub mod testkit;
