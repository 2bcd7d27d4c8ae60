//! Thread-per-core serving: one `std::thread` per worker, each with its own monoio runtime
//! (FusionDriver: io_uring where the kernel allows it, epoll otherwise) and its own
//! `SO_REUSEPORT` listener, so the kernel spreads connections over workers and nothing on the
//! request path is shared but what the handler shares and the counters.
//!
//! Start-up is sequential on purpose: worker 0 binds the configured address and reports the
//! address it got (port 0 becomes a real port); the other workers bind that address, so every
//! listener shares one port. The server is "ready" only once every worker has bound.
//!
//! Shutdown: [`ShutdownHandle::trigger`] wakes every worker; a worker stops accepting, lets
//! in-flight requests finish within the grace period, calls [`Handler::on_stop`] and returns
//! (idle keep-alive connections are dropped with its runtime).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};

use crate::connection;
use crate::handler::{Handler, WorkerInfo};
use crate::worker::Worker;
use crate::{Driver, ServerError, ServerSettings, ServerStats, ShutdownHandle};

/// A running server.
pub struct Server {
    addr: SocketAddr,
    driver: Driver,
    shutdown: ShutdownHandle,
    workers: Vec<JoinHandle<()>>,
}

type Ready = mpsc::Sender<Result<(SocketAddr, Driver), ServerError>>;

impl Server {
    /// Start `settings.workers` workers, each serving with the handler `make` builds on its
    /// thread; return once all listen. `stats` receives the shell's counters.
    pub fn start<H, F>(
        settings: ServerSettings,
        stats: Arc<ServerStats>,
        make: F,
    ) -> Result<Self, ServerError>
    where
        H: Handler,
        F: Fn(WorkerInfo) -> H + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let shutdown = ShutdownHandle::default();
        shutdown.set_drain_delay(settings.drain_delay);
        let mut workers = Vec::with_capacity(settings.workers);
        let mut settings = settings;
        let mut driver = Driver::Legacy;
        for id in 0..settings.workers.max(1) {
            let (ready_tx, ready_rx) = mpsc::channel();
            let stop = shutdown.subscribe();
            let (s, stats, make) = (settings.clone(), Arc::clone(&stats), Arc::clone(&make));
            let handle = shutdown.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-worker-{id}", settings.name))
                .spawn(move || worker(id, s, stats, &*make, ready_tx, (stop, handle)));
            let handle = match spawned {
                Ok(h) => h,
                Err(source) => {
                    stop_all(&shutdown, workers);
                    return Err(ServerError::Worker {
                        worker: id,
                        what: "spawn thread",
                        source,
                    });
                }
            };
            workers.push(handle);
            match ready_rx.recv() {
                Ok(Ok((bound, d))) => {
                    settings.listen = bound;
                    driver = d;
                }
                Ok(Err(e)) => {
                    stop_all(&shutdown, workers);
                    return Err(e);
                }
                Err(_) => {
                    stop_all(&shutdown, workers);
                    return Err(ServerError::WorkerLost(id));
                }
            }
        }
        tracing::info!(
            driver = driver.as_str(),
            workers = settings.workers,
            "monoio {} driver on all {} workers",
            driver.as_str(),
            settings.workers
        );
        tracing::info!(
            "ringcast-{} listening on http://{}",
            settings.name,
            settings.listen
        );
        Ok(Self {
            addr: settings.listen,
            driver,
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

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Block until every worker has finished (after a shutdown). `false` if one panicked.
    pub fn wait(self) -> bool {
        let mut clean = true;
        for w in self.workers {
            if w.join().is_err() {
                tracing::error!("a worker thread panicked");
                clean = false;
            }
        }
        clean
    }

    /// Stop and wait.
    pub fn stop(self) -> bool {
        self.shutdown.trigger();
        self.wait()
    }
}

/// Start-up failed: stop the workers already running and wait for them, so the caller gets
/// its error with no thread left behind.
fn stop_all(shutdown: &ShutdownHandle, workers: Vec<JoinHandle<()>>) {
    shutdown.trigger();
    for w in workers {
        let _ = w.join();
    }
}

/// One worker thread: runtime, listener, accept loop, drain.
fn worker<H: Handler>(
    id: usize,
    settings: ServerSettings,
    stats: Arc<ServerStats>,
    make: &(dyn Fn(WorkerInfo) -> H + Send + Sync),
    ready: Ready,
    (stop, shutdown): (futures_channel::oneshot::Receiver<()>, ShutdownHandle),
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
            let _ = ready.send(Err(ServerError::Worker {
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
            .reuse_addr(true)
            .backlog(settings.listen_backlog);
        let listener = match TcpListener::bind_with_config(settings.listen, &opts) {
            Ok(l) => l,
            Err(source) => {
                let _ = ready.send(Err(ServerError::Worker {
                    worker: id,
                    what: "bind listener",
                    source,
                }));
                return;
            }
        };
        let bound = listener.local_addr().unwrap_or(settings.listen);
        let handler = Rc::new(make(WorkerInfo { id, driver }));
        stats.worker_started(driver);
        tracing::debug!(worker = id, driver = driver.as_str(), addr = %bound, "worker ready");
        if ready.send(Ok((bound, driver))).is_err() {
            return;
        }
        drop(ready);
        let grace = settings.shutdown_grace;
        let w = Rc::new(Worker {
            settings,
            stats,
            inflight: Default::default(),
            draining: Default::default(),
            shutdown,
            open: Default::default(),
        });
        monoio::select! {
            _ = accept_loop(&listener, &w, &handler) => {}
            _ = stop => {}
        }
        drop(listener);
        w.draining.set(true);
        let started = Instant::now();
        while w.inflight.get() > 0 && started.elapsed() < grace {
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
        if w.inflight.get() > 0 {
            tracing::warn!(
                worker = id,
                ?grace,
                "requests still in flight after the grace period; closing them"
            );
        }
        handler.on_stop();
        tracing::debug!(worker = id, "worker stopped");
    });
}

async fn accept_loop<H: Handler>(listener: &TcpListener, w: &Rc<Worker>, handler: &Rc<H>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                w.stats.connection();
                let (w, h) = (Rc::clone(w), Rc::clone(handler));
                if w.open.get() >= w.settings.max_connections {
                    // Answer and close on its own task so accepting never waits on a client.
                    w.stats.connection_rejected();
                    monoio::spawn(connection::reject(stream, w, h));
                } else {
                    monoio::spawn(connection::serve(stream, w, h));
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
