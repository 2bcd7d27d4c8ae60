//! Typed options for the three services and the one place their TOML config files are written.
//!
//! Every service in a test is configured the same way: a `{name}.toml` file next to its log,
//! passed with `--config`, and nothing from `RINGCAST_*` variables or CLI flags (those layers
//! have their own tests). The kit cannot use the services' config structs (they dev-depend on
//! the kit), so the keys are spelled here; the services read them with
//! `deny_unknown_fields`, so a key that drifts from its struct fails the start-up loudly.
//! What tests vary has a typed option; a rare knob goes through [`toml`](IngestOptions::toml)
//! (raw TOML merged over what the kit wrote, sections included).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringcast_infra::config::{StoreBackend, StoreConfig};
use toml::{Table, Value};

/// Options every service has: its name (process, config and log file names, transcoder
/// consumer name), raw TOML, extra environment.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) name: String,
    /// Fixed listen port (else a free one is picked at each start).
    pub(crate) port: Option<u16>,
    workers: Option<usize>,
    pub(crate) legacy_driver: bool,
    extra: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// An HTTPS listener (`[tls]`) on a port of its own (edge and ingest).
    pub(crate) tls: Option<crate::tls::TlsFiles>,
}

impl Common {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            port: None,
            workers: None,
            legacy_driver: false,
            extra: Vec::new(),
            env: Vec::new(),
            tls: None,
        }
    }
}

/// The builder methods every options type shares.
macro_rules! common_options {
    ($t:ty) => {
        impl $t {
            /// Name of the process: its config file `{name}.toml`, its log, its state dir. Two
            /// services of one kind in one stack need two names.
            pub fn name(mut self, name: &str) -> Self {
                self.common.name = name.to_string();
                self
            }

            /// Listen on this port (from [`crate::free_port`]) instead of a new free one at
            /// each start: for services that must know each other's address before they start
            /// (an edge tier's peer list), and to keep the address across restarts.
            pub fn port(mut self, port: u16) -> Self {
                self.common.port = Some(port);
                self
            }

            /// Worker threads (`workers`).
            pub fn workers(mut self, n: usize) -> Self {
                self.common.workers = Some(n);
                self
            }

            /// Raw TOML merged over the file the kit writes (tables merge key by key, values
            /// replace), for knobs without an option here, e.g. `"playlist_ttl_ms = 2000"` or
            /// `"[live]\nread_block_ms = 50"`. May be given several times.
            pub fn toml(mut self, raw: impl Into<String>) -> Self {
                self.common.extra.push(raw.into());
                self
            }

            /// An environment variable for the process. Only for tests of the environment layer
            /// itself: configuration belongs in the file.
            pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
                self.common.env.push((key.to_string(), value.into()));
                self
            }

            pub(crate) fn common(&self) -> &Common {
                &self.common
            }
        }
    };
}

/// The `[tls]` option of the services on the server shell.
macro_rules! tls_option {
    ($t:ty) => {
        impl $t {
            /// An HTTPS listener on a free port of its own ([`crate::Service::tls_addr`]) with
            /// `files`' certificate and key (`[tls]`; `ktls` as `files.ktls`).
            pub fn tls(mut self, files: &crate::tls::TlsFiles) -> Self {
                self.common.tls = Some(files.clone());
                self
            }
        }
    };
}

/// `ringcast-ingest`: tus uploads and live pushes. Defaults: 2 workers, the stack's store and
/// Redis, spool in `{stack dir}/{name}` (kept across [`restart`](crate::Stack::restart)), and
/// `auth.mode = "open"` (most tests are not about keys; [`IngestOptions::require_keys`] turns
/// the service's default, API keys, back on).
#[derive(Debug, Clone)]
pub struct IngestOptions {
    common: Common,
    max_upload_bytes: Option<u64>,
    live_keys: BTreeMap<String, String>,
    live_grace_secs: Option<u64>,
    live_publisher_timeout_secs: Option<u64>,
    live_buffer_bytes: Option<usize>,
    require_keys: bool,
    node_tag: Option<String>,
}

common_options!(IngestOptions);
tls_option!(IngestOptions);

impl Default for IngestOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl IngestOptions {
    pub fn new() -> Self {
        Self {
            common: Common::new("ingest"),
            max_upload_bytes: None,
            live_keys: BTreeMap::new(),
            live_grace_secs: None,
            live_publisher_timeout_secs: None,
            live_buffer_bytes: None,
            require_keys: false,
            node_tag: None,
        }
    }

    /// This node's tag (`node_tag`): its upload ids start with `{tag}-`, and an edge with
    /// [`EdgeOptions::front_door`] started after it in the stack lists it as a node.
    pub fn node_tag(mut self, tag: &str) -> Self {
        self.node_tag = Some(tag.to_string());
        self
    }

    pub(crate) fn tag(&self) -> Option<&str> {
        self.node_tag.as_deref()
    }

    /// Every `/files/` and `/v1/` request needs an API key (`auth.mode = "keys"`, the
    /// service's default); make keys with [`crate::Stack::create_key`].
    pub fn require_keys(mut self) -> Self {
        self.require_keys = true;
        self
    }

    /// Run the monoio workers on the epoll driver (`MONOIO_FORCE_LEGACY_DRIVER=1`).
    pub fn legacy_driver(mut self, legacy: bool) -> Self {
        self.common.legacy_driver = legacy;
        self
    }

    /// Largest accepted upload (`max_upload_bytes`, advertised as `Tus-Max-Size`).
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = Some(bytes);
        self
    }

    /// Allow live pushes to `PUT /live/{key}`, published as video `video` (`[live.keys]`).
    pub fn live_key(mut self, key: &str, video: &str) -> Self {
        self.live_keys.insert(key.to_string(), video.to_string());
        self
    }

    /// Seconds a live stream survives its publisher's disconnect (`live.grace_secs`).
    pub fn live_grace_secs(mut self, secs: u64) -> Self {
        self.live_grace_secs = Some(secs);
        self
    }

    /// Seconds of publisher silence before its push counts as disconnected
    /// (`live.publisher_timeout_secs`).
    pub fn live_publisher_timeout_secs(mut self, secs: u64) -> Self {
        self.live_publisher_timeout_secs = Some(secs);
        self
    }

    /// Bytes of a live stream kept for pullers (`live.buffer_bytes`).
    pub fn live_buffer_bytes(mut self, bytes: usize) -> Self {
        self.live_buffer_bytes = Some(bytes);
        self
    }

    pub(crate) fn render(&self, ctx: &Context<'_>) -> Table {
        let mut t = listen_and_workers(ctx, &self.common, 2);
        t.insert("data_dir".into(), path(ctx.state_dir));
        if let Some(n) = self.max_upload_bytes {
            t.insert("max_upload_bytes".into(), int(n));
        }
        if let Some(tag) = &self.node_tag {
            t.insert("node_tag".into(), Value::String(tag.clone()));
        }
        t.insert("store".into(), Value::Table(store(ctx.store)));
        t.insert("redis".into(), Value::Table(redis(ctx, "ingest")));
        let mut live = Table::new();
        if !self.live_keys.is_empty() {
            let keys = self
                .live_keys
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            live.insert("keys".into(), Value::Table(keys));
        }
        if let Some(s) = self.live_grace_secs {
            live.insert("grace_secs".into(), int(s));
        }
        if let Some(s) = self.live_publisher_timeout_secs {
            live.insert("publisher_timeout_secs".into(), int(s));
        }
        if let Some(b) = self.live_buffer_bytes {
            live.insert("buffer_bytes".into(), int(b as u64));
        }
        if !live.is_empty() {
            t.insert("live".into(), Value::Table(live));
        }
        let mut auth = Table::new();
        let mode = if self.require_keys { "keys" } else { "open" };
        auth.insert("mode".into(), Value::String(mode.into()));
        t.insert("auth".into(), Value::Table(auth));
        t
    }
}

/// Where the edge gets objects from.
#[derive(Debug, Clone)]
enum Origin {
    /// The stack's object store (default).
    Store,
    /// A plain directory (`origin_dir`).
    Dir(PathBuf),
    /// A plain HTTP origin (`origin_url`).
    Url(String),
}

/// The edge's disk tier.
#[derive(Debug, Clone)]
struct DiskCache {
    dir: PathBuf,
    capacity_bytes: u64,
    min_object_bytes: u64,
}

/// `ringcast-edge`. Defaults: 2 workers, serving the stack's store, following the stack's
/// Redis (live, visibility, fleet purges) when the stack has one (`[platform]` off without
/// one), no disk tier, no admin key, no URL signing.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    common: Common,
    origin: Origin,
    disk_cache: Option<DiskCache>,
    admin_key: Option<String>,
    signing_key: Option<String>,
    front_door: bool,
    playback_secret: Option<String>,
}

common_options!(EdgeOptions);
tls_option!(EdgeOptions);

impl Default for EdgeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeOptions {
    pub fn new() -> Self {
        Self {
            common: Common::new("edge"),
            origin: Origin::Store,
            disk_cache: None,
            admin_key: None,
            signing_key: None,
            front_door: false,
            playback_secret: None,
        }
    }

    /// Front the stack's tagged ingest nodes (`[front_door] nodes`): every ingest with a
    /// [`IngestOptions::node_tag`] started before this edge (builder order). Health checks
    /// every 200 ms (tests wait for a dead node to be noticed); other knobs through
    /// [`toml`](EdgeOptions::toml), e.g. `"[front_door.rate_limit]\nper_address_burst = 5"`.
    pub fn front_door(mut self) -> Self {
        self.front_door = true;
        self
    }

    /// Run the monoio workers on the epoll driver (`MONOIO_FORCE_LEGACY_DRIVER=1`).
    pub fn legacy_driver(mut self, legacy: bool) -> Self {
        self.common.legacy_driver = legacy;
        self
    }

    /// Serve a plain directory instead of the store (`origin_dir`).
    pub fn origin_dir(mut self, dir: &Path) -> Self {
        self.origin = Origin::Dir(dir.to_path_buf());
        self
    }

    /// Proxy a plain HTTP origin instead of the store (`origin_url`, `http://host:port[/prefix]`).
    pub fn origin_url(mut self, url: &str) -> Self {
        self.origin = Origin::Url(url.to_string());
        self
    }

    /// A disk tier in `dir` (the caller's, so it can outlive one edge) of `capacity_bytes`,
    /// for immutable objects of at least `min_object_bytes` (`disk_cache_dir`,
    /// `disk_cache_bytes`, `disk_min_object_bytes`).
    pub fn disk_cache(mut self, dir: &Path, capacity_bytes: u64, min_object_bytes: u64) -> Self {
        self.disk_cache = Some(DiskCache {
            dir: dir.to_path_buf(),
            capacity_bytes,
            min_object_bytes,
        });
        self
    }

    /// Bearer key of the purge API (`admin_key`).
    pub fn admin_key(mut self, key: &str) -> Self {
        self.admin_key = Some(key.to_string());
        self
    }

    /// Require signed playback URLs made with `secret` (`[signed_urls]`, at least 16 bytes).
    pub fn signing_key(mut self, secret: &str) -> Self {
        self.signing_key = Some(secret.to_string());
        self
    }

    /// The signing secret without requiring signatures everywhere (`[signed_urls] secret`,
    /// `enabled = false`): private videos need signed URLs, public ones play unsigned, as
    /// with the ingest's `[playback] signing_secret` set to the same value.
    pub fn playback_secret(mut self, secret: &str) -> Self {
        self.playback_secret = Some(secret.to_string());
        self
    }

    pub(crate) fn render(&self, ctx: &Context<'_>) -> Table {
        let mut t = listen_and_workers(ctx, &self.common, 2);
        t.insert("store".into(), Value::Table(store(ctx.store)));
        match &self.origin {
            Origin::Store => {}
            Origin::Dir(dir) => {
                t.insert("origin_dir".into(), path(dir));
            }
            Origin::Url(url) => {
                t.insert("origin_url".into(), Value::String(url.clone()));
            }
        }
        if let Some(d) = &self.disk_cache {
            t.insert("disk_cache_dir".into(), path(&d.dir));
            t.insert("disk_cache_bytes".into(), int(d.capacity_bytes));
            t.insert("disk_min_object_bytes".into(), int(d.min_object_bytes));
        }
        if let Some(k) = &self.admin_key {
            t.insert("admin_key".into(), Value::String(k.clone()));
        }
        if self.front_door {
            assert!(
                !ctx.ingest_nodes.is_empty(),
                "front_door: no tagged ingest started before the edge"
            );
            let nodes = ctx
                .ingest_nodes
                .iter()
                .map(|(tag, addr)| {
                    let mut n = Table::new();
                    n.insert("tag".into(), Value::String(tag.clone()));
                    n.insert("url".into(), Value::String(format!("http://{addr}")));
                    Value::Table(n)
                })
                .collect();
            let mut fd = Table::new();
            fd.insert("nodes".into(), Value::Array(nodes));
            fd.insert("health_interval_ms".into(), int(200));
            t.insert("front_door".into(), Value::Table(fd));
        }
        if let Some(secret) = &self.signing_key {
            let mut s = Table::new();
            s.insert("enabled".into(), Value::Boolean(true));
            s.insert("secret".into(), Value::String(secret.clone()));
            t.insert("signed_urls".into(), Value::Table(s));
        } else if let Some(secret) = &self.playback_secret {
            let mut s = Table::new();
            s.insert("secret".into(), Value::String(secret.clone()));
            t.insert("signed_urls".into(), Value::Table(s));
        }
        // Without a Redis in the stack the edge keeps its default URL: nothing listens there,
        // and VOD never asks Redis for anything; nor does visibility (every video public).
        // A directory or HTTP origin turns it off by itself (the edge's default, which the
        // origin tests thereby exercise); in front of the store it is said explicitly.
        if ctx.redis_url.is_some() {
            t.insert("redis".into(), Value::Table(redis(ctx, "edge")));
        } else if matches!(self.origin, Origin::Store) {
            let mut platform = Table::new();
            platform.insert("enabled".into(), Value::Boolean(false));
            t.insert("platform".into(), Value::Table(platform));
        }
        t
    }
}

/// `ringcast-transcoder`. Defaults: 1 worker, consumer name = the service name, `/metrics`
/// and `/healthz` on a free port (the readiness check), scratch space in
/// `{stack dir}/{name}-work`, retries after 100 ms instead of a second.
#[derive(Debug, Clone)]
pub struct TranscoderOptions {
    common: Common,
    ffmpeg_path: Option<PathBuf>,
}

common_options!(TranscoderOptions);

impl Default for TranscoderOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl TranscoderOptions {
    pub fn new() -> Self {
        Self {
            common: Common::new("transcoder"),
            ffmpeg_path: None,
        }
    }

    /// The ffmpeg binary (`ffmpeg_path`), e.g. a wrapper script that misbehaves on purpose.
    pub fn ffmpeg_path(mut self, path: &Path) -> Self {
        self.ffmpeg_path = Some(path.to_path_buf());
        self
    }

    pub(crate) fn render(&self, ctx: &Context<'_>) -> Table {
        let mut t = Table::new();
        t.insert(
            "consumer_name".into(),
            Value::String(self.common.name.clone()),
        );
        t.insert("metrics_listen".into(), Value::String(ctx.addr.to_string()));
        t.insert("work_dir".into(), path(ctx.state_dir));
        t.insert("retry_backoff_ms".into(), int(100));
        if let Some(n) = self.common.workers {
            t.insert("workers".into(), int(n as u64));
        }
        if let Some(p) = &self.ffmpeg_path {
            t.insert("ffmpeg_path".into(), path(p));
        }
        t.insert("store".into(), Value::Table(store(ctx.store)));
        t.insert("redis".into(), Value::Table(redis(ctx, "transcoder")));
        t
    }
}

/// What a config file depends on besides the options: the stack's store and Redis, the
/// address the kit picked, the service's state dir.
pub(crate) struct Context<'a> {
    pub store: &'a StoreConfig,
    pub redis_url: Option<&'a str>,
    pub addr: SocketAddr,
    /// The HTTPS address when the service has [`Common::tls`].
    pub tls_addr: Option<SocketAddr>,
    pub state_dir: &'a Path,
    /// Tagged ingests already started in the stack (tag, address), for a front door.
    pub ingest_nodes: &'a [(String, SocketAddr)],
}

/// The file's text: `table` with every raw TOML snippet of `common` merged over it.
pub(crate) fn file_text(mut table: Table, common: &Common) -> String {
    for raw in &common.extra {
        let extra: Table = raw.parse().unwrap_or_else(|e| {
            panic!("extra TOML for {} does not parse: {e}\n{raw}", common.name)
        });
        merge(&mut table, extra);
    }
    table.to_string()
}

/// Merge `extra` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut Table, extra: Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(e)) => merge(b, e),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn listen_and_workers(ctx: &Context<'_>, common: &Common, workers: usize) -> Table {
    let mut t = Table::new();
    t.insert("listen".into(), Value::String(ctx.addr.to_string()));
    t.insert(
        "workers".into(),
        int(common.workers.unwrap_or(workers) as u64),
    );
    if let (Some(files), Some(addr)) = (&common.tls, ctx.tls_addr) {
        let mut tls = Table::new();
        tls.insert("listen".into(), Value::String(addr.to_string()));
        tls.insert("cert_file".into(), path(&files.cert));
        tls.insert("key_file".into(), path(&files.key));
        tls.insert("ktls".into(), Value::Boolean(files.ktls));
        tls.insert("http2".into(), Value::Boolean(files.http2));
        t.insert("tls".into(), Value::Table(tls));
    }
    t
}

/// `[store]`: only the keys of the backend in use.
fn store(s: &StoreConfig) -> Table {
    let mut t = Table::new();
    match s.backend {
        StoreBackend::Fs => {
            t.insert("backend".into(), Value::String("fs".into()));
            t.insert("root".into(), path(&s.root));
        }
        StoreBackend::S3 => {
            t.insert("backend".into(), Value::String("s3".into()));
            for (k, v) in [
                ("endpoint", &s.endpoint),
                ("bucket", &s.bucket),
                ("region", &s.region),
                ("access_key", &s.access_key),
                ("secret_key", &s.secret_key),
            ] {
                t.insert(k.into(), Value::String(v.clone()));
            }
        }
    }
    t
}

fn redis(ctx: &Context<'_>, service: &str) -> Table {
    let url = ctx
        .redis_url
        .unwrap_or_else(|| panic!("the {service} needs Redis: the stack has none"));
    let mut t = Table::new();
    t.insert("url".into(), Value::String(url.to_string()));
    t
}

fn path(p: &Path) -> Value {
    Value::String(p.to_string_lossy().into_owned())
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).expect("config integer fits in i64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_toml_merges_into_sections_and_replaces_values() {
        let store = StoreConfig {
            root: PathBuf::from("/s"),
            ..StoreConfig::default()
        };
        let ctx = Context {
            store: &store,
            tls_addr: None,
            redis_url: Some("redis://r/0"),
            addr: ([127, 0, 0, 1], 9).into(),
            state_dir: Path::new("/w"),
            ingest_nodes: &[],
        };
        let o = IngestOptions::new()
            .live_key("k", "v")
            .toml("workers = 5\n[live]\ngrace_secs = 3\n[live.keys]\nk2 = \"v2\"");
        let text = file_text(o.render(&ctx), o.common());
        let t: Table = text.parse().expect("valid TOML");
        assert_eq!(t["workers"].as_integer(), Some(5));
        assert_eq!(t["data_dir"].as_str(), Some("/w"));
        assert_eq!(t["store"]["root"].as_str(), Some("/s"));
        assert_eq!(t["redis"]["url"].as_str(), Some("redis://r/0"));
        assert_eq!(t["live"]["grace_secs"].as_integer(), Some(3));
        assert_eq!(t["live"]["keys"]["k"].as_str(), Some("v"));
        assert_eq!(t["live"]["keys"]["k2"].as_str(), Some("v2"));
    }

    #[test]
    fn edge_without_redis_keeps_the_default() {
        let store = StoreConfig::default();
        let ctx = Context {
            store: &store,
            tls_addr: None,
            redis_url: None,
            addr: ([127, 0, 0, 1], 9).into(),
            state_dir: Path::new("/w"),
            ingest_nodes: &[],
        };
        let o = EdgeOptions::new()
            .signing_key("0123456789abcdef")
            .admin_key("a");
        let t: Table = file_text(o.render(&ctx), o.common())
            .parse()
            .expect("valid TOML");
        assert!(!t.contains_key("redis"));
        assert_eq!(t["platform"]["enabled"].as_bool(), Some(false));
        assert_eq!(t["signed_urls"]["enabled"].as_bool(), Some(true));
        assert_eq!(t["admin_key"].as_str(), Some("a"));
    }
}
