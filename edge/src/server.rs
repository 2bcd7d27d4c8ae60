//! The edge process: open the origin, the tiers and the live hub, then serve the routes on the
//! `ringcast-server` shell (one monoio runtime and `SO_REUSEPORT` listener per worker; see that
//! crate for start-up, shutdown and the connection loop).

use crate::readiness::ReadinessChecks;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ringcast_infra::purge::PurgeSubscription;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::http::Limits;
use ringcast_server::tls::{TlsContext, TlsSettings};
pub use ringcast_server::ShutdownHandle;
use ringcast_server::{CorsPolicy, Driver, ServerSettings, WorkerInfo};

use crate::access_log::{self, WorkerLog};
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::front_door::FrontDoor;
use crate::handler::{self, Edge};
use crate::live::hub::LiveHub;
use crate::metrics::Metrics;
use crate::origin::http::HttpOrigin;
use crate::origin::{DirOrigin, Origin};
use crate::peers::Peers;
use crate::platform::{fleet, Platform};
use crate::response::EXPOSED_HEADERS;
use crate::routes::access_control::Access;
use crate::shared::Shared;
use crate::tiers::disk::DiskTier;
use crate::tiers::memory::MemoryCache;
use crate::tiers::policy::StaleWindows;
use crate::tiers::Tiering;

/// A running edge.
pub struct Server {
    shell: ringcast_server::Server,
    shared: Arc<Shared>,
    /// The fleet purge subscription (with `[platform]` on).
    purges: Option<PurgeSubscription>,
}

impl Server {
    /// Open the store, start every worker and return once all listen.
    pub fn start(cfg: &EdgeConfig) -> Result<Self, EdgeError> {
        cfg.validate()?;
        let origin = open_origin(cfg)?;
        let disk = match cfg.disk_cache_dir.as_str() {
            "" => None,
            dir => Some(Arc::new(
                DiskTier::open(Path::new(dir), cfg.disk_cache_bytes)
                    .map_err(EdgeError::DiskTier)?,
            )),
        };
        let ms = Duration::from_millis;
        let shared = Arc::new(Shared {
            origin: Arc::new(origin),
            cache: Arc::new(MemoryCache::new(
                cfg.memory_cache_bytes,
                ms(cfg.playlist_ttl_ms),
                ms(cfg.not_found_ttl_ms),
                ms(cfg.origin_timeout_ms),
            )),
            disk,
            tiering: Tiering {
                disk_min_object_bytes: cfg.disk_min_object_bytes,
                stale: StaleWindows {
                    while_revalidate: ms(cfg.playlist_stale_while_revalidate_ms),
                    if_error: ms(cfg.playlist_stale_if_error_ms),
                },
            },
            metrics: Arc::default(),
            access: Access::new(&cfg.admin_key, &cfg.metrics_key, &cfg.signed_urls),
            live: LiveHub::new(cfg.live.clone(), &cfg.redis.url)
                .map_err(EdgeError::InvalidConfig)?,
            platform: Platform::new(&cfg.platform, cfg.origin_is_store(), &cfg.redis.url)
                .map_err(EdgeError::InvalidConfig)?,
            front_door: FrontDoor::start(&cfg.front_door)
                .map_err(EdgeError::InvalidConfig)?
                .map(Arc::new),
            web: crate::web::Web::new(&cfg.web),
            peers: Peers::start(&cfg.peers)
                .map_err(EdgeError::InvalidConfig)?
                .map(Arc::new),
            prefetch: Arc::default(),
        });
        warn_about_visibility(cfg);
        let readiness = ReadinessChecks::new(
            shared.live.enabled() || shared.platform.enabled(),
            &cfg.redis.url,
        )
        .map_err(EdgeError::InvalidConfig)?;
        if shared.live.enabled() || shared.platform.enabled() {
            crate::origin::trace::init(&cfg.redis.url).map_err(EdgeError::InvalidConfig)?;
        }
        let purges = fleet::subscribe(&shared)?;
        let log_tx = access_log::start(cfg.access_log).map_err(|source| EdgeError::Worker {
            worker: 0,
            what: "start the access-log thread",
            source,
        })?;
        let settings = settings(cfg);
        let header_timeout = settings.header_timeout;
        let access_log = cfg.access_log;
        let stats = Arc::clone(&shared.metrics.server);
        let for_workers = Arc::clone(&shared);
        let make = move |info: WorkerInfo| {
            let shared = Arc::clone(&for_workers);
            let log = log_tx
                .clone()
                .map(|tx| Rc::new(WorkerLog::new(tx, access_log)));
            if let Some(log) = &log {
                monoio::spawn(handler::flush_log_every_second(
                    Arc::clone(&shared),
                    Rc::clone(log),
                ));
            }
            let upstreams = shared.front_door.as_ref().map(|fd| fd.upstreams());
            Edge {
                shared,
                log,
                worker: info.id,
                header_timeout,
                upstreams,
                readiness: readiness.clone(),
            }
        };
        let shell = ringcast_server::Server::start(settings, stats, make).map_err(|e| match e {
            ringcast_server::ServerError::Worker {
                worker,
                what,
                source,
            } => EdgeError::Worker {
                worker,
                what,
                source,
            },
            ringcast_server::ServerError::WorkerLost(id) => EdgeError::WorkerLost(id),
            ringcast_server::ServerError::Tls(e) => EdgeError::InvalidConfig(format!("tls: {e}")),
        })?;
        shared.metrics.set_driver(shell.driver());
        tracing::info!(
            origin = shared.origin.kind(),
            disk_tier = shared.disk.is_some(),
            "edge tiers ready"
        );
        Ok(Self {
            shell,
            shared,
            purges,
        })
    }

    /// The address every worker listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.shell.addr()
    }

    /// The driver the workers run on.
    pub fn driver(&self) -> Driver {
        self.shell.driver()
    }

    /// The process-wide counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The HTTPS listener's address, if `[tls]` is on.
    pub fn tls_addr(&self) -> Option<std::net::SocketAddr> {
        self.shell.tls_addr()
    }

    /// The live TLS config (SIGHUP reloads it), if `[tls]` is on.
    pub fn tls_context(&self) -> Option<Arc<TlsContext>> {
        self.shell.tls_context()
    }

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shell.shutdown_handle()
    }

    /// Block until every worker has finished (after a shutdown).
    pub fn wait(self) {
        self.shell.wait();
        self.shared.live.close();
        if let Some(purges) = &self.purges {
            purges.stop();
        }
        if let Some(peers) = &self.shared.peers {
            peers.stop();
        }
        if let Some(front_door) = &self.shared.front_door {
            front_door.stop();
        }
        if let Some(disk) = &self.shared.disk {
            if let Err(error) = disk.save_recency() {
                tracing::warn!(%error, "could not save the disk tier's LRU order; the next start uses fill order");
            }
        }
    }

    /// Stop and wait.
    pub fn stop(self) {
        self.shell.shutdown_handle().trigger();
        self.wait();
    }
}

/// Say at start what visibility means on this edge, where it could surprise.
fn warn_about_visibility(cfg: &EdgeConfig) {
    let secret = !cfg.signed_urls.secret.is_empty();
    if !cfg.platform.is_enabled(cfg.origin_is_store()) {
        if secret {
            tracing::warn!(
                "[platform] is off: every video is public on this edge, private ones included \
                 (signed_urls.secret is set, so private videos probably exist); enable \
                 [platform] with a [redis] url to enforce visibility"
            );
        } else {
            tracing::info!("[platform] is off: every video is public; purges are local only");
        }
    } else {
        tracing::info!(
            visibility_ttl_ms = cfg.platform.visibility_ttl_ms,
            "enforcing video visibility and following fleet purges from Redis"
        );
        if !secret {
            tracing::warn!(
                "no signed_urls.secret: private videos cannot play through this edge (every \
                 request for one is 403)"
            );
        }
    }
}

/// The shell settings from the documented config.
fn settings(cfg: &EdgeConfig) -> ServerSettings {
    let ms = Duration::from_millis;
    let mut s = ServerSettings::new("edge", cfg.listen, EXPOSED_HEADERS);
    // The CORS pair only for requests with `Origin` (a third of a small hit's head), and
    // `Vary: Origin` on every answer (ADR 0012).
    s.cors = CorsPolicy::WithOrigin;
    s.workers = cfg.workers;
    s.pin_workers = cfg.pin_workers;
    s.batch_workers = cfg.batch_workers;
    s.listen_backlog = i32::try_from(cfg.listen_backlog).unwrap_or(i32::MAX);
    s.idle_timeout = ms(cfg.idle_timeout_ms);
    s.header_timeout = ms(cfg.header_timeout_ms);
    s.shutdown_grace = ms(cfg.shutdown_grace_ms);
    s.drain_delay = ms(cfg.drain_delay_ms);
    s.limits = Limits {
        max_headers: cfg.max_headers,
        ..Limits::default()
    };
    s.max_connections = cfg.max_connections_per_worker;
    // The edge reads no request bodies but the purge API's: an unread one closes the
    // connection (lingering) rather than being drained.
    s.drain_max = 0;
    s.h2c = cfg.http2_cleartext;
    // Checked by `validate`.
    if let Ok(Some(listen)) = cfg.tls.listen_addr() {
        s.tls = Some(TlsSettings {
            listen,
            cert_path: cfg.tls.cert_file.clone(),
            key_path: cfg.tls.key_file.clone(),
            ktls: cfg.tls.ktls,
            http2: cfg.tls.http2,
        });
    }
    s
}

/// The configured origin: a directory, an HTTP origin, or (default) the object store.
fn open_origin(cfg: &EdgeConfig) -> Result<Origin, EdgeError> {
    if !cfg.origin_dir.is_empty() {
        return Ok(Origin::Dir(DirOrigin::open(PathBuf::from(
            &cfg.origin_dir,
        ))?));
    }
    if !cfg.origin_url.is_empty() {
        return HttpOrigin::parse(&cfg.origin_url)
            .map(Origin::Http)
            .map_err(EdgeError::InvalidConfig);
    }
    open_store(cfg).map(Origin::Store)
}

/// Open the object store once, on a short-lived runtime of the calling thread.
fn open_store(cfg: &EdgeConfig) -> Result<ObjectStore, EdgeError> {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .map_err(|source| EdgeError::Worker {
            worker: 0,
            what: "build start-up runtime",
            source,
        })?;
    rt.block_on(ObjectStore::open(&cfg.store))
        .map_err(EdgeError::StoreOpen)
}
