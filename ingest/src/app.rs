//! The state every ingest handler shares, on every core. Its own module so the handlers (tus,
//! live push, videos API, router) depend on it and not on the server start-up that builds it.

use std::sync::Arc;

use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;

use crate::config::IngestConfig;
use crate::live::fanout::LiveFanout;
use crate::metrics::Metrics;
use crate::tus::upload_store::UploadStore;

/// Everything the handlers share, on every core.
pub struct App {
    pub config: IngestConfig,
    pub store: ObjectStore,
    pub queue: Queue,
    pub uploads: UploadStore,
    pub metrics: Metrics,
    /// Live streams being pushed, shared by every core.
    pub live: Arc<LiveFanout>,
}
