//! [`Stack`]: Redis, an object store and any of the services, started for one test.
//!
//! ```no_run
//! use ringcast_testkit::{EdgeOptions, IngestOptions, Stack, StoreBackend, TranscoderOptions};
//!
//! let stack = Stack::builder()
//!     .store(StoreBackend::S3)
//!     .ingest(IngestOptions::new().live_key("cam-publish-key-0001", "cam"))
//!     .transcoder(TranscoderOptions::new().toml("[live]\npreset = \"ultrafast\""))
//!     .edge(EdgeOptions::new())
//!     .start();
//! let r = stack.edge().get("/v/cam/master.m3u8");
//! # let _ = r;
//! ```
//!
//! Everything lives in one temp dir (store root, config files, logs, spools) removed on drop;
//! processes stop before the servers they use, and print their logs when the test panics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringcast_infra::config::{StoreBackend, StoreConfig};

use crate::config::{EdgeOptions, IngestOptions, TranscoderOptions};
use crate::servers::{RedisServer, S3Server};
use crate::services::{Kind, Service, ServiceOptions};
use crate::tempdir::TempDir;

/// Where the stack's Redis comes from.
#[derive(Debug, Clone)]
enum RedisChoice {
    /// None, unless a service needs one.
    Auto,
    /// A private redis-server, even with no service needing it (the test talks to it).
    Start,
    /// One the test runs itself (to stop or disconnect it while the services run).
    At(String),
}

/// What to start; [`StackBuilder::start`] starts it and waits until every service is ready.
#[must_use]
pub struct StackBuilder {
    redis: RedisChoice,
    backend: StoreBackend,
    /// An S3 store the test runs itself ([`StackBuilder::store_at`]).
    external_store: Option<StoreConfig>,
    services: Vec<ServiceOptions>,
}

impl StackBuilder {
    /// Start a private Redis. Implied by an ingest or a transcoder; the edge follows it
    /// (live) when there is one.
    pub fn redis(mut self) -> Self {
        self.redis = RedisChoice::Start;
        self
    }

    /// Use the Redis at `url` instead of starting one: for tests that stop or disconnect
    /// Redis under the running services.
    pub fn redis_at(mut self, url: &str) -> Self {
        self.redis = RedisChoice::At(url.to_string());
        self
    }

    /// The object store backend: `Fs` (default, `{dir}/store`) or `S3` (a private s3s-fs).
    pub fn store(mut self, backend: StoreBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Use the store of `cfg` (an S3 store the test runs, e.g. a [`crate::GarageCluster`])
    /// instead of starting one.
    pub fn store_at(mut self, cfg: StoreConfig) -> Self {
        self.external_store = Some(cfg);
        self
    }

    /// An ingest, reachable as [`Stack::ingest`].
    pub fn ingest(mut self, opts: IngestOptions) -> Self {
        self.services.push(opts.into());
        self
    }

    /// An edge, reachable as [`Stack::edge`].
    pub fn edge(mut self, opts: EdgeOptions) -> Self {
        self.services.push(opts.into());
        self
    }

    /// A transcoder, reachable as [`Stack::transcoder`].
    pub fn transcoder(mut self, opts: TranscoderOptions) -> Self {
        self.services.push(opts.into());
        self
    }

    /// Start the servers, then every service at once, then wait for each to be ready.
    pub fn start(self) -> Stack {
        let dir = TempDir::new("stack");
        let needs_redis = self
            .services
            .iter()
            .any(|s| matches!(s.kind(), Kind::Ingest | Kind::Transcoder));
        let (redis, redis_url) = match self.redis {
            RedisChoice::At(url) => (None, Some(url)),
            RedisChoice::Auto if !needs_redis => (None, None),
            _ => {
                let r = RedisServer::start();
                let url = r.url.clone();
                (Some(r), Some(url))
            }
        };
        let (s3, store) = match self.backend {
            _ if self.external_store.is_some() => (None, self.external_store.unwrap_or_default()),
            StoreBackend::Fs => {
                let root = dir.path().join("store");
                std::fs::create_dir_all(&root).expect("store dir");
                let store = StoreConfig {
                    backend: StoreBackend::Fs,
                    root,
                    ..StoreConfig::default()
                };
                (None, store)
            }
            StoreBackend::S3 => {
                let s3 = S3Server::start();
                let store = s3.store_config();
                (Some(s3), store)
            }
        };
        let mut stack = Stack {
            services: Vec::new(),
            redis,
            redis_url,
            _s3: s3,
            store,
            dir,
        };
        // In builder order, so an edge's front door knows the tagged ingests before it.
        let mut started: Vec<(ServiceOptions, Service)> = Vec::new();
        for opts in self.services {
            let nodes = ingest_nodes(&started);
            let service = stack.spawn_unready(&opts, &nodes);
            started.push((opts, service));
        }
        for (_, service) in &mut started {
            service.wait_ready();
        }
        stack.services = started;
        stack
    }
}

/// A running stack. Field order is drop order: services, then Redis and S3, then the dir.
pub struct Stack {
    services: Vec<(ServiceOptions, Service)>,
    redis: Option<RedisServer>,
    redis_url: Option<String>,
    _s3: Option<S3Server>,
    store: StoreConfig,
    dir: TempDir,
}

impl Stack {
    pub fn builder() -> StackBuilder {
        StackBuilder {
            redis: RedisChoice::Auto,
            backend: StoreBackend::Fs,
            external_store: None,
            services: Vec::new(),
        }
    }

    /// The first ingest given to the builder.
    pub fn ingest(&self) -> &Service {
        self.first(Kind::Ingest)
    }

    pub fn ingest_mut(&mut self) -> &mut Service {
        self.first_mut(Kind::Ingest)
    }

    /// The first edge given to the builder.
    pub fn edge(&self) -> &Service {
        self.first(Kind::Edge)
    }

    pub fn edge_mut(&mut self) -> &mut Service {
        self.first_mut(Kind::Edge)
    }

    /// The first transcoder given to the builder.
    pub fn transcoder(&self) -> &Service {
        self.first(Kind::Transcoder)
    }

    pub fn transcoder_mut(&mut self) -> &mut Service {
        self.first_mut(Kind::Transcoder)
    }

    /// A service given to the builder, by name.
    pub fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name} in this stack"))
    }

    /// Start another service on this stack's store and Redis and wait until it is ready. The
    /// test owns it (drop it to stop it); it must be dropped before the stack.
    pub fn spawn(&self, opts: impl Into<ServiceOptions>) -> Service {
        let nodes = ingest_nodes(&self.services);
        let mut service = self.spawn_unready(&opts.into(), &nodes);
        service.wait_ready();
        service
    }

    /// Stop the builder's service `name` (SIGKILL if it still runs) and start it again from
    /// the same options: a new port (unless the options fix one), the same config otherwise, the same state dir (the
    /// ingest's spool survives).
    pub fn restart(&mut self, name: &str) -> &mut Service {
        let i = self
            .services
            .iter()
            .position(|(_, s)| s.name == name)
            .unwrap_or_else(|| panic!("no service {name} in this stack"));
        // The old process goes first: it may hold files the new one opens.
        let (opts, old) = self.services.remove(i);
        drop(old);
        let nodes = ingest_nodes(&self.services);
        let mut service = self.spawn_unready(&opts, &nodes);
        service.wait_ready();
        self.services.insert(i, (opts, service));
        &mut self.services[i].1
    }

    /// Make an API key for `owner` with `role` (`admin`, `uploader`, `viewer`) with the
    /// ingest's own CLI (`ringcast-ingest keys create`, the stack's first ingest config) and
    /// return its token.
    pub fn create_key(&self, owner: &str, role: &str) -> String {
        let out = crate::services::command(Kind::Ingest, false)
            .arg("--config")
            .arg(&self.ingest().config_path)
            .args(["keys", "create", "--owner", owner, "--role", role, "--json"])
            .output()
            .expect("run ringcast-ingest keys create");
        assert!(
            out.status.success(),
            "keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("keys create --json prints JSON");
        v["token"].as_str().expect("token").to_string()
    }

    /// The stack's S3 server (panics for a filesystem store), for outage tests.
    pub fn s3(&mut self) -> &mut S3Server {
        self._s3
            .as_mut()
            .expect("the stack runs a filesystem store, not an S3 server")
    }

    /// Redis URL of the stack (panics if it has no Redis).
    pub fn redis_url(&self) -> &str {
        self.redis_url.as_deref().expect("this stack has no Redis")
    }

    /// Stop the stack's own Redis while the services keep running.
    pub fn stop_redis(&mut self) {
        assert!(self.redis.take().is_some(), "the stack runs no Redis");
    }

    /// The object store the services use (open it with `ObjectStore::open`).
    pub fn store(&self) -> &StoreConfig {
        &self.store
    }

    /// Root of the filesystem store (panics for S3).
    pub fn store_root(&self) -> &Path {
        assert_eq!(
            self.store.backend,
            StoreBackend::Fs,
            "only a filesystem store has a root"
        );
        &self.store.root
    }

    /// The file of object `key` in the filesystem store.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.store_root().join(key)
    }

    /// Publish an object in the filesystem store the way the store does (temp file + rename),
    /// so a service never sees a partial file.
    pub fn put(&self, key: &str, body: &[u8]) {
        let path = self.object_path(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let tmp = self
            .store_root()
            .join(format!(".put-{}", key.replace('/', "_")));
        std::fs::write(&tmp, body).expect("write object");
        std::fs::rename(&tmp, &path).expect("publish object");
    }

    /// The stack's temp dir: scratch space for the test too (clips, playlists).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn_unready(
        &self,
        opts: &ServiceOptions,
        ingest_nodes: &[(String, SocketAddr)],
    ) -> Service {
        Service::spawn(
            opts,
            self.dir.path(),
            &self.store,
            self.redis_url.as_deref(),
            ingest_nodes,
        )
    }

    /// Stop the builder's service `name` now (SIGKILL, as a crash), keeping its place and
    /// state dir; the rest of the stack runs on.
    pub fn kill(&mut self, name: &str) {
        let i = self
            .services
            .iter()
            .position(|(_, s)| s.name == name)
            .unwrap_or_else(|| panic!("no service {name} in this stack"));
        let (_, old) = self.services.remove(i);
        drop(old);
    }

    fn first(&self, kind: Kind) -> &Service {
        self.services
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in this stack"))
    }

    fn first_mut(&mut self, kind: Kind) -> &mut Service {
        self.services
            .iter_mut()
            .map(|(_, s)| s)
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in this stack"))
    }
}

/// The tagged ingests among `services`, as a front door lists them.
fn ingest_nodes(services: &[(ServiceOptions, Service)]) -> Vec<(String, SocketAddr)> {
    services
        .iter()
        .filter_map(|(o, s)| Some((o.node_tag()?.to_string(), s.addr)))
        .collect()
}
