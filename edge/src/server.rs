//! Thread-per-core serving: one `std::thread` per worker, each with its own monoio runtime
//! (FusionDriver: io_uring where the kernel allows it, epoll otherwise) and its own
//! `SO_REUSEPORT` listener, so the kernel spreads connections over workers and nothing on the
//! request path is shared but the cache and the counters.
//!
//! Start-up is sequential on purpose: worker 0 binds the configured address and reports the
//! address it got (port 0 becomes a real port); the other workers bind that address, so every
//! listener shares one port. The server is "ready" only once every worker has bound.
//!
//! Shutdown: [`ShutdownHandle::trigger`] wakes every worker through a oneshot channel (monoio's
//! `sync` feature lets another thread wake a runtime); a worker stops accepting, lets in-flight
//! requests finish within the grace period, and returns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::net::{ListenerOpts, TcpListener};
use ringcast_infra::store::ObjectStore;
use ringcast_proto::http::Limits;

use crate::access_log::{self, WorkerLog};
use crate::config::EdgeConfig;
use crate::connection::{self, ConnCtx};
use crate::error::EdgeError;
use crate::live::hub::LiveHub;
use crate::metrics::{Driver, Metrics};
use crate::origin::http::HttpOrigin;
use crate::origin::{DirOrigin, Origin};
use crate::routes::access_control::Access;
use crate::shared::Shared;
use crate::tiers::disk::DiskTier;
use crate::tiers::memory::MemoryCache;
use crate::tiers::policy::StaleWindows;
use crate::tiers::Tiering;

/// A running edge.
pub struct Server {
    addr: SocketAddr,
    driver: Driver,
    shared: Arc<Shared>,
    shutdown: ShutdownHandle,
    workers: Vec<JoinHandle<()>>,
}

/// Stops a running server from any thread (e.g. the signal thread).
#[derive(Clone, Default)]
pub struct ShutdownHandle {
    senders: Arc<Mutex<Vec<oneshot::Sender<()>>>>,
}

impl ShutdownHandle {
    /// Tell every worker to stop accepting and finish. Idempotent.
    pub fn trigger(&self) {
        let senders = std::mem::take(&mut *self.senders.lock().unwrap_or_else(|e| e.into_inner()));
        for tx in senders {
            let _ = tx.send(());
        }
    }

    fn add(&self, tx: oneshot::Sender<()>) {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
    }
}

/// What a worker needs besides the shared state.
#[derive(Clone, Copy)]
struct WorkerSettings {
    idle_timeout: Duration,
    header_timeout: Duration,
    shutdown_grace: Duration,
    limits: Limits,
    max_connections: usize,
    pin_workers: bool,
    listen_backlog: i32,
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
            access: Access::new(&cfg.admin_key, &cfg.signed_urls),
            live: LiveHub::new(cfg.live.clone(), &cfg.redis.url)
                .map_err(EdgeError::InvalidConfig)?,
        });
        let log_tx = access_log::start(cfg.access_log).map_err(|source| EdgeError::Worker {
            worker: 0,
            what: "start the access-log thread",
            source,
        })?;
        let settings = WorkerSettings {
            idle_timeout: ms(cfg.idle_timeout_ms),
            header_timeout: ms(cfg.header_timeout_ms),
            shutdown_grace: ms(cfg.shutdown_grace_ms),
            limits: Limits {
                max_headers: cfg.max_headers,
                ..Limits::default()
            },
            max_connections: cfg.max_connections_per_worker,
            pin_workers: cfg.pin_workers,
            listen_backlog: i32::try_from(cfg.listen_backlog).unwrap_or(i32::MAX),
        };
        let shutdown = ShutdownHandle::default();
        let mut workers = Vec::with_capacity(cfg.workers);
        let mut addr = cfg.listen;
        let mut driver = Driver::Legacy;
        for id in 0..cfg.workers {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel();
            shutdown.add(stop_tx);
            let shared = Arc::clone(&shared);
            let log = log_tx.clone().map(|tx| WorkerLog::new(tx, cfg.access_log));
            let spawned = std::thread::Builder::new()
                .name(format!("edge-worker-{id}"))
                .spawn(move || worker(id, addr, settings, shared, log, ready_tx, stop_rx));
            let handle = match spawned {
                Ok(h) => h,
                Err(source) => {
                    shutdown.trigger();
                    return Err(EdgeError::Worker {
                        worker: id,
                        what: "spawn thread",
                        source,
                    });
                }
            };
            workers.push(handle);
            match ready_rx.recv() {
                Ok(Ok((bound, d))) => {
                    addr = bound;
                    driver = d;
                }
                Ok(Err(e)) => {
                    shutdown.trigger();
                    return Err(e);
                }
                Err(_) => {
                    shutdown.trigger();
                    return Err(EdgeError::WorkerLost(id));
                }
            }
        }
        shared.metrics.set_driver(driver);
        tracing::info!(
            driver = driver.as_str(),
            workers = cfg.workers,
            origin = shared.origin.kind(),
            disk_tier = shared.disk.is_some(),
            "monoio {} driver on all {} workers",
            driver.as_str(),
            cfg.workers
        );
        tracing::info!("ringcast-edge listening on http://{addr}");
        Ok(Self {
            addr,
            driver,
            shared,
            shutdown,
            workers,
        })
    }

    /// The address every worker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The driver the workers run on.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The process-wide counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Block until every worker has finished (after a shutdown).
    pub fn wait(self) {
        for w in self.workers {
            if w.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
        self.shared.live.close();
        if let Some(disk) = &self.shared.disk {
            if let Err(error) = disk.save_recency() {
                tracing::warn!(%error, "could not save the disk tier's LRU order; the next start uses fill order");
            }
        }
    }

    /// Stop and wait.
    pub fn stop(self) {
        self.shutdown.trigger();
        self.wait();
    }
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

type Ready = mpsc::Sender<Result<(SocketAddr, Driver), EdgeError>>;

/// One worker thread: runtime, listener, accept loop, drain.
fn worker(
    id: usize,
    addr: SocketAddr,
    settings: WorkerSettings,
    shared: Arc<Shared>,
    log: Option<WorkerLog>,
    ready: Ready,
    stop: oneshot::Receiver<()>,
) {
    if settings.pin_workers {
        ringcast_infra::cpu_affinity::pin_worker_or_warn(id);
    }
    let built = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build();
    let mut rt = match built {
        Ok(rt) => rt,
        Err(source) => {
            let _ = ready.send(Err(EdgeError::Worker {
                worker: id,
                what: "build monoio runtime",
                source,
            }));
            return;
        }
    };
    // FusionDriver decides once per process (MONOIO_FORCE_LEGACY_DRIVER, io_uring probe); the
    // built variant is the ground truth.
    let driver = match &rt {
        monoio::FusionRuntime::Uring(_) => Driver::IoUring,
        monoio::FusionRuntime::Legacy(_) => Driver::Legacy,
    };
    rt.block_on(async move {
        let opts = ListenerOpts::new()
            .reuse_port(true)
            .backlog(settings.listen_backlog);
        let listener = match TcpListener::bind_with_config(addr, &opts) {
            Ok(l) => l,
            Err(source) => {
                let _ = ready.send(Err(EdgeError::Worker {
                    worker: id,
                    what: "bind listener",
                    source,
                }));
                return;
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        if ready.send(Ok((bound, driver))).is_err() {
            return;
        }
        drop(ready);
        let ctx = Rc::new(ConnCtx {
            shared,
            limits: settings.limits,
            idle_timeout: settings.idle_timeout,
            header_timeout: settings.header_timeout,
            inflight: Default::default(),
            draining: Default::default(),
            open: Default::default(),
            max_connections: settings.max_connections,
            log,
            worker: id,
        });
        if ctx.log.is_some() {
            monoio::spawn(flush_log_every_second(Rc::clone(&ctx)));
        }
        monoio::select! {
            _ = accept_loop(&listener, &ctx) => {}
            _ = stop => {}
        }
        drop(listener);
        ctx.draining.set(true);
        let started = Instant::now();
        while ctx.inflight.get() > 0 && started.elapsed() < settings.shutdown_grace {
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(log) = &ctx.log {
            log.flush(&ctx.shared.metrics);
        }
        tracing::debug!(worker = id, "worker stopped");
    });
}

/// Hand the worker's buffered access-log lines to the logger thread at least once a second,
/// so a quiet worker's last requests still show up.
async fn flush_log_every_second(ctx: Rc<ConnCtx>) {
    loop {
        monoio::time::sleep(Duration::from_secs(1)).await;
        if let Some(log) = &ctx.log {
            log.flush(&ctx.shared.metrics);
        }
    }
}

async fn accept_loop(listener: &TcpListener, ctx: &Rc<ConnCtx>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                ctx.shared.metrics.connection();
                if ctx.open.get() >= ctx.max_connections {
                    // Answer and close on its own task so accepting never waits on a client.
                    ctx.shared.metrics.connection_rejected();
                    monoio::spawn(connection::reject(stream, Rc::clone(ctx)));
                } else {
                    monoio::spawn(connection::serve(stream, Rc::clone(ctx)));
                }
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                tracing::warn!(error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
