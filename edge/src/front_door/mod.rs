//! The front door: the edge as the one address for everything. With `[front_door] nodes` set,
//! `/files`, `/files/…`, `/v1/…` and `/live/…` go to a pool of ingest nodes; everything else
//! stays the edge's own (playback, purge, health, metrics).
//!
//! - Which node: [`ringcast_proto::front_door::route`] (a tagged upload id → its node, never
//!   another; a live key → rendezvous hash; the rest → least connections among healthy nodes).
//! - Health: [`crate::nodes::health`] threads check every node each `health_interval_ms`; a failed connection
//!   marks a node down at once.
//! - Moving bytes: [`proxy`] streams both ways, re-framing every message
//!   ([`ringcast_proto::front_door::headers`]).
//! - Abuse: [`limits`] token buckets per client address and per API key → 429.
//! - Per-node metrics: [`FrontDoor::render_metrics`].

pub mod config;
pub mod error;
pub mod limits;
pub mod proxy;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use ringcast_proto::http::RequestHead;
use ringcast_proto::prometheus::{Kind, Writer};
use ringcast_server::{Conn, Response};

use self::config::FrontDoorConfig;
use self::limits::RateLimits;
pub use self::proxy::Upstreams;
use crate::nodes::health::HealthChecks;
use crate::nodes::pool::Pool;

/// The front door every worker shares.
pub struct FrontDoor {
    pub pool: Arc<Pool>,
    limits: Option<RateLimits>,
    health: HealthChecks,
    health_interval: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
    idle_timeout: Duration,
    pooled_per_node: usize,
}

/// Whether the front door answers this path (when it is configured).
pub fn handles(req: &RequestHead) -> bool {
    ringcast_proto::front_door::route::is_front_door_path(req.path())
}

impl FrontDoor {
    /// Resolve the nodes and start their health checks; `None` when no node is configured.
    pub fn start(cfg: &FrontDoorConfig) -> Result<Option<Self>, String> {
        if !cfg.enabled() {
            return Ok(None);
        }
        cfg.check()?;
        let ms = Duration::from_millis;
        let nodes = cfg.nodes.iter().map(|n| (n.tag.as_str(), n.url.as_str()));
        let pool = Arc::new(Pool::new("ingest node", nodes)?);
        let health = HealthChecks::start(
            &pool,
            &cfg.health_path,
            ms(cfg.health_interval_ms),
            ms(cfg.health_timeout_ms),
        );
        let tags: Vec<&str> = cfg.nodes.iter().map(|n| n.tag.as_str()).collect();
        tracing::info!(nodes = ?tags, rate_limit = cfg.rate_limit.enabled, "front door to the ingest pool");
        Ok(Some(Self {
            pool,
            limits: cfg
                .rate_limit
                .enabled
                .then(|| RateLimits::new(&cfg.rate_limit)),
            health,
            health_interval: ms(cfg.health_interval_ms),
            connect_timeout: ms(cfg.connect_timeout_ms),
            response_timeout: ms(cfg.response_timeout_ms),
            idle_timeout: ms(cfg.idle_timeout_ms),
            pooled_per_node: cfg.pooled_connections_per_node,
        }))
    }

    /// A worker's idle-connection pool.
    pub fn upstreams(&self) -> Upstreams {
        Upstreams::new(self.pool.nodes.len(), self.pooled_per_node)
    }

    /// Answer one front-door request: rate limits, then the pool.
    pub async fn handle(
        &self,
        upstreams: &Upstreams,
        req: &RequestHead,
        conn: &mut Conn,
    ) -> Option<Response> {
        if let Some(limits) = &self.limits {
            if let Err(refused) = limits.check(conn.peer_ip(), req.header("authorization")) {
                let mut resp = Response::error(&refused);
                // The body (if any) stays unread: the connection closes after the answer.
                resp.close = conn.body_remaining() != Some(0);
                return Some(resp);
            }
        }
        let mut resp = proxy::forward(self, upstreams, req, conn).await?;
        if !resp.sent && conn.body_remaining() != Some(0) {
            resp.close = true;
        }
        Some(resp)
    }

    /// `Retry-After` when a node is missing: one health interval (whole seconds, at least 1).
    fn retry_after_secs(&self) -> u64 {
        self.health_interval.as_millis().div_ceil(1000).max(1) as u64
    }

    /// Stop the health checks (at shutdown).
    pub fn stop(&self) {
        self.health.stop();
    }

    /// Per-node and rate-limit series for `/metrics`.
    pub fn render_metrics(&self, w: &mut Writer) {
        self.pool.render_metrics(w, "ringcast_edge_front_door");
        if let Some(l) = &self.limits {
            let name = "ringcast_edge_front_door_rate_limited_total";
            w.family(name, "Requests refused with 429, by limit.", Kind::Counter);
            w.sample(
                name,
                &[("by", "address")],
                l.refused_by_address.load(Relaxed),
            );
            w.sample(name, &[("by", "key")], l.refused_by_key.load(Relaxed));
            let (addresses, keys) = l.tracked();
            let name = "ringcast_edge_front_door_rate_limit_entries";
            w.family(name, "Buckets tracked by the rate limits.", Kind::Gauge);
            w.sample(name, &[("by", "address")], addresses);
            w.sample(name, &[("by", "key")], keys);
        }
    }
}
