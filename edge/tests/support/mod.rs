//! Shared helpers for the edge integration tests: an edge started by the testkit's [`Stack`]
//! (a filesystem store in its temp dir unless the test asks for another stack), objects
//! published into that store, and readers for its answers.
//!
//! Every test runs twice through [`both_drivers!`]: once on the driver FusionDriver picks
//! (io_uring where the kit allows it) and once with `MONOIO_FORCE_LEGACY_DRIVER=1` (epoll).

#![allow(dead_code)]

pub mod fake_origin;

use std::ops::{Deref, DerefMut};
use std::process::Command;

use ringcast_testkit::http::Response;
use ringcast_testkit::{EdgeOptions, Kind, Service, Stack, StackBuilder};

/// Generate `mod default_driver` and `mod legacy_driver`, each with one `#[test]` per named
/// function `fn name(legacy: bool)` of the including file.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod default_driver {
            $( #[test] fn $name() { super::$name(false) } )*
        }
        mod legacy_driver {
            $( #[test] fn $name() { super::$name(true) } )*
        }
    };
}

/// The kit's edge options on the requested driver.
pub fn options(legacy: bool) -> EdgeOptions {
    EdgeOptions::new().legacy_driver(legacy)
}

/// A running edge with the stack around it (stopped on drop). Derefs to the edge [`Service`]:
/// `edge.get(…)`, `edge.counter(…)`, `edge.addr`, `edge.process`.
pub struct Edge {
    stack: Stack,
}

impl Edge {
    /// An edge with the kit's defaults and a fresh filesystem store.
    pub fn start(legacy: bool) -> Self {
        Self::start_with(options(legacy))
    }

    /// An edge with these options and a fresh filesystem store.
    pub fn start_with(opts: EdgeOptions) -> Self {
        Self::start_on(Stack::builder(), opts)
    }

    /// An edge added to `stack` (Redis, an S3 store).
    pub fn start_on(stack: StackBuilder, opts: EdgeOptions) -> Self {
        Self {
            stack: stack.edge(opts).start(),
        }
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The stack, to stop or pause what the edge depends on (outage tests).
    pub fn stack_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }

    /// Publish an object in the filesystem store the way the store does (temp file + rename),
    /// so the edge never sees a partial file.
    pub fn put(&self, key: &str, body: &[u8]) {
        self.stack.put(key, body);
    }

    /// Value of one sample in `/metrics` (the edge's are integers), `None` when missing.
    pub fn metric(&self, series: &str) -> Option<u64> {
        self.stack.edge().metric(series)
    }
}

impl Deref for Edge {
    type Target = Service;

    fn deref(&self) -> &Service {
        self.stack.edge()
    }
}

impl DerefMut for Edge {
    fn deref_mut(&mut self) -> &mut Service {
        self.stack.edge_mut()
    }
}

/// The edge binary with a clean environment on the requested driver (CLI tests).
pub fn command(legacy: bool) -> Command {
    ringcast_testkit::command(Kind::Edge, legacy)
}

/// Value of one sample in a `/metrics` text, e.g. `ringcast_edge_origin_fetches_total` or
/// `ringcast_edge_driver_info{driver="legacy"}`.
pub fn parse_metric(text: &str, series: &str) -> Option<u64> {
    ringcast_testkit::metrics::sample(text, series)
}

/// Parse a JSON error body and return its `error.code`.
pub fn error_code(r: &Response) -> String {
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "status {}",
        r.status
    );
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()));
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// Deterministic pseudo-random bytes (so a mix-up of two objects cannot go unnoticed).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

/// A finished (VOD) media playlist.
pub const VOD_PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nseg0.m4s\n#EXT-X-ENDLIST\n";
/// A growing (live/EVENT) media playlist.
pub const LIVE_PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nseg0.m4s\n";
