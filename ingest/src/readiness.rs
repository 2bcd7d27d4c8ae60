//! `GET|HEAD /readyz` of the ingest, in the shape every service shares
//! (`ringcast_proto::health`): Redis answers `PING`, the object store answers a `HEAD`, and
//! the process is not draining (503 during the drain delay after the first SIGTERM, so a load
//! balancer or the edge's front door stops sending uploads before the listener closes).

use ringcast_infra::health;
use ringcast_proto::health::Readiness;
use ringcast_server::Response;

use crate::app::App;

/// Run the checks (each bounded by `ringcast_infra::health::CHECK_TIMEOUT`).
pub async fn readiness(app: &App, draining: bool) -> Readiness {
    Readiness::new("ingest")
        .check("redis", health::queue(&app.queue).await)
        .check("store", health::store(&app.store).await)
        .draining(draining)
}

/// The `/readyz` response.
pub async fn respond(app: &App, draining: bool) -> Response {
    let r = readiness(app, draining).await;
    if !r.is_ready() {
        tracing::warn!(status = r.verdict(), problems = %r.problems(), "not ready");
    }
    Response::json(r.http_status(), &r.to_json()).header("Cache-Control", "no-store")
}
