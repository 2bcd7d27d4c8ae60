//! The ingest nodes as every worker sees them: address, health, requests in flight and
//! counters (atomics, shared by all workers, so least-connections counts every worker's
//! requests), and the choice of a node for a request ([`ringcast_proto::front_door::route`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use ringcast_proto::front_door::route::{choose, Candidate, Target};

use super::config::{parse_node_url, FrontDoorConfig};

/// One ingest node.
pub struct Node {
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
                tracing::info!(node = %self.tag, addr = %self.addr, "ingest node is up");
            } else {
                tracing::warn!(node = %self.tag, addr = %self.addr, why, "ingest node is down");
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
    pub fn new(cfg: &FrontDoorConfig) -> Result<Self, String> {
        let mut nodes = Vec::with_capacity(cfg.nodes.len());
        for n in &cfg.nodes {
            let (host, port) = parse_node_url(&n.url)?;
            let addr = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("front_door node {}: cannot resolve {}: {e}", n.tag, n.url))?
                .next()
                .ok_or_else(|| format!("front_door node {}: {} has no address", n.tag, n.url))?;
            let authority = n.url["http://".len()..].trim_end_matches('/').to_string();
            nodes.push(Node {
                tag: n.tag.clone(),
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
}
