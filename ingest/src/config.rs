//! Ingest configuration: a TOML file (optional) overlaid with `RINGCAST_INGEST_*` environment
//! variables (see `ringcast_infra::config` for the naming rules), then the CLI flags
//! ([`crate::cli`]), which win.
//! Every field has a default that runs the local demo; `ingest/ingest.example.toml` documents
//! them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ringcast_infra::config::{
    self as common_config, ConfigError, RedisConfig, StoreConfig, TlsConfig,
};
use ringcast_proto::media::limits::MediaLimits;
use ringcast_proto::secret::check_strength;
use serde::{Deserialize, Serialize};

use crate::api::playback::PlaybackConfig;
use crate::auth::AuthConfig;
use crate::live::config::LiveIngestConfig;
use crate::tus::config::UploadsConfig;

/// Env var prefix of every ingest setting, e.g. `RINGCAST_INGEST_LISTEN`.
pub const ENV_PREFIX: &str = "RINGCAST_INGEST_";

/// The ingest service's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address the HTTP server listens on. Every worker binds it with `SO_REUSEPORT`, so the
    /// kernel spreads connections over the cores.
    pub listen: SocketAddr,
    /// HTTPS listener (`[tls]`): its own address, certificate and key files (reloaded on
    /// SIGHUP), kernel TLS. Off when `tls.listen` is empty; plain HTTP stays on `listen`.
    pub tls: TlsConfig,
    /// Worker threads (one monoio runtime each); 0 = one per available CPU core.
    pub workers: usize,
    /// Bind worker `i` to the `i`-th CPU the process may use (its `taskset` mask, wrapping).
    pub pin_workers: bool,
    /// Spool directory: upload state (`uploads/{id}.json`) and partial uploads
    /// (`uploads/{id}.bin`) live here until they are stored in the object store.
    pub data_dir: PathBuf,
    /// Largest accepted `Upload-Length` in bytes (advertised as `Tus-Max-Size`; above → 413).
    pub max_upload_bytes: u64,
    /// Object store that receives finished uploads (`sources/{video}/{version}/source`).
    pub store: StoreConfig,
    /// Redis holding the job streams and job/video state.
    pub redis: RedisConfig,
    /// Public base URL used to build absolute `Location` headers, e.g.
    /// `https://upload.example.com`; unset (or empty) → relative `Location: /files/{id}`.
    pub public_url: Option<String>,
    /// This node's tag in a pool behind the edge's front door: `[a-z0-9]{1,12}`, or empty (the
    /// default) for none. New upload ids become `{node_tag}-{22 base62}`, and the front door
    /// sends every request of an upload to the node whose tag starts its id (the spool lives
    /// there), so no sticky sessions are needed. Unique per node; keep it across restarts.
    pub node_tag: String,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Trace export (`[telemetry]`: `otlp_endpoint`, `service_name`; off by default).
    pub telemetry: ringcast_infra::trace_export::TelemetryConfig,
    /// Bearer key for `/metrics` (`Authorization: Bearer <metrics_key>`). Empty: `/metrics`
    /// answers loopback clients only (403 for others); otherwise every client needs the key.
    /// At least 16 characters, not one repeated.
    pub metrics_key: String,
    /// Seconds a client may take to send a complete request head once it started one (slow
    /// header attacks); the connection is answered 408 and closed after that.
    pub header_timeout_secs: u64,
    /// Seconds a connection may sit idle: between keep-alive requests, and between two reads of
    /// a request body. A stalled PATCH keeps the bytes received so far.
    pub idle_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before the workers exit.
    pub shutdown_grace_secs: u64,
    /// On the first SIGTERM/SIGINT: keep serving this long with `/readyz` answering 503
    /// (draining) before shutting down, in milliseconds (0: shut down at once).
    pub drain_delay_ms: u64,
    /// Most header fields in a request head (more: 431).
    pub max_headers: usize,
    /// Open connections per worker beyond which new ones get 503 and are closed.
    pub max_connections_per_worker: usize,
    /// `listen(2)` backlog of each worker's socket.
    pub listen_backlog: u32,
    /// Live push (`PUT /live/{key}`): stream keys, grace period, pull buffer.
    pub live: LiveIngestConfig,
    /// Uploads: ffprobe inspection of finished uploads.
    pub uploads: UploadsConfig,
    /// Who may call `/files/` and `/v1/`: API keys (default) or anyone (`mode = "open"`).
    pub auth: AuthConfig,
    /// Progress streams (`GET /v1/videos/{id}/events`): cap per worker, lifetime, poll interval.
    pub events: crate::api::events_config::EventsConfig,
    /// Media limits a finished upload must stay within (same keys and defaults as the
    /// transcoder's `[limits]`); over one → 422 and no job.
    pub limits: MediaLimits,
    /// Signed playback URLs (`POST /v1/videos/{id}/playback`): secret, lifetime, base URL.
    pub playback: PlaybackConfig,
    /// Upload admission limits: spool free-space reserve, PATCH body pace, PATCH buffers.
    pub admission: crate::admission::config::AdmissionConfig,
    /// Per-owner quotas of bytes in flight and stored.
    pub quota: crate::admission::config::QuotaConfig,
    /// Virus scan of finished uploads with clamd (off unless `scan.clamd` is set).
    pub scan: crate::scan::config::ScanConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tls: TlsConfig::default(),
            workers: 0,
            pin_workers: true,
            data_dir: PathBuf::from(".ringcast/ingest"),
            max_upload_bytes: 20 * 1024 * 1024 * 1024,
            store: StoreConfig::default(),
            redis: RedisConfig::default(),
            public_url: None,
            node_tag: String::new(),
            log_json: false,
            telemetry: Default::default(),
            metrics_key: String::new(),
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            shutdown_grace_secs: 10,
            drain_delay_ms: 0,
            max_headers: 64,
            max_connections_per_worker: 10_000,
            listen_backlog: 1024,
            live: LiveIngestConfig::default(),
            uploads: UploadsConfig::default(),
            auth: AuthConfig::default(),
            limits: MediaLimits::default(),
            events: crate::api::events_config::EventsConfig::default(),
            playback: PlaybackConfig::default(),
            admission: Default::default(),
            quota: Default::default(),
            scan: Default::default(),
        }
    }
}

impl IngestConfig {
    /// Load from an optional file and the process environment.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let cfg: Self = common_config::load(path, ENV_PREFIX)?;
        cfg.validated()
    }

    /// Reject values that cannot work, with a message naming the field.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.max_upload_bytes == 0 {
            return invalid("max_upload_bytes must be at least 1");
        }
        if self.workers > 1024 {
            return invalid("workers must be at most 1024 (0 = one per core)");
        }
        ringcast_server::check_connection_limits(
            self.max_headers,
            self.listen_backlog,
            self.max_connections_per_worker,
        )
        .map_err(|m| ConfigError::Invalid(m.to_string()))?;
        self.tls.listen_addr().map_err(ConfigError::Invalid)?;
        if self.header_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return invalid("header_timeout_secs and idle_timeout_secs must be at least 1");
        }
        self.live.validate()?;
        self.uploads.validate()?;
        self.events.validate()?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.playback.validate()?;
        self.admission.validate()?;
        self.scan.validate()?;
        if self.scan.endpoint().is_some() && self.max_upload_bytes > self.scan.max_stream_bytes {
            // A file clamd cannot see whole is never accepted: refused at creation instead.
            self.max_upload_bytes = self.scan.max_stream_bytes;
        }
        if !self.metrics_key.is_empty() {
            check_strength("metrics_key", &self.metrics_key)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        if !valid_node_tag(&self.node_tag) {
            return invalid("node_tag must be 1-12 characters of [a-z0-9], or empty for none");
        }
        if let Some(url) = &self.public_url {
            let url = url.trim_end_matches('/');
            if url.is_empty() {
                self.public_url = None;
            } else if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid("public_url must start with http:// or https://");
            } else {
                self.public_url = Some(url.to_string());
            }
        }
        Ok(self)
    }

    /// Workers to start: the configured number, or one per available core.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The `Location` of an upload: absolute under `public_url` when set, else relative.
    pub fn upload_location(&self, id: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{base}/files/{id}"),
            None => format!("/files/{id}"),
        }
    }
}

/// `node_tag`: empty, or 1–12 characters of `[a-z0-9]` (no `-`: the front door splits ids at
/// the first one).
fn valid_node_tag(tag: &str) -> bool {
    tag.len() <= 12
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_infra::config::load_from;

    #[test]
    fn live_keys_come_from_the_environment() {
        let env = vec![(
            "RINGCAST_INGEST_LIVE__KEYS__DEMO_PUBLISH_KEY_01".to_string(),
            "live-demo".to_string(),
        )];
        let cfg: IngestConfig = load_from(None, ENV_PREFIX, env).expect("load");
        let cfg = cfg.validated().expect("valid");
        assert_eq!(
            cfg.live.keys.get("demo_publish_key_01").map(String::as_str),
            Some("live-demo")
        );
        assert_eq!(cfg.live.grace(), Duration::from_secs(10));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_tag_is_checked_at_load() {
        let load = |tag: &str| {
            let cfg: IngestConfig =
                load_from(None, ENV_PREFIX, env(&[("RINGCAST_INGEST_NODE_TAG", tag)]))
                    .expect("load");
            cfg.validated()
        };
        for good in ["a", "n1", "abcdefghij12"] {
            assert_eq!(load(good).expect(good).node_tag, good);
        }
        for bad in ["A", "a-b", "a_b", "abcdefghij123", "é", "a b"] {
            let err = load(bad).expect_err(bad);
            assert!(err.to_string().contains("node_tag"), "{err}");
        }
        assert_eq!(IngestConfig::default().node_tag, "");
    }

    #[test]
    fn defaults_run_the_demo() {
        let cfg = IngestConfig::default().validated().expect("valid");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(cfg.max_upload_bytes, 20 << 30);
        assert_eq!(cfg.data_dir, PathBuf::from(".ringcast/ingest"));
        assert_eq!(cfg.upload_location("abc"), "/files/abc");
        assert!(cfg.worker_count() >= 1);
        assert_eq!(
            cfg.auth.mode,
            crate::auth::AuthMode::Keys,
            "API keys unless the operator opens it"
        );
        assert_eq!(cfg.uploads.probe_timeout(), Duration::from_secs(15));
        assert_eq!(cfg.limits, MediaLimits::default());
    }

    #[test]
    fn file_and_env_overlay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ingest.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nmax_upload_bytes = 100\n[redis]\nurl = \"redis://r:1/0\"\n",
        )
        .expect("write");
        let cfg: IngestConfig = load_from(
            Some(&file),
            ENV_PREFIX,
            env(&[
                ("RINGCAST_INGEST_WORKERS", "3"),
                ("RINGCAST_INGEST_PUBLIC_URL", "https://up.example.com/"),
                ("RINGCAST_INGEST_STORE__BACKEND", "s3"),
            ]),
        )
        .expect("load");
        let cfg = cfg.validated().expect("valid");
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.max_upload_bytes, 100);
        assert_eq!(cfg.redis.url, "redis://r:1/0");
        assert_eq!(
            cfg.upload_location("x"),
            "https://up.example.com/files/x",
            "trailing slash trimmed"
        );
    }

    #[test]
    fn unknown_and_invalid_values_are_rejected() {
        let err =
            load_from::<IngestConfig>(None, ENV_PREFIX, env(&[("RINGCAST_INGEST_LISTN", "x")]))
                .expect_err("unknown field");
        assert!(err.to_string().contains("listn"), "{err}");
        let bad = IngestConfig {
            public_url: Some("ftp://x".into()),
            ..IngestConfig::default()
        };
        assert!(bad.validated().is_err());
        let bad = IngestConfig {
            max_upload_bytes: 0,
            ..IngestConfig::default()
        };
        assert!(bad.validated().is_err());
        let bad = IngestConfig {
            limits: MediaLimits {
                max_width: 100_000,
                ..MediaLimits::default()
            },
            ..IngestConfig::default()
        };
        assert!(bad.validated().is_err());
        for nice in [-21, 20] {
            let bad = IngestConfig {
                uploads: UploadsConfig {
                    hash_thread_nice: nice,
                    ..UploadsConfig::default()
                },
                ..IngestConfig::default()
            };
            assert!(bad.validated().is_err(), "nice {nice}");
        }
        let bad = IngestConfig {
            uploads: UploadsConfig {
                probe_timeout_secs: 0,
                ..UploadsConfig::default()
            },
            ..IngestConfig::default()
        };
        assert!(bad.validated().is_err());
    }

    #[test]
    fn the_example_file_parses_and_documents_every_field() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest.example.toml");
        let cfg: IngestConfig =
            load_from(Some(&path), ENV_PREFIX, env(&[])).expect("example parses");
        cfg.validated().expect("example is valid");
        let text = std::fs::read_to_string(&path).expect("read example");
        let defaults = serde_json::to_value(IngestConfig::default()).expect("to json");
        let fields = defaults.as_object().expect("object");
        for name in fields.keys() {
            assert!(
                text.contains(&format!("{name} =")) || text.contains(&format!("[{name}]")),
                "ingest.example.toml does not mention {name}"
            );
        }
    }
}
