//! Edge configuration: TOML file < `RINGCAST_EDGE_*` env vars < CLI flags.
//!
//! The file and env layers come from `ringcast_infra::config` (env names like
//! `RINGCAST_EDGE_MEMORY_CACHE_BYTES`, `RINGCAST_EDGE_STORE__BACKEND`); the CLI layer is applied
//! here. `edge/edge.example.toml` documents every field.

pub mod bounds;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringcast_infra::config::{self, RedisConfig, StoreConfig, TlsConfig};
use ringcast_proto::secret::check_strength;
use serde::{Deserialize, Serialize};

use crate::access_log::AccessLog;
use crate::error::EdgeError;
use crate::front_door::config::FrontDoorConfig;
use crate::live::settings::LiveSettings;
use crate::peers::config::PeersConfig;
use crate::platform::settings::PlatformSettings;
use crate::routes::access_control::SignedUrlConfig;
use crate::web::config::WebConfig;

/// Prefix of the env vars that override config fields.
pub const ENV_PREFIX: &str = "RINGCAST_EDGE_";
/// Env var naming the config file (read by the CLI, so it is not a config field).
pub const ENV_CONFIG_FILE: &str = "RINGCAST_EDGE_CONFIG";

/// Everything the edge can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address every worker listens on (one `SO_REUSEPORT` socket per worker). Port 0 picks a
    /// free port, shared by all workers.
    pub listen: SocketAddr,
    /// HTTPS listener (`[tls]`): its own address, certificate and key files (reloaded on
    /// SIGHUP), kernel TLS. Off when `tls.listen` is empty; plain HTTP stays on `listen`.
    pub tls: TlsConfig,
    /// Accept HTTP/2 with prior knowledge (h2c: a client that opens with the HTTP/2 preface)
    /// on the plain listener, besides HTTP/1.1. Browsers use h2 only over TLS (`tls.http2`);
    /// h2c is for tools and proxies in front of the edge.
    pub http2_cleartext: bool,
    /// Worker threads, each with its own monoio runtime and listener. Default: available cores.
    pub workers: usize,
    /// Bind worker `i` to the `i`-th CPU the process may use (its `taskset` mask, wrapping).
    /// Off when the cores are shared with heavy neighbours the scheduler should move around.
    pub pin_workers: bool,
    /// Run the workers under `SCHED_BATCH`: a worker waking up for a completion does not
    /// preempt another process on its core (a co-located service or load generator), at the
    /// price of starting up to a scheduler slice later when that core is busy. On by default:
    /// with one client thread sharing the two cores it gave 1.32× the requests per second of 1
    /// KiB hits and 1.16× per CPU-second (docs/BENCHMARKS.md, issue 16).
    pub batch_workers: bool,
    /// Capacity of the in-memory object cache in bytes (weighted by body size).
    pub memory_cache_bytes: u64,
    /// How long the edge reuses a mutable playlist (the top-level master, playlists without
    /// `#EXT-X-ENDLIST`) before fetching it again, in milliseconds.
    pub playlist_ttl_ms: u64,
    /// How long an origin "not found" is remembered, in milliseconds (0 = not at all). Short, so
    /// a freshly published object shows up quickly, but enough that a burst of requests for a
    /// missing key costs one origin round trip.
    pub not_found_ttl_ms: u64,
    /// Longest wait for the origin before answering 504, in milliseconds.
    pub origin_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Longest time from the first byte of a request head to its end, in milliseconds (slowloris
    /// defence); the client gets 408.
    pub header_timeout_ms: u64,
    /// On SIGTERM/SIGINT: how long in-flight requests may take to finish, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// On the first SIGTERM/SIGINT: keep serving this long with `/readyz` answering 503
    /// (draining) before shutting down, in milliseconds (0: shut down at once).
    pub drain_delay_ms: u64,
    /// Log JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Trace export (`[telemetry]`: `otlp_endpoint`, `service_name`; off by default).
    pub telemetry: ringcast_infra::trace_export::TelemetryConfig,
    /// Bearer key of the purge API (`POST /purge`, `DELETE /v/...`). Empty: purge disabled;
    /// otherwise at least 16 characters, not one repeated character.
    pub admin_key: String,
    /// Bearer key for `/metrics` (`Authorization: Bearer <metrics_key>`). Empty: `/metrics`
    /// answers loopback clients only (403 for others); otherwise every client needs the key.
    /// At least 16 characters, not one repeated.
    pub metrics_key: String,
    /// Most header fields in one request head; more → 431.
    pub max_headers: usize,
    /// Most open client connections per worker; a connection beyond it gets 503 and is closed.
    pub max_connections_per_worker: usize,
    /// Length of each worker's accept queue (`listen(2)` backlog; the kernel caps it at
    /// `net.core.somaxconn`). Connections arriving while a worker is busy wait here; a full
    /// queue drops SYNs, which clients retry only after 1 s, then 3 s.
    pub listen_backlog: u32,
    /// Access log on stdout as JSON lines: "off", "full", or { sample = N } (one request in N).
    pub access_log: AccessLog,
    /// Signed playback URLs (`[signed_urls]`).
    pub signed_urls: SignedUrlConfig,
    /// The object store the edge serves from (`[store]`), unless `origin_dir` or `origin_url`
    /// is set.
    pub store: StoreConfig,
    /// Serve a plain directory as the origin instead of the store (read-only; key
    /// `v/a/1/seg1.m4s` is the file `{origin_dir}/v/a/1/seg1.m4s`). Empty = off.
    pub origin_dir: String,
    /// Proxy a plain HTTP/1.1 origin, `http://host:port[/prefix]`, instead of the store; key `k`
    /// is fetched as `{prefix}/k`. Empty = off.
    pub origin_url: String,
    /// Directory of the disk tier (created if missing, kept across restarts). Empty = no disk
    /// tier: everything is cached in memory.
    pub disk_cache_dir: String,
    /// Capacity of the disk tier in bytes (sum of file sizes, LRU eviction).
    pub disk_cache_bytes: u64,
    /// Immutable objects of at least this many bytes go to the disk tier and are sent with
    /// sendfile; smaller ones and all playlists stay in memory.
    pub disk_min_object_bytes: u64,
    /// After a mutable playlist's TTL ran out, serve the old copy for up to this long while one
    /// background refresh runs, in milliseconds (0 = always wait for the origin).
    pub playlist_stale_while_revalidate_ms: u64,
    /// When that background refresh fails (origin error or timeout), keep serving the old copy
    /// for up to this long after its TTL ran out, in milliseconds.
    pub playlist_stale_if_error_ms: u64,
    /// Redis holding the live event streams and the platform's metadata (`[redis]`; used
    /// when `live.enabled` or `platform.enabled`).
    pub redis: RedisConfig,
    /// Live LL-HLS from the Redis event streams (`[live]`).
    pub live: LiveSettings,
    /// Video visibility and fleet-wide purges from Redis (`[platform]`).
    pub platform: PlatformSettings,
    /// The front door to the ingest pool (`[front_door]`; off without nodes).
    pub front_door: FrontDoorConfig,
    /// The browser page at `/` (`[web]`).
    pub web: WebConfig,
    /// The edge tier this edge belongs to (`[peers]`; off without nodes).
    pub peers: PeersConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: TlsConfig::default(),
            http2_cleartext: false,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_workers: true,
            batch_workers: true,
            memory_cache_bytes: 256 * 1024 * 1024,
            playlist_ttl_ms: 1000,
            not_found_ttl_ms: 1000,
            origin_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            header_timeout_ms: 10_000,
            shutdown_grace_ms: 5_000,
            drain_delay_ms: 0,
            log_json: false,
            telemetry: Default::default(),
            admin_key: String::new(),
            metrics_key: String::new(),
            max_headers: 64,
            max_connections_per_worker: 10_000,
            listen_backlog: 4096,
            access_log: AccessLog::default(),
            signed_urls: SignedUrlConfig::default(),
            store: StoreConfig::default(),
            origin_dir: String::new(),
            origin_url: String::new(),
            disk_cache_dir: String::new(),
            disk_cache_bytes: 10 * 1024 * 1024 * 1024,
            disk_min_object_bytes: 512 * 1024,
            playlist_stale_while_revalidate_ms: 2_000,
            playlist_stale_if_error_ms: 60_000,
            redis: RedisConfig::default(),
            live: LiveSettings::default(),
            platform: PlatformSettings::default(),
            front_door: FrontDoorConfig::default(),
            web: WebConfig::default(),
            peers: PeersConfig::default(),
        }
    }
}

/// Values given on the command line; they win over file and env.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub workers: Option<usize>,
    pub origin_dir: Option<PathBuf>,
    pub origin_url: Option<String>,
    pub disk_cache_dir: Option<PathBuf>,
}

impl EdgeConfig {
    /// Load from `path` (optional) and the process environment, then apply `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, EdgeError> {
        // vars_os: a non-UTF-8 variable elsewhere in the environment must not panic the edge.
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Self::load_from(path, env, overrides)
    }

    /// Like [`EdgeConfig::load`] with an explicit environment (for tests).
    pub fn load_from(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, EdgeError> {
        // The config-file variable shares the prefix but is not a field; deny_unknown_fields
        // would reject it.
        let env = env.into_iter().filter(|(k, _)| k != ENV_CONFIG_FILE);
        let mut cfg: EdgeConfig = config::load_from(path, ENV_PREFIX, env)?;
        if let Some(listen) = overrides.listen {
            cfg.listen = listen;
        }
        if let Some(workers) = overrides.workers {
            cfg.workers = workers;
        }
        if let Some(dir) = &overrides.origin_dir {
            cfg.origin_dir = dir.to_string_lossy().into_owned();
        }
        if let Some(url) = &overrides.origin_url {
            cfg.origin_url = url.clone();
        }
        if let Some(dir) = &overrides.disk_cache_dir {
            cfg.disk_cache_dir = dir.to_string_lossy().into_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Whether the origin is the object store (not `origin_dir` or `origin_url`).
    pub fn origin_is_store(&self) -> bool {
        self.origin_dir.is_empty() && self.origin_url.is_empty()
    }

    /// Reject values that cannot work, with a message naming the field.
    pub fn validate(&self) -> Result<(), EdgeError> {
        let invalid = |msg: &str| Err(EdgeError::InvalidConfig(msg.to_string()));
        if self.workers == 0 || self.workers > 1024 {
            return invalid("workers must be between 1 and 1024");
        }
        ringcast_server::check_connection_limits(
            self.max_headers,
            self.listen_backlog,
            self.max_connections_per_worker,
        )
        .or_else(invalid)?;
        self.tls.listen_addr().map_err(EdgeError::InvalidConfig)?;
        if !self.admin_key.is_empty() {
            check_strength("admin_key", &self.admin_key).map_err(|e| {
                EdgeError::InvalidConfig(format!("{e} (leave it empty to disable purge)"))
            })?;
        }
        if !self.metrics_key.is_empty() {
            check_strength("metrics_key", &self.metrics_key)
                .map_err(|e| EdgeError::InvalidConfig(e.to_string()))?;
        }
        if self.signed_urls.enabled || !self.signed_urls.secret.is_empty() {
            // A set secret signs private videos' URLs even when not every URL must be signed.
            check_strength("signed_urls.secret", &self.signed_urls.secret).map_err(|e| {
                EdgeError::InvalidConfig(format!(
                    "{e} (required when signed_urls.enabled; leave it empty for no signed URLs)"
                ))
            })?;
        }
        if let AccessLog::Sampled { sample: 0 } = self.access_log {
            return invalid("access_log.sample must be positive");
        }
        if self.memory_cache_bytes == 0 {
            return invalid("memory_cache_bytes must be positive");
        }
        bounds::positive(&[
            ("origin_timeout_ms", self.origin_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
        ])
        .map_err(EdgeError::InvalidConfig)?;
        bounds::at_most_one_day(&[
            ("playlist_ttl_ms", self.playlist_ttl_ms),
            ("not_found_ttl_ms", self.not_found_ttl_ms),
            ("origin_timeout_ms", self.origin_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("shutdown_grace_ms", self.shutdown_grace_ms),
            (
                "playlist_stale_while_revalidate_ms",
                self.playlist_stale_while_revalidate_ms,
            ),
            (
                "playlist_stale_if_error_ms",
                self.playlist_stale_if_error_ms,
            ),
        ])
        .map_err(EdgeError::InvalidConfig)?;
        if !self.origin_dir.is_empty() && !self.origin_url.is_empty() {
            return invalid("origin_dir and origin_url are exclusive: set one");
        }
        if !self.origin_url.is_empty() && !self.origin_url.starts_with("http://") {
            return invalid("origin_url must look like http://host:port[/prefix]");
        }
        if !self.disk_cache_dir.is_empty() && self.disk_cache_bytes == 0 {
            return invalid("disk_cache_bytes must be positive when disk_cache_dir is set");
        }
        self.front_door.check().map_err(EdgeError::InvalidConfig)?;
        self.web.check().map_err(EdgeError::InvalidConfig)?;
        self.peers.check().map_err(EdgeError::InvalidConfig)?;
        self.live.check().map_err(EdgeError::InvalidConfig)?;
        self.platform.check().map_err(EdgeError::InvalidConfig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_infra::config::StoreBackend;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let cfg = EdgeConfig::load_from(None, env(&[]), &Overrides::default()).expect("load");
        assert_eq!(cfg.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(cfg.workers >= 1);
        assert_eq!(cfg.memory_cache_bytes, 256 * 1024 * 1024);
        assert_eq!(cfg.playlist_ttl_ms, 1000);
        assert_eq!(cfg.header_timeout_ms, 10_000);
        assert_eq!(cfg.idle_timeout_ms, 60_000);
        assert!(!cfg.log_json);
        assert_eq!(cfg.store.backend, StoreBackend::Fs);
    }

    #[test]
    fn cli_beats_env_beats_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("edge.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\nworkers = 1\nplaylist_ttl_ms = 5\n[store]\nroot = \"/srv/x\"\n",
        )
        .expect("write");
        let e = env(&[
            ("RINGCAST_EDGE_LISTEN", "127.0.0.1:2000"),
            ("RINGCAST_EDGE_WORKERS", "2"),
            ("RINGCAST_EDGE_STORE__BUCKET", "b"),
            ("RINGCAST_EDGE_CONFIG", "/ignored.toml"),
        ]);
        let over = Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
            ..Overrides::default()
        };
        let cfg = EdgeConfig::load_from(Some(&file), e, &over).expect("load");
        assert_eq!(cfg.listen.port(), 3000, "CLI wins");
        assert_eq!(cfg.workers, 2, "env wins over file");
        assert_eq!(cfg.playlist_ttl_ms, 5, "file wins over default");
        assert_eq!(cfg.store.root, Path::new("/srv/x"));
        assert_eq!(cfg.store.bucket, "b");
    }

    #[test]
    fn unknown_and_invalid_values_are_rejected() {
        let err = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_MEMORY_CACHE", "1")]),
            &Overrides::default(),
        )
        .expect_err("unknown field");
        assert!(err.to_string().contains("memory_cache"), "{err}");
        let err = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_WORKERS", "0")]),
            &Overrides::default(),
        )
        .expect_err("zero workers");
        assert!(err.to_string().contains("workers"), "{err}");
        let err = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_LISTEN", "nope")]),
            &Overrides::default(),
        )
        .expect_err("bad address");
        assert!(err.to_string().contains("address"), "{err}");
        let err = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_PLAYLIST_TTL_MS", "99999999999999")]),
            &Overrides::default(),
        )
        .expect_err("absurd TTL");
        assert!(err.to_string().contains("playlist_ttl_ms"), "{err}");
        let err = EdgeConfig::load_from(
            None,
            env(&[
                ("RINGCAST_EDGE_ORIGIN_DIR", "/srv"),
                ("RINGCAST_EDGE_ORIGIN_URL", "http://127.0.0.1:1"),
            ]),
            &Overrides::default(),
        )
        .expect_err("two origins");
        assert!(err.to_string().contains("exclusive"), "{err}");
        let err = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_ORIGIN_URL", "https://x")]),
            &Overrides::default(),
        )
        .expect_err("https origin");
        assert!(err.to_string().contains("origin_url"), "{err}");
    }

    #[test]
    fn origin_and_disk_flags_override() {
        let over = Overrides {
            origin_dir: Some(PathBuf::from("/srv/media")),
            disk_cache_dir: Some(PathBuf::from("/var/cache/edge")),
            ..Overrides::default()
        };
        let cfg = EdgeConfig::load_from(
            None,
            env(&[("RINGCAST_EDGE_DISK_CACHE_BYTES", "1000")]),
            &over,
        )
        .expect("load");
        assert_eq!(cfg.origin_dir, "/srv/media");
        assert_eq!(cfg.disk_cache_dir, "/var/cache/edge");
        assert_eq!(cfg.disk_cache_bytes, 1000);
    }

    #[test]
    fn http_fields_from_env() {
        use crate::access_log::{AccessLog, AccessLogMode};
        let load =
            |pairs: &[(&str, &str)]| EdgeConfig::load_from(None, env(pairs), &Overrides::default());
        let cfg = load(&[
            ("RINGCAST_EDGE_ACCESS_LOG", "full"),
            ("RINGCAST_EDGE_ADMIN_KEY", "admin-key-0123456789"),
            ("RINGCAST_EDGE_MAX_HEADERS", "10"),
            ("RINGCAST_EDGE_SIGNED_URLS__ENABLED", "true"),
            ("RINGCAST_EDGE_SIGNED_URLS__SECRET", "0123456789abcdef"),
        ])
        .expect("load");
        assert_eq!(cfg.access_log, AccessLog::Mode(AccessLogMode::Full));
        assert_eq!(
            (cfg.admin_key.as_str(), cfg.max_headers),
            ("admin-key-0123456789", 10)
        );
        assert!(cfg.signed_urls.enabled);
        let cfg = load(&[("RINGCAST_EDGE_ACCESS_LOG__SAMPLE", "5")]).expect("sample");
        assert_eq!(cfg.access_log.every(), Some(5));
        for (pairs, field) in [
            (
                &[("RINGCAST_EDGE_SIGNED_URLS__ENABLED", "true")][..],
                "signed_urls.secret",
            ),
            (
                &[("RINGCAST_EDGE_ACCESS_LOG__SAMPLE", "0")][..],
                "access_log.sample",
            ),
            (
                &[("RINGCAST_EDGE_SIGNED_URLS__SECRET", "short")][..],
                "signed_urls.secret",
            ),
            (
                &[("RINGCAST_EDGE_PLATFORM__VISIBILITY_TTL_MS", "0")][..],
                "platform.visibility_ttl_ms",
            ),
            (&[("RINGCAST_EDGE_MAX_HEADERS", "0")][..], "max_headers"),
            (&[("RINGCAST_EDGE_ADMIN_KEY", "k")][..], "admin_key"),
            (&[("RINGCAST_EDGE_METRICS_KEY", "short")][..], "metrics_key"),
            (
                &[
                    ("RINGCAST_EDGE_SIGNED_URLS__ENABLED", "true"),
                    ("RINGCAST_EDGE_SIGNED_URLS__SECRET", "aaaaaaaaaaaaaaaaaaaa"),
                ][..],
                "signed_urls.secret",
            ),
            (
                &[("RINGCAST_EDGE_MAX_CONNECTIONS_PER_WORKER", "0")][..],
                "max_connections",
            ),
        ] {
            let err = load(pairs).expect_err(field);
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(load(&[("RINGCAST_EDGE_ACCESS_LOG", "loud")]).is_err());
    }

    #[test]
    fn the_example_file_loads_and_matches_the_defaults() {
        // The example documents every field; keep it loadable and in sync with Default.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge.example.toml");
        let cfg = EdgeConfig::load_from(Some(&example), env(&[]), &Overrides::default())
            .expect("load example");
        let defaults = EdgeConfig {
            workers: cfg.workers,
            ..EdgeConfig::default()
        };
        // StoreConfig has no PartialEq: compare the serialized forms.
        let as_toml = |c: &EdgeConfig| toml::Value::try_from(c).expect("serialize");
        assert_eq!(as_toml(&cfg), as_toml(&defaults));
        let text = std::fs::read_to_string(&example).expect("read");
        let value = as_toml(&EdgeConfig::default());
        let mut fields: Vec<String> = Vec::new();
        // Every leaf key, in sections and nested sections (`[front_door.rate_limit]`).
        fn leaves(t: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in t {
                match v {
                    toml::Value::Table(sub) => leaves(sub, out),
                    _ => out.push(format!("{k} =")),
                }
            }
        }
        if let toml::Value::Table(t) = &value {
            leaves(t, &mut fields);
        }
        for f in fields {
            assert!(
                text.contains(&f),
                "edge.example.toml does not document `{f}`"
            );
        }
    }
}
