//! Shared pieces of the ingest integration tests: start the real binary against a real Redis and
//! a store, speak tus to it, and read back what it produced. Readiness is always polled (the
//! testkit's `wait_until`), never slept for.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringcast_infra::config::{RedisConfig, StoreConfig};
use ringcast_infra::queue::{Delivery, Queue};
use ringcast_infra::side_runtime;
use ringcast_ingest::IngestConfig;
use ringcast_testkit::http::{get, Conn, Response};
use ringcast_testkit::{cargo_bin, free_port, wait_until, Process};
use sha2::{Digest, Sha256};

pub const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
pub const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// How the server under test is configured.
#[derive(Clone)]
pub struct Opts {
    pub max_upload_bytes: u64,
    pub store: StoreConfig,
    /// Force monoio's epoll driver (`MONOIO_FORCE_LEGACY_DRIVER=1`).
    pub legacy: bool,
    pub workers: usize,
    pub header_timeout_secs: u64,
    /// The `[live]` section (stream keys, grace period, buffer).
    pub live: ringcast_ingest::live::config::LiveIngestConfig,
}

impl Opts {
    /// fs store under `dir/store`, 2 workers, 64 MiB max.
    pub fn fs(dir: &Path) -> Self {
        Self {
            max_upload_bytes: 64 * 1024 * 1024,
            store: StoreConfig {
                root: dir.join("store"),
                ..StoreConfig::default()
            },
            legacy: false,
            workers: 2,
            header_timeout_secs: IngestConfig::default().header_timeout_secs,
            live: Default::default(),
        }
    }
}

/// A running `ringcast-ingest`.
pub struct Ingest {
    pub addr: SocketAddr,
    pub proc: Process,
}

/// Start the binary with its spool in `dir/spool` (reused across restarts) and wait until
/// `/healthz` answers.
pub fn start_ingest(dir: &Path, redis_url: &str, opts: &Opts) -> Ingest {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = IngestConfig {
        listen: addr,
        workers: opts.workers,
        data_dir: dir.join("spool"),
        max_upload_bytes: opts.max_upload_bytes,
        header_timeout_secs: opts.header_timeout_secs,
        live: opts.live.clone(),
        store: opts.store.clone(),
        redis: RedisConfig {
            url: redis_url.to_string(),
        },
        ..IngestConfig::default()
    };
    let cfg_path = dir.join(format!("ingest-{port}.toml"));
    std::fs::write(&cfg_path, toml::to_string(&cfg).expect("config to toml"))
        .expect("write config");
    let mut cmd = Command::new(cargo_bin("ringcast-ingest"));
    cmd.arg("--config").arg(&cfg_path);
    cmd.env("RUST_LOG", "info,ringcast_ingest=debug");
    if opts.legacy {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    }
    let mut proc = Process::spawn(&format!("ringcast-ingest-{port}"), cmd, dir);
    // Ready = every worker bound (the server logs this line after the last one) and answering.
    let ready_line = format!("ringcast-ingest listening on http://{addr}");
    wait_until(
        Duration::from_secs(60),
        "ringcast-ingest to be ready",
        || {
            proc.assert_running();
            proc.log_text().contains(&ready_line)
                && get(addr, "/healthz").is_ok_and(|r| r.status == 200)
        },
    );
    Ingest { addr, proc }
}

impl Ingest {
    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr).expect("connect to ingest")
    }

    /// POST /files/ → the Location path.
    pub fn create(&self, length: u64, metadata: Option<&str>) -> String {
        let len = length.to_string();
        let mut headers = vec![TUS, ("Upload-Length", len.as_str())];
        if let Some(m) = metadata {
            headers.push(("Upload-Metadata", m));
        }
        let r = self
            .conn()
            .request("POST", "/files/", &headers, b"")
            .expect("POST");
        assert_eq!(r.status, 201, "{}", r.text());
        let loc = r.header("location").expect("Location").to_string();
        assert!(loc.starts_with("/files/"), "{loc}");
        loc
    }

    /// HEAD → the upload's offset.
    pub fn offset(&self, loc: &str) -> u64 {
        let r = self.conn().request("HEAD", loc, &[TUS], b"").expect("HEAD");
        assert_eq!(r.status, 200, "HEAD {loc}");
        r.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("Upload-Offset")
    }

    pub fn patch(&self, loc: &str, offset: u64, body: &[u8]) -> Response {
        let off = offset.to_string();
        self.conn()
            .request(
                "PATCH",
                loc,
                &[TUS, OCTETS, ("Upload-Offset", off.as_str())],
                body,
            )
            .expect("PATCH")
    }

    pub fn metrics(&self) -> String {
        get(self.addr, "/metrics").expect("metrics").text()
    }

    /// The value of an unlabelled (or fully labelled) metric line.
    pub fn metric(&self, series: &str) -> u64 {
        let text = self.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }
}

/// The upload id of a Location path.
pub fn upload_id(loc: &str) -> String {
    loc.trim_start_matches("/files/").to_string()
}

/// A 1-second H.264 MP4 made by ffmpeg in `dir`.
pub fn small_mp4(dir: &Path) -> Vec<u8> {
    let out = dir.join("out.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args(["-t", "1", "-c:v", "libx264", "-f", "mp4"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed");
    let bytes = std::fs::read(&out).expect("read mp4");
    assert!(
        bytes.len() > 3000,
        "suspiciously small mp4: {} bytes",
        bytes.len()
    );
    bytes
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Path of an object in an fs store.
pub fn fs_object(store: &StoreConfig, key: &str) -> PathBuf {
    store.root.join(key)
}

/// Await a side-runtime future from the test thread.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    side_runtime::handle().block_on(fut)
}

pub fn queue(url: &str) -> Queue {
    block_on(Queue::connect(url)).expect("connect to redis")
}

/// The next job in any priority stream, waiting up to `wait`.
pub fn next_job(queue: &Queue, wait: Duration) -> Option<Delivery> {
    block_on(async {
        let mut consumer = queue.consumer("test").await.expect("consumer");
        consumer.next(wait).await.expect("read jobs")
    })
}

/// Wait until no request holds the upload any more (an interrupted PATCH has saved its state):
/// a body-less PATCH at the current offset is then accepted (204) instead of refused (423).
pub fn wait_until_unlocked(ingest: &Ingest, loc: &str) {
    wait_until(
        Duration::from_secs(20),
        "the upload lock to be released",
        || {
            let offset = ingest.offset(loc);
            let r = ingest.patch(loc, offset, b"");
            assert!(
                matches!(r.status, 204 | 423 | 409),
                "unexpected {}: {}",
                r.status,
                r.text()
            );
            r.status == 204
        },
    );
}
