//! Process lifecycle: shared state, one monoio runtime per worker thread (FusionDriver: io_uring,
//! or epoll where io_uring is unavailable), one `SO_REUSEPORT` listener per worker so the kernel
//! balances connections without a shared accept lock, and SIGTERM/SIGINT handling that stops
//! accepting, lets in-flight requests finish for `shutdown_grace_secs`, then exits cleanly.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::net::{ListenerOpts, TcpListener};
use monoio::{FusionDriver, FusionRuntime, RuntimeBuilder};
use ringcast_infra::queue::{Queue, QueueError};
use ringcast_infra::store::{ObjectStore, StoreError};
use ringcast_proto::http::Limits;
use tokio::sync::{oneshot, watch};

use crate::config::IngestConfig;
use crate::connection;
use crate::live_hub::LiveHub;
use crate::metrics::Metrics;
use crate::upload_store::UploadStore;

/// How long start-up waits for Redis and the object store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the handlers share, on every core.
pub struct App {
    pub config: IngestConfig,
    pub store: ObjectStore,
    pub queue: Queue,
    pub uploads: UploadStore,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Live streams being pushed, shared by every core.
    pub live: Arc<LiveHub>,
}

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot set up signal handling: {0}")]
    Signals(io::Error),
    #[error("cannot open the spool directory {path}: {source}")]
    Spool { path: String, source: io::Error },
    #[error("cannot open the object store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot connect to Redis: {0}")]
    Queue(#[from] QueueError),
    #[error("{0} did not answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout(&'static str),
    #[error("cannot start a monoio runtime: {0}")]
    Runtime(io::Error),
    #[error("worker {worker}: {message}")]
    Worker { worker: usize, message: String },
}

/// Run the server until SIGTERM/SIGINT. Call it before any other thread exists: the shutdown
/// signals are blocked here so every thread inherits the mask and only the signal thread sees
/// them (otherwise the default action could kill the process from, e.g., the tokio side thread).
pub fn run(config: IngestConfig) -> Result<(), ServerError> {
    let signals = block_shutdown_signals().map_err(ServerError::Signals)?;
    let uploads = UploadStore::open(&config.data_dir).map_err(|source| ServerError::Spool {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let (store, queue) = connect_backends(&config)?;
    tracing::info!(
        store = store.backend_name(),
        redis = %config.redis.url,
        spool = %uploads.dir().display(),
        max_upload_bytes = config.max_upload_bytes,
        "backends ready"
    );
    let workers = config.worker_count();
    let listen = config.listen;
    let (live_grace, live_buffer) = (config.live.grace(), config.live.buffer_bytes);
    let app = Arc::new(App {
        config,
        store,
        queue,
        uploads,
        metrics: Metrics::default(),
        limits: Limits::default(),
        live: Arc::new(LiveHub::new(live_grace, live_buffer)),
    });

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(workers);
    // Worker 0 binds first: with port 0 it picks the port the others then share.
    let mut addr = listen;
    for idx in 0..workers {
        match spawn_worker(idx, Arc::clone(&app), addr, shutdown_rx.clone()) {
            Ok((handle, bound)) => {
                addr = bound;
                handles.push(handle);
            }
            Err(e) => {
                let _ = shutdown_tx.send(true);
                join_all(handles);
                return Err(e);
            }
        }
    }
    tracing::info!(workers, "ringcast-ingest listening on http://{addr}");

    std::thread::Builder::new()
        .name("ingest-signals".into())
        .spawn(move || wait_for_signals(signals, shutdown_tx))
        .map_err(ServerError::Signals)?;
    if let Some((worker, message)) = join_all(handles).into_iter().next() {
        return Err(ServerError::Worker { worker, message });
    }
    tracing::info!("ringcast-ingest stopped");
    Ok(())
}

/// Open the object store and Redis on a short-lived runtime (both run their I/O on the tokio
/// side runtime; this one only awaits them).
fn connect_backends(config: &IngestConfig) -> Result<(ObjectStore, Queue), ServerError> {
    let mut rt = RuntimeBuilder::<FusionDriver>::new()
        .enable_timer()
        .build()
        .map_err(ServerError::Runtime)?;
    rt.block_on(async {
        let store = monoio::time::timeout(CONNECT_TIMEOUT, ObjectStore::open(&config.store))
            .await
            .map_err(|_| ServerError::ConnectTimeout("the object store"))??;
        let queue = monoio::time::timeout(CONNECT_TIMEOUT, Queue::connect(&config.redis.url))
            .await
            .map_err(|_| ServerError::ConnectTimeout("Redis"))??;
        Ok((store, queue))
    })
}

/// Start worker `idx` and wait until its listener is bound (or it failed).
fn spawn_worker(
    idx: usize,
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> Result<(JoinHandle<Result<(), String>>, SocketAddr), ServerError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("ingest-{idx}"))
        .spawn(move || worker_main(idx, app, addr, shutdown, ready_tx))
        .map_err(ServerError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(bound)) => Ok((handle, bound)),
        Ok(Err(message)) => {
            let _ = handle.join();
            Err(ServerError::Worker {
                worker: idx,
                message,
            })
        }
        Err(_) => {
            let message = match handle.join() {
                Ok(Err(m)) => m,
                _ => "worker thread died during start-up".to_string(),
            };
            Err(ServerError::Worker {
                worker: idx,
                message,
            })
        }
    }
}

/// Wait for every worker; the index and error message of those that failed.
fn join_all(handles: Vec<JoinHandle<Result<(), String>>>) -> Vec<(usize, String)> {
    handles
        .into_iter()
        .enumerate()
        .filter_map(|(idx, h)| match h.join() {
            Ok(Ok(())) => None,
            Ok(Err(m)) => Some((idx, m)),
            Err(_) => Some((idx, "worker thread panicked".to_string())),
        })
        .collect()
}

type Ready = mpsc::Sender<Result<SocketAddr, String>>;

fn worker_main(
    idx: usize,
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
    ready: Ready,
) -> Result<(), String> {
    if app.config.pin_workers {
        ringcast_infra::cpu_affinity::pin_worker_or_warn(idx);
    }
    let rt = RuntimeBuilder::<FusionDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"));
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(m) => {
            let _ = ready.send(Err(m.clone()));
            return Err(m);
        }
    };
    let uring = matches!(rt, FusionRuntime::Uring(_));
    rt.block_on(worker(idx, app, addr, uring, shutdown, ready))
}

async fn worker(
    idx: usize,
    app: Arc<App>,
    addr: SocketAddr,
    uring: bool,
    shutdown: watch::Receiver<bool>,
    ready: Ready,
) -> Result<(), String> {
    let driver = if uring { "io_uring" } else { "legacy" };
    // Bound inside the runtime: the listener registers with this core's driver.
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(1024);
    let listener = match TcpListener::bind_with_config(addr, &opts) {
        Ok(l) => l,
        Err(e) => {
            let m = format!("cannot listen on {addr}: {e}");
            let _ = ready.send(Err(m.clone()));
            return Err(m);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    app.metrics.worker_started(uring);
    tracing::info!(worker = idx, driver, addr = %bound, "worker ready");
    let _ = ready.send(Ok(bound));

    // Each connection task holds a clone of `alive`; when the last one is dropped the receiver
    // resolves, which is how the drain below knows every connection has ended.
    let (alive_tx, all_closed) = oneshot::channel::<()>();
    let alive = Rc::new(alive_tx);
    let mut stop = shutdown.clone();
    loop {
        monoio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (app, shutdown, alive) = (Arc::clone(&app), shutdown.clone(), Rc::clone(&alive));
                    monoio::spawn(async move {
                        connection::serve(app, stream, peer, shutdown).await;
                        drop(alive);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning on the error.
                    tracing::warn!(worker = idx, error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    drop(alive);
    let grace = app.config.shutdown_grace();
    tracing::info!(worker = idx, "draining connections");
    if monoio::time::timeout(grace, all_closed).await.is_err() {
        tracing::warn!(
            worker = idx,
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    Ok(())
}

/// Block SIGINT and SIGTERM in this thread (and so in every thread spawned after it).
fn block_shutdown_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: `set` is a plain C struct initialised by sigemptyset before any other use;
    // pthread_sigmask only reads it and changes this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

/// The signal thread: the first SIGTERM/SIGINT starts a graceful shutdown, a second one exits
/// at once (an operator who presses Ctrl-C twice means it).
fn wait_for_signals(set: libc::sigset_t, shutdown: watch::Sender<bool>) {
    let mut first = true;
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` was initialised by block_shutdown_signals; `sig` is a valid out-pointer.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc != 0 {
            tracing::error!(error = %io::Error::from_raw_os_error(rc), "sigwait failed");
            return;
        }
        if first {
            first = false;
            tracing::info!(signal = sig, "shutdown requested; draining");
            let _ = shutdown.send(true);
        } else {
            tracing::warn!(signal = sig, "second signal; exiting now");
            std::process::exit(130);
        }
    }
}
