//! `ringcast-testkit`: real services for integration tests on free loopback ports.
//!
//! - [`RedisServer`]: a `redis-server` with no persistence in a temp dir.
//! - [`S3Server`]: an `s3s-fs` S3 server (SigV4) in a temp dir, bucket created on first use.
//! - [`Process`]: any child process, killed on drop (tests never leak servers).
//! - [`cargo_bin`]: path of a workspace binary, built on demand.
//! - [`http`]: a tiny blocking HTTP/1.1 client for assertions.
//!
//! Readiness is always checked (a TCP connect, a PING, a 200 from `/healthz`), never slept for.

pub mod http;
mod process;
mod services;

pub use process::{cargo_bin, free_port, wait_for_tcp, wait_until, Process};
pub use services::{RedisServer, S3Server};
