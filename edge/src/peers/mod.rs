//! The edge tier: several edges in front of one store, each object owned by one of them.
//!
//! Every edge of the tier has the same `[peers] nodes` list. An object key's owner is the
//! healthy edge that wins the rendezvous hash of the key
//! ([`ringcast_proto::front_door::route::choose`] with a keyed target), so every edge agrees on
//! it without talking, and a dead edge's keys (only those) move to the others.
//!
//! - A miss on an edge that does not own the key asks the owner, `GET /_peer/v/…` with the
//!   tier's secret in `Ringcast-Peer`, instead of the store. The owner answers from its tiers or
//!   fetches the store once (its cache coalesces every edge's misses), so M requests for an
//!   object spread over N edges cost one store fetch.
//! - A request from a peer is never forwarded again ([`crate::routes`] looks it up without the
//!   tier), so loops are impossible even while edges disagree about who is up.
//! - An owner that cannot be reached or does not answer within `fetch_timeout_ms` is marked
//!   down at once and the edge asks the store itself; health checks every
//!   `health_interval_ms` bring it back ([`crate::nodes::health`]).
//! - Purges reach every edge through the fleet purge channel and live events through each
//!   edge's own Redis subscriptions; the tier only moves objects.

pub mod config;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ringcast_proto::front_door::route::Target;
use ringcast_proto::prometheus::{Kind, Writer};
use ringcast_proto::secret::constant_time_eq;

use crate::nodes::health::HealthChecks;
use crate::nodes::pool::{InFlight, Pool};
use crate::origin::http::{HttpOrigin, OriginError};

use self::config::PeersConfig;

/// Path prefix of the requests peers send each other (`/_peer/v/{id}/…`).
pub const PATH_PREFIX: &str = "/_peer/";
/// The header that carries the tier's secret.
pub const SECRET_HEADER: &str = "Ringcast-Peer";

/// The tier as every worker of this edge sees it.
pub struct Peers {
    pool: Arc<Pool>,
    /// This edge's index in `pool.nodes`.
    me: usize,
    /// A client per node (`http://{node}/_peer`), `None` for this edge.
    clients: Vec<Option<HttpOrigin>>,
    secret: String,
    health: HealthChecks,
    fetch_timeout: Duration,
    /// Requests this edge answered for its peers.
    pub served: AtomicU64,
    /// Peer requests refused for a missing or wrong secret.
    pub refused: AtomicU64,
}

/// What asking the owner gave.
pub enum Fetched {
    /// The owner answered: the object, or `None` for "no such object".
    Answer(Option<Bytes>),
    /// The owner is unreachable or failed: ask the origin instead.
    Fallback,
}

impl Peers {
    /// Resolve the peers and start their health checks; `None` when the tier is off.
    pub fn start(cfg: &PeersConfig) -> Result<Option<Self>, String> {
        if !cfg.enabled() {
            return Ok(None);
        }
        cfg.check()?;
        let nodes = cfg.nodes.iter().map(|n| (n.tag.as_str(), n.url.as_str()));
        let pool = Arc::new(Pool::new("peer edge", nodes)?);
        let me = pool
            .nodes
            .iter()
            .position(|n| n.tag == cfg.self_tag)
            .ok_or("peers.self_tag is not in peers.nodes")?;
        let clients = cfg
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i == me {
                    return Ok(None);
                }
                let base = format!("{}/_peer", n.url.trim_end_matches('/'));
                HttpOrigin::parse(&base)
                    .map(|c| Some(c.with_header(SECRET_HEADER, &cfg.secret)))
                    .map_err(|e| format!("peers node {}: {e}", n.tag))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let ms = Duration::from_millis;
        let health = HealthChecks::start(
            &pool,
            "/healthz",
            ms(cfg.health_interval_ms),
            ms(cfg.health_timeout_ms),
        );
        let tags: Vec<&str> = cfg.nodes.iter().map(|n| n.tag.as_str()).collect();
        tracing::info!(nodes = ?tags, me = %cfg.self_tag, "edge tier");
        Ok(Some(Self {
            pool,
            me,
            clients,
            secret: cfg.secret.clone(),
            health,
            fetch_timeout: ms(cfg.fetch_timeout_ms),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }))
    }

    /// The node that owns `key` when it is another edge (that is up); `None` when this edge owns
    /// it or no other edge is usable.
    pub fn owner(&self, key: &str) -> Option<usize> {
        self.pool
            .choose(Target::Keyed(key), &[], false)
            .filter(|&i| i != self.me)
    }

    /// Ask node `i` for `key`, within `fetch_timeout_ms`.
    pub async fn fetch(&self, i: usize, key: &str) -> Fetched {
        let (Some(client), Some(node)) = (&self.clients[i], self.pool.nodes.get(i)) else {
            return Fetched::Fallback;
        };
        let _in_flight = InFlight::new(node);
        let why = match monoio::time::timeout(self.fetch_timeout, client.fetch(key)).await {
            Ok(Ok(got)) => return Fetched::Answer(got),
            Ok(Err(OriginError::Status(status))) => {
                // It answered, so it is up; its own origin failed or it refused us (a secret
                // that differs between edges is a config error worth a warning).
                node.errors.fetch_add(1, Relaxed);
                tracing::warn!(peer = %node.tag, key, status, "peer answered an error; asking the origin");
                return Fetched::Fallback;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_elapsed) => "timed out".to_string(),
        };
        node.errors.fetch_add(1, Relaxed);
        node.connect_failures.fetch_add(1, Relaxed);
        node.set_healthy(false, &why);
        Fetched::Fallback
    }

    /// Whether a request's `Ringcast-Peer` value is the tier's secret (constant time). An
    /// accepted request counts as served whatever its outcome (a 404 is an answer too), so
    /// `served` is the load the tier puts on this edge, not its hit count.
    pub fn authenticate(&self, presented: Option<&str>) -> bool {
        let ok = presented.is_some_and(|p| constant_time_eq(p.as_bytes(), self.secret.as_bytes()));
        if ok {
            self.served.fetch_add(1, Relaxed);
        } else {
            self.refused.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Stop the health checks (at shutdown).
    pub fn stop(&self) {
        self.health.stop();
    }

    /// Per-peer and served series for `/metrics`.
    pub fn render_metrics(&self, w: &mut Writer) {
        self.pool.render_metrics(w, "ringcast_edge_peer");
        for (name, help, value) in [
            (
                "ringcast_edge_peer_served_total",
                "Peer requests this edge accepted and answered for the other edges of its tier, whatever the status.",
                &self.served,
            ),
            (
                "ringcast_edge_peer_refused_total",
                "Peer requests refused for a missing or wrong Ringcast-Peer secret.",
                &self.refused,
            ),
        ] {
            w.family(name, help, Kind::Counter);
            w.sample(name, &[], value.load(Relaxed));
        }
    }
}
