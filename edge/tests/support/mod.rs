//! Shared helpers for the edge integration tests: start the real `ringcast-edge` binary on a
//! free port with a temp config and a filesystem store in a temp dir (or a given store), wait
//! for `/healthz`, and read `/metrics`.
//!
//! Every test runs twice through [`both_drivers!`]: once on the driver FusionDriver picks
//! (io_uring where the kernel allows it) and once with `MONOIO_FORCE_LEGACY_DRIVER=1` (epoll).

#![allow(dead_code)]

pub mod fake_origin;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ringcast_edge::EdgeConfig;
use ringcast_infra::config::StoreConfig;
use ringcast_testkit::http::{self, Conn, Response};
use ringcast_testkit::{cargo_bin, free_port, wait_until, Process};

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

/// How to start an edge for a test.
pub struct Options {
    /// Force the epoll driver.
    pub legacy: bool,
    /// Edit the config before it is written (TTLs, timeouts, store).
    pub config: Box<dyn FnOnce(&mut EdgeConfig)>,
}

impl Options {
    pub fn new(legacy: bool) -> Self {
        Self {
            legacy,
            config: Box::new(|_| {}),
        }
    }

    pub fn config(mut self, f: impl FnOnce(&mut EdgeConfig) + 'static) -> Self {
        self.config = Box::new(f);
        self
    }
}

/// A running edge process (killed on drop) with its temp dir.
pub struct Edge {
    pub addr: SocketAddr,
    /// Root of the filesystem store (unused when the test gave an S3 store).
    pub store_root: PathBuf,
    pub legacy: bool,
    pub process: Process,
    _dir: tempfile::TempDir,
}

impl Edge {
    /// An edge with a fresh filesystem store.
    pub fn start(legacy: bool) -> Self {
        Self::start_with(Options::new(legacy))
    }

    pub fn start_with(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_root = dir.path().join("store");
        std::fs::create_dir_all(&store_root).expect("store dir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cfg = EdgeConfig {
            listen: addr,
            workers: 2,
            store: StoreConfig {
                root: store_root.clone(),
                ..StoreConfig::default()
            },
            ..EdgeConfig::default()
        };
        (opts.config)(&mut cfg);
        let cfg_path = dir.path().join("edge.toml");
        std::fs::write(&cfg_path, toml::to_string(&cfg).expect("serialize config"))
            .expect("write config");
        let mut cmd = command(opts.legacy);
        cmd.arg("--config").arg(&cfg_path);
        let process = Process::spawn("ringcast-edge", cmd, dir.path());
        let mut edge = Self {
            addr: cfg.listen,
            store_root,
            legacy: opts.legacy,
            process,
            _dir: dir,
        };
        edge.wait_ready();
        edge
    }

    /// Poll `/healthz` until it answers 200 (panics with the log if the process died).
    pub fn wait_ready(&mut self) {
        let addr = self.addr;
        let process = &mut self.process;
        wait_until(Duration::from_secs(20), "ringcast-edge /healthz", || {
            process.assert_running();
            http::get(addr, "/healthz").is_ok_and(|r| r.status == 200)
        });
    }

    /// One GET on a fresh connection.
    pub fn get(&self, target: &str) -> Response {
        http::get(self.addr, target)
            .unwrap_or_else(|e| panic!("GET {target}: {e}\n{}", self.process.log_text()))
    }

    /// A keep-alive connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr).expect("connect")
    }

    /// Publish an object in the filesystem store the way the store does (temp file + rename), so
    /// the edge never sees a partial file.
    pub fn put(&self, key: &str, body: &[u8]) {
        let path = self.store_root.join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let tmp = self
            .store_root
            .join(format!(".put-{}", key.replace('/', "_")));
        std::fs::write(&tmp, body).expect("write object");
        std::fs::rename(&tmp, &path).expect("publish object");
    }

    /// Value of one sample in `/metrics`, e.g. `ringcast_edge_origin_fetches_total` or
    /// `ringcast_edge_driver_info{driver="legacy"}`.
    pub fn metric(&self, series: &str) -> Option<u64> {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200);
        parse_metric(&r.text(), series)
    }

    /// Like [`Edge::metric`] for a series that must exist.
    pub fn counter(&self, series: &str) -> u64 {
        self.metric(series)
            .unwrap_or_else(|| panic!("{series} missing from /metrics"))
    }
}

/// The edge binary with a clean `RINGCAST_EDGE_*` environment and the requested driver.
pub fn command(legacy: bool) -> Command {
    let mut cmd = Command::new(cargo_bin("ringcast-edge"));
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("RINGCAST_EDGE_")) {
            cmd.env_remove(k);
        }
    }
    // Plain log files for assertion messages.
    cmd.env("NO_COLOR", "1");
    if legacy {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    } else {
        cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
    }
    cmd
}

pub fn parse_metric(text: &str, series: &str) -> Option<u64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
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
