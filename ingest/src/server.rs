//! Process lifecycle: open the spool, the object store and Redis, then serve the ingest's
//! routes on the `ringcast-server` shell (one monoio runtime and `SO_REUSEPORT` listener per
//! worker) until SIGTERM/SIGINT, which stops accepting and lets in-flight requests finish for
//! `shutdown_grace_secs`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::{FusionDriver, RuntimeBuilder};
use ringcast_infra::queue::{Queue, QueueError};
use ringcast_infra::store::{ObjectStore, StoreError};
use ringcast_proto::http::{Limits, RequestHead};
use ringcast_server::{signals, Conn, Handler, Refusal, Response, Server, ServerSettings};
use tracing::Instrument as _;

use crate::app::App;
use crate::config::IngestConfig;
use crate::error::IngestError;
use crate::live::fanout::LiveFanout;
use crate::metrics::Metrics;
use crate::router::{self, CORS_EXPOSE_HEADERS};
use crate::tus::upload_store::UploadStore;

/// How long start-up waits for Redis and the object store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Unread request bodies up to this size are read and dropped to keep the connection; larger
/// ones cost more than a new connection does.
const DRAIN_MAX: u64 = 256 * 1024;

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
    #[error("cannot start the upload expiry sweep: {0}")]
    Sweeper(io::Error),
    #[error(transparent)]
    Start(#[from] ringcast_server::ServerError),
    #[error("a worker thread panicked")]
    WorkerPanicked,
}

/// The ingest on the shell: every request goes to [`router::route`].
struct Ingest {
    app: Arc<App>,
}

impl Handler for Ingest {
    /// Uploads, the progress stream and live pushes and pulls stream their bodies.
    fn needs_http1(&self, req: &RequestHead) -> bool {
        router::needs_http1(req)
    }

    async fn handle(&self, req: &RequestHead, conn: &mut Conn) -> Option<Response> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "request",
            method = req.method.as_str(),
            path = %crate::live::loggable_path(req.path())
        );
        let resp = router::route(&self.app, req, conn)
            .instrument(span.clone())
            .await?;
        span.in_scope(|| {
            tracing::debug!(
                status = resp.status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request done"
            )
        });
        Some(resp)
    }

    fn refuse(&self, why: Refusal) -> Response {
        match why {
            Refusal::BadHead(e) => {
                tracing::debug!(error = %e, "bad request head");
                IngestError::Http(e).to_response()
            }
            other => ringcast_server::default_refusal(other),
        }
    }
}

/// The shell settings from the documented config.
fn settings(config: &IngestConfig) -> ServerSettings {
    let mut s = ServerSettings::new("ingest", config.listen, CORS_EXPOSE_HEADERS);
    s.workers = config.worker_count();
    s.pin_workers = config.pin_workers;
    s.listen_backlog = i32::try_from(config.listen_backlog).unwrap_or(i32::MAX);
    s.idle_timeout = config.idle_timeout();
    s.header_timeout = config.header_timeout();
    s.shutdown_grace = config.shutdown_grace();
    s.drain_delay = std::time::Duration::from_millis(config.drain_delay_ms);
    s.limits = Limits {
        max_headers: config.max_headers,
        ..Limits::default()
    };
    s.max_connections = config.max_connections_per_worker;
    s.drain_max = DRAIN_MAX;
    // Checked by `validated`.
    if let Ok(Some(listen)) = config.tls.listen_addr() {
        s.tls = Some(ringcast_server::tls::TlsSettings {
            listen,
            cert_path: config.tls.cert_file.clone(),
            key_path: config.tls.key_file.clone(),
            ktls: config.tls.ktls,
            http2: config.tls.http2,
        });
    }
    s
}

/// Run the server until SIGTERM/SIGINT. Call it before any other thread exists: the shutdown
/// signals are blocked here so every thread inherits the mask and only the signal thread sees
/// them (otherwise the default action could kill the process from, e.g., the tokio side thread).
pub fn run(config: IngestConfig) -> Result<(), ServerError> {
    signals::block_termination_signals().map_err(ServerError::Signals)?;
    let uploads = UploadStore::open(&config.data_dir, config.uploads.expiry_policy())
        .map_err(|source| ServerError::Spool {
            path: config.data_dir.display().to_string(),
            source,
        })?
        .with_node_tag(&config.node_tag);
    let (store, queue) = connect_backends(&config)?;
    tracing::info!(
        store = store.backend_name(),
        redis = %config.redis.url,
        spool = %uploads.dir().display(),
        max_upload_bytes = config.max_upload_bytes,
        "backends ready"
    );
    crate::auth::warn_if_open(&config.auth);
    crate::tus::hash_placement::set_nice(config.uploads.hash_thread_nice);
    let settings = settings(&config);
    let (live_grace, live_buffer) = (config.live.grace(), config.live.buffer_bytes);
    let app = Arc::new(App {
        config,
        store,
        queue,
        uploads,
        metrics: Metrics::default(),
        live: Arc::new(LiveFanout::new(live_grace, live_buffer)),
    });
    crate::tus::expiry::spawn_sweeper(Arc::clone(&app)).map_err(ServerError::Sweeper)?;
    let stats = Arc::clone(&app.metrics.server);
    let shared = Arc::clone(&app);
    let server = Server::start(settings, stats, move |_| Ingest {
        app: Arc::clone(&shared),
    })?;
    signals::spawn_signal_thread_with_reload(server.shutdown_handle(), server.tls_context())
        .map_err(ServerError::Signals)?;
    if !server.wait() {
        return Err(ServerError::WorkerPanicked);
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
