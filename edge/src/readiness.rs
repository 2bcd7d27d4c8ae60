//! `GET|HEAD /readyz` of the edge, in the shape every service shares
//! (`ringcast_proto::health`): the origin answers (a probe key fetched from the store,
//! directory or HTTP origin: found or not found both pass), Redis answers `PING` when live or
//! the platform use it, and the process is not draining (503 during the drain delay after the
//! first SIGTERM). `/healthz` stays the plain liveness answer of [`crate::routes`].

use std::time::Duration;

use ringcast_infra::health::{RedisPing, CHECK_TIMEOUT, STORE_PROBE_KEY};
use ringcast_proto::health::Readiness;

use crate::response::Response;
use crate::shared::Shared;

/// What `/readyz` checks besides the origin (built once at start-up).
#[derive(Clone, Default)]
pub struct ReadinessChecks {
    /// Redis, when live or the platform use it.
    redis: Option<RedisPing>,
}

impl ReadinessChecks {
    /// Checks for an edge that uses Redis (`uses_redis`) at `redis_url` or not.
    pub fn new(uses_redis: bool, redis_url: &str) -> Result<Self, String> {
        let redis = if uses_redis {
            Some(RedisPing::new(redis_url).map_err(|e| format!("redis.url: {e}"))?)
        } else {
            None
        };
        Ok(Self { redis })
    }

    /// Run every check; `draining` comes from the connection (the server shell).
    pub async fn readiness(&self, shared: &Shared, draining: bool) -> Readiness {
        let origin = match monoio::time::timeout(
            CHECK_TIMEOUT + Duration::from_millis(100),
            shared.origin.fetch(STORE_PROBE_KEY),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        let mut r = Readiness::new("edge")
            .check("origin", origin)
            .draining(draining);
        if let Some(redis) = &self.redis {
            r = r.check("redis", redis.check().await);
        }
        r
    }

    /// The `/readyz` response.
    pub async fn respond(&self, shared: &Shared, draining: bool) -> Response {
        let r = self.readiness(shared, draining).await;
        if !r.is_ready() {
            tracing::warn!(status = r.verdict(), problems = %r.problems(), "not ready");
        }
        Response::json(r.http_status(), &r.to_json()).header("Cache-Control", "no-store")
    }
}
