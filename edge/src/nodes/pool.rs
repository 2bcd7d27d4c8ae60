//! A set of HTTP nodes as every worker sees them — the front door's ingest nodes, the edge
//! tier's peer edges: address, health, requests in flight and counters (atomics, shared by all
//! workers, so least-connections counts every worker's requests), and the choice of a node for
//! a request ([`ringcast_proto::front_door::route`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use ringcast_proto::front_door::route::{choose, Candidate, Target};
use ringcast_proto::prometheus::{Kind, Writer};

use super::parse_node_url;

/// One node.
pub struct Node {
    /// What the node is, for logs: `ingest node`, `peer edge`.
    pub role: &'static str,
    pub tag: String,
    pub addr: SocketAddr,
    /// `Host` of health checks.
    pub authority: String,
    /// Passed its last health check and no connection failed since.
    healthy: AtomicBool,
    in_flight: AtomicU64,
    pub requests: AtomicU64,
    /// Requests the front door answered 502/503/504 for because of this node.
    pub errors: AtomicU64,
    pub connect_failures: AtomicU64,
    pub health_failures: AtomicU64,
}

impl Node {
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// Record a health check or connection result; transitions are logged.
    pub fn set_healthy(&self, up: bool, why: &str) {
        if self.healthy.swap(up, Relaxed) != up {
            if up {
                tracing::info!(node = %self.tag, addr = %self.addr, "{} is up", self.role);
            } else {
                tracing::warn!(node = %self.tag, addr = %self.addr, why, "{} is down", self.role);
            }
        }
    }
}

/// A request in flight to a node, for as long as it lives.
pub struct InFlight<'a>(&'a Node);

impl<'a> InFlight<'a> {
    pub fn new(node: &'a Node) -> Self {
        node.in_flight.fetch_add(1, Relaxed);
        node.requests.fetch_add(1, Relaxed);
        Self(node)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// The configured nodes.
pub struct Pool {
    pub nodes: Vec<Node>,
    rotate: AtomicUsize,
}

impl Pool {
    /// Resolve every node's address (once, at start-up). Nodes start healthy: the first
    /// health check or a failed connection corrects that within one interval.
    pub fn new<'a>(
        role: &'static str,
        configured: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut nodes = Vec::with_capacity(configured.len());
        for (tag, url) in configured {
            let (host, port) = parse_node_url(url)?;
            let addr = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("{role} {tag}: cannot resolve {url}: {e}"))?
                .next()
                .ok_or_else(|| format!("{role} {tag}: {url} has no address"))?;
            let authority = url["http://".len()..].trim_end_matches('/').to_string();
            nodes.push(Node {
                role,
                tag: tag.to_string(),
                addr,
                authority,
                healthy: AtomicBool::new(true),
                in_flight: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                connect_failures: AtomicU64::new(0),
                health_failures: AtomicU64::new(0),
            });
        }
        Ok(Self {
            nodes,
            rotate: AtomicUsize::new(0),
        })
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.nodes.iter().any(|n| n.tag == tag)
    }

    /// The node for `target`, skipping the ones in `tried`. `despite_health`: count every node
    /// as healthy (the last resort when all are marked down: a mark may be older than the
    /// node's recovery, and a refused connection costs little).
    pub fn choose(
        &self,
        target: Target<'_>,
        tried: &[bool],
        despite_health: bool,
    ) -> Option<usize> {
        let candidates: Vec<Candidate<'_>> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Candidate {
                tag: &n.tag,
                healthy: despite_health || n.healthy(),
                in_flight: n.in_flight(),
                tried: tried.get(i).copied().unwrap_or(false),
            })
            .collect();
        let rotate = self.rotate.fetch_add(1, Relaxed);
        choose(&candidates, target, rotate)
    }

    /// Per-node series for `/metrics`, named `{prefix}_requests_total` etc., labelled `node`.
    pub fn render_metrics(&self, w: &mut Writer, prefix: &str) {
        let role = self.nodes.first().map_or("node", |n| n.role);
        type Get = fn(&Node) -> u64;
        let families: [(&str, String, Kind, Get); 6] = [
            (
                "requests_total",
                format!("Requests sent to each {role}."),
                Kind::Counter,
                |n| n.requests.load(Relaxed),
            ),
            (
                "errors_total",
                format!(
                    "Requests answered 502/503/504 (or sent elsewhere) because of each {role}."
                ),
                Kind::Counter,
                |n| n.errors.load(Relaxed),
            ),
            (
                "connect_failures_total",
                format!("Connections to each {role} that failed or timed out."),
                Kind::Counter,
                |n| n.connect_failures.load(Relaxed),
            ),
            (
                "health_check_failures_total",
                format!("Failed health checks of each {role}."),
                Kind::Counter,
                |n| n.health_failures.load(Relaxed),
            ),
            (
                "in_flight",
                format!("Requests in flight to each {role}."),
                Kind::Gauge,
                |n| n.in_flight(),
            ),
            (
                "node_up",
                format!("1 while the {role} passes its health checks, else 0."),
                Kind::Gauge,
                |n| u64::from(n.healthy()),
            ),
        ];
        for (suffix, help, kind, get) in families {
            let name = format!("{prefix}_{suffix}");
            w.family(&name, &help, kind);
            for n in &self.nodes {
                w.sample(&name, &[("node", &n.tag)], get(n));
            }
        }
    }
}
