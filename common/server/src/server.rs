//! Thread-per-core serving: one `std::thread` per worker, each with its own monoio runtime
//! (FusionDriver: io_uring where the kernel allows it, epoll otherwise) and its own
//! `SO_REUSEPORT` listener, so the kernel spreads connections over workers and nothing on the
//! request path is shared but what the handler shares and the counters.
//!
//! Start-up is sequential on purpose: worker 0 binds the configured address and reports the
//! address it got (port 0 becomes a real port); the other workers bind that address, so every
//! listener shares one port. The server is "ready" only once every worker has bound.
//!
//! TLS ([`crate::tls`]): with `settings.tls`, every worker also binds the TLS address the same
//! way (worker 0 first) and accepts on both listeners; the config is loaded before any worker
//! starts, so a bad certificate stops the start-up with its reason.
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
use crate::tls::TlsContext;
use crate::worker::Worker;
use crate::{Driver, ServerError, ServerSettings, ServerStats, ShutdownHandle};

/// A running server.
pub struct Server {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    tls: Option<Arc<TlsContext>>,
    driver: Driver,
    shutdown: ShutdownHandle,
    workers: Vec<JoinHandle<()>>,
}

/// What a worker reports once it listens: the plain address, the TLS one, its driver.
type Ready = mpsc::Sender<Result<(SocketAddr, Option<SocketAddr>, Driver), ServerError>>;

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
        let tls = match &settings.tls {
            Some(t) => Some(Arc::new(TlsContext::load(t.clone())?)),
            None => None,
        };
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
            let tls = tls.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-worker-{id}", settings.name))
                .spawn(move || worker(id, s, stats, tls, &*make, ready_tx, (stop, handle)));
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
                Ok(Ok((bound, tls_bound, d))) => {
                    settings.listen = bound;
                    if let (Some(t), Some(b)) = (settings.tls.as_mut(), tls_bound) {
                        t.listen = b;
                    }
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
        let tls_addr = settings.tls.as_ref().map(|t| t.listen);
        if let Some(addr) = tls_addr {
            tracing::info!(
                ktls = settings.tls.as_ref().is_some_and(|t| t.ktls),
                "ringcast-{} listening on https://{addr}",
                settings.name
            );
        }
        Ok(Self {
            addr: settings.listen,
            tls_addr,
            tls,
            driver,
            shutdown,
            workers,
        })
    }

    /// The address every worker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the TLS listener, if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The live TLS config (to reload it, e.g. on SIGHUP), if TLS is on.
    pub fn tls_context(&self) -> Option<Arc<TlsContext>> {
        self.tls.clone()
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

/// A worker's runtime (io_uring or epoll, with timers).
type WorkerRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// The worker's runtime: io_uring when the kernel allows it (else epoll), with io_uring's task
/// work deferred to the worker's own waits where the kernel has it.
///
/// Why not plain io_uring: every completion that arrives while the worker runs user code (a
/// client's request landing on a socket, from the softirq of another core) then interrupts the
/// worker with a reschedule IPI to run io_uring's task work at once. Under an LL-HLS herd that
/// was ≈ 5 % of the edge worker's CPU (`asm_sysvec_reschedule_ipi` in perf,
/// docs/BENCHMARKS.md "LL-HLS herd cost").
///
/// First choice, `DEFER_TASKRUN | SINGLE_ISSUER` (Linux 6.1): task work is queued on the ring
/// and run only when the worker waits for completions (`io_uring_enter` with `GETEVENTS`, which
/// monoio makes whenever its run queue is empty), in one batch. With `COOP_TASKRUN` alone the
/// same work ran at the exit of whatever system call the worker made next (half of it after the
/// `sendfile` of a live part, through the signal path), one small batch per call. monoio makes
/// every submission from the worker's own thread, which `SINGLE_ISSUER` requires; a submit
/// without `GETEVENTS` (monoio's "cold path", with tasks still runnable) posts no completions,
/// and they are reaped at the next park, as soon as the run queue empties.
/// Second choice, `COOP_TASKRUN | TASKRUN_FLAG` (5.19): the task work runs at the worker's next
/// system call, no IPI. Older kernels refuse both: then the ring is built without flags.
///
/// Also returns whether receives may carry `IORING_RECVSEND_POLL_FIRST`: a ring that took
/// either flag set runs on Linux ≥ 5.19, which has it (an older kernel refuses a receive SQE
/// with any ioprio bit set).
fn build_runtime() -> std::io::Result<(WorkerRuntime, bool)> {
    let mut deferred = io_uring::IoUring::builder();
    deferred.setup_defer_taskrun().setup_single_issuer();
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun().setup_taskrun_flag();
    for (name, flags) in [("DEFER_TASKRUN", deferred), ("COOP_TASKRUN", coop)] {
        let built = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .uring_builder(flags)
            .build();
        match built {
            Ok(rt) => {
                let uring = matches!(rt, monoio::FusionRuntime::Uring(_));
                return Ok((rt, uring));
            }
            Err(e) => {
                tracing::debug!(error = %e, flags = name, "io_uring refused these setup flags")
            }
        }
    }
    let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok((rt, false))
}

/// One worker thread: runtime, listener, accept loop, drain.
fn worker<H: Handler>(
    id: usize,
    settings: ServerSettings,
    stats: Arc<ServerStats>,
    tls: Option<Arc<TlsContext>>,
    make: &(dyn Fn(WorkerInfo) -> H + Send + Sync),
    ready: Ready,
    (stop, shutdown): (futures_channel::oneshot::Receiver<()>, ShutdownHandle),
) {
    if settings.pin_workers {
        ringcast_infra::cpu_affinity::pin_worker_or_warn(id);
    }
    if settings.batch_workers {
        if let Err(e) = ringcast_infra::sched_policy::set_current_thread_batch() {
            tracing::warn!(worker = id, error = %e, "worker stays under SCHED_OTHER");
        }
    }
    let built = build_runtime();
    let (mut rt, recv_poll_first) = match built {
        Ok(built) => built,
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
        let tls_listener = match &settings.tls {
            Some(t) => match TcpListener::bind_with_config(t.listen, &opts) {
                Ok(l) => Some(l),
                Err(source) => {
                    let _ = ready.send(Err(ServerError::Worker {
                        worker: id,
                        what: "bind TLS listener",
                        source,
                    }));
                    return;
                }
            },
            None => None,
        };
        let tls_bound = tls_listener
            .as_ref()
            .map(|l| l.local_addr().unwrap_or(settings.listen));
        let handler = Rc::new(make(WorkerInfo { id, driver }));
        stats.worker_started(driver);
        tracing::debug!(worker = id, driver = driver.as_str(), addr = %bound, "worker ready");
        if ready.send(Ok((bound, tls_bound, driver))).is_err() {
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
            recv_poll_first,
        });
        let tls_accept = async {
            match (&tls_listener, &tls) {
                (Some(l), Some(ctx)) => accept_loop(l, &w, &handler, Some(ctx)).await,
                _ => std::future::pending().await,
            }
        };
        monoio::select! {
            _ = accept_loop(&listener, &w, &handler, None) => {}
            _ = tls_accept => {}
            _ = stop => {}
        }
        drop(listener);
        drop(tls_listener);
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

/// Accept on one listener (`tls`: the TLS listener, connections handshake first).
async fn accept_loop<H: Handler>(
    listener: &TcpListener,
    w: &Rc<Worker>,
    handler: &Rc<H>,
    tls: Option<&Arc<TlsContext>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                w.stats.connection();
                let (w, h) = (Rc::clone(w), Rc::clone(handler));
                if let Some(ctx) = tls {
                    if w.open.get() >= w.settings.max_connections {
                        // No plaintext 503 on a TLS port, and no handshake spent on it under
                        // overload: the connection is closed at once.
                        w.stats.connection_rejected();
                        drop(stream);
                    } else {
                        let ctx = Arc::clone(ctx);
                        monoio::spawn(crate::tls::accept::serve_tls(stream, w, h, ctx));
                    }
                } else if w.open.get() >= w.settings.max_connections {
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
