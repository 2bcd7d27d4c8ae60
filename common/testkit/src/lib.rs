//! `ringcast-testkit`: real services for integration tests on free loopback ports.
//!
//! - [`Stack`]: Redis, an object store (filesystem or s3s-fs) and any of the services (ingest,
//!   edge, transcoder), each configured one way: a TOML file written from typed options
//!   ([`IngestOptions`], [`EdgeOptions`], [`TranscoderOptions`]). Started in parallel, ready when
//!   `/healthz` says so, killed on drop, logs printed when the test panics.
//! - [`clips`]: test videos made by ffmpeg, as files or pushed live.
//! - [`RedisServer`]: a `redis-server` with no persistence in a temp dir.
//! - [`S3Server`]: an `s3s-fs` S3 server (SigV4) in a temp dir, bucket created on first use.
//! - [`GarageCluster`]: a replicated multi-node Garage cluster on loopback (kill a node, restart
//!   it, wait until healthy); [`StackBuilder::store_at`] points a stack at it.
//! - [`Process`]: any child process, killed on drop (tests never leak servers).
//! - [`cargo_bin`]: path of a workspace binary, built on demand; [`command`]: a service binary
//!   with a clean environment, for tests of its CLI.
//! - [`Clamd`]: a private clamd with a test signature database (EICAR) the kit writes itself.
//! - [`Tmpfs`]: a small mounted tmpfs to run a service's disk full (needs root; `None` otherwise).
//! - [`hls_parser`]: npm hls-parser (strict) over playlist files or bodies.
//! - [`http`]: a tiny blocking HTTP/1.1 client for assertions; [`metrics`]: `/metrics` samples.
//!
//! Readiness is always checked (a TCP connect, a PING, a 200 from `/healthz`), never slept for.

mod clamd;
pub mod clips;
mod config;
mod garage;
pub mod hls_parser;
pub mod http;
pub mod metrics;
mod process;
mod servers;
mod services;
mod stack;
mod tempdir;
pub mod tls;
mod tmpfs;

pub use clamd::{Clamd, EICAR, SIGNATURE as CLAMD_TEST_SIGNATURE};
pub use config::{EdgeOptions, IngestOptions, TranscoderOptions};
pub use garage::GarageCluster;
pub use process::{cargo_bin, free_port, wait_for_tcp, wait_until, Process};
pub use ringcast_infra::config::StoreBackend;
pub use servers::{RedisServer, S3Server};
pub use services::{command, Kind, Service, ServiceOptions};
pub use stack::{Stack, StackBuilder};
pub use tmpfs::Tmpfs;
