//! `[front_door]`: the ingest pool the edge fronts, and `[front_door.rate_limit]`.

use serde::{Deserialize, Serialize};

pub use crate::nodes::NodeConfig;

/// The front door's settings. No `nodes`: the front door is off and `/files/`, `/v1/` and
/// `/live/` answer 404 as before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontDoorConfig {
    /// The ingest nodes: `{ tag = "a", url = "http://127.0.0.1:8081" }`. `tag` is the node's
    /// `node_tag` (1–12 characters of `[a-z0-9]`, unique); `url` is `http://host:port`.
    pub nodes: Vec<NodeConfig>,
    /// Path of the active health check (`GET`, 200 = healthy).
    pub health_path: String,
    /// How often each node is checked, in milliseconds. A dead node's new requests go to the
    /// others within one interval (at once when a connection to it fails).
    pub health_interval_ms: u64,
    /// Longest wait for a health check's answer, in milliseconds (then the node is down).
    pub health_timeout_ms: u64,
    /// Longest wait for a connection to a node, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for a node's response head once the request was sent, in milliseconds
    /// (then 504). A tus PATCH's answer comes after the node has synced the chunk to disk.
    pub response_timeout_ms: u64,
    /// Longest silence inside a body in either direction while proxying (client → node or
    /// node → client), in milliseconds; the exchange is then cut.
    pub idle_timeout_ms: u64,
    /// Idle keep-alive connections kept per node and worker for requests without a body
    /// (0 = a new connection for every request).
    pub pooled_connections_per_node: usize,
    /// Rate limits per client address and per API key (`[front_door.rate_limit]`).
    pub rate_limit: RateLimitConfig,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            health_path: "/healthz".to_string(),
            health_interval_ms: 1000,
            health_timeout_ms: 500,
            connect_timeout_ms: 1000,
            response_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            pooled_connections_per_node: 16,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// Token buckets per client address and per API key (the bearer token, hashed; the ingest
/// checks it). One table for the whole process, shared by the workers (a client's connections
/// land on different workers). A rate of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per second each client address may make, on average.
    pub per_address_per_sec: f64,
    /// Requests a client address may make at once after being quiet.
    pub per_address_burst: u32,
    /// Requests per second each API key may make, on average (all addresses together).
    pub per_key_per_sec: f64,
    /// Requests an API key may make at once after being quiet.
    pub per_key_burst: u32,
    /// Most addresses (and, apart, keys) tracked at once; beyond it refilled buckets are
    /// dropped first, then the longest idle ones (memory stays bounded).
    pub max_entries: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_address_per_sec: 50.0,
            per_address_burst: 200,
            per_key_per_sec: 50.0,
            per_key_burst: 200,
            max_entries: 100_000,
        }
    }
}

impl FrontDoorConfig {
    pub fn enabled(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Reject values that cannot work, naming the field.
    pub fn check(&self) -> Result<(), String> {
        crate::nodes::check_nodes("front_door node", &self.nodes)?;
        if !self.health_path.starts_with('/') || self.health_path.contains([' ', '\r', '\n']) {
            return Err("front_door.health_path must be a path starting with /".into());
        }
        let durations = [
            ("front_door.health_interval_ms", self.health_interval_ms),
            ("front_door.health_timeout_ms", self.health_timeout_ms),
            ("front_door.connect_timeout_ms", self.connect_timeout_ms),
            ("front_door.response_timeout_ms", self.response_timeout_ms),
            ("front_door.idle_timeout_ms", self.idle_timeout_ms),
        ];
        crate::config::bounds::positive(&durations)?;
        crate::config::bounds::at_most_one_day(&durations)?;
        if self.pooled_connections_per_node > 1024 {
            return Err("front_door.pooled_connections_per_node must be at most 1024".into());
        }
        let r = &self.rate_limit;
        for (name, v) in [
            (
                "front_door.rate_limit.per_address_per_sec",
                r.per_address_per_sec,
            ),
            ("front_door.rate_limit.per_key_per_sec", r.per_key_per_sec),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be 0 (off) or a positive number"));
            }
        }
        if r.per_address_burst == 0 || r.per_key_burst == 0 {
            return Err("front_door.rate_limit bursts must be at least 1".into());
        }
        if r.max_entries == 0 {
            return Err("front_door.rate_limit.max_entries must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_nodes(nodes: &[(&str, &str)]) -> FrontDoorConfig {
        FrontDoorConfig {
            nodes: nodes
                .iter()
                .map(|(t, u)| NodeConfig {
                    tag: t.to_string(),
                    url: u.to_string(),
                })
                .collect(),
            ..FrontDoorConfig::default()
        }
    }

    #[test]
    fn nodes_are_checked() {
        assert!(FrontDoorConfig::default().check().is_ok());
        assert!(!FrontDoorConfig::default().enabled());
        let ok = with_nodes(&[("a", "http://127.0.0.1:1"), ("b2", "http://[::1]:2/")]);
        assert!(ok.check().is_ok());
        assert_eq!(
            crate::nodes::parse_node_url("http://[::1]:2/"),
            Ok(("::1".into(), 2))
        );
        for (nodes, what) in [
            (vec![("A", "http://h:1")], "tag"),
            (vec![("a-b", "http://h:1")], "tag"),
            (vec![("", "http://h:1")], "tag"),
            (vec![("a", "http://h:1"), ("a", "http://h:2")], "twice"),
            (vec![("a", "https://h:1")], "http://"),
            (vec![("a", "http://h")], "port"),
            (vec![("a", "http://h:1/x")], "path"),
            (vec![("a", "http://u@h:1")], "path"),
        ] {
            let err = with_nodes(&nodes).check().expect_err(what);
            assert!(err.contains(what), "{err}");
        }
        let mut c = with_nodes(&[("a", "http://h:1")]);
        c.rate_limit.per_key_per_sec = -1.0;
        assert!(c.check().unwrap_err().contains("per_key_per_sec"));
        let mut c = with_nodes(&[("a", "http://h:1")]);
        c.health_interval_ms = 0;
        assert!(c.check().unwrap_err().contains("health_interval_ms"));
    }
}
