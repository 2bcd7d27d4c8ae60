//! `[peers]`: the edge tier this edge belongs to.

use serde::{Deserialize, Serialize};

use crate::nodes::NodeConfig;

/// The edge tier. No `nodes`: the tier is off and every miss goes to the origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeersConfig {
    /// Every edge of the tier, this one included, in any order but with the same tags on every
    /// edge: `{ tag = "e1", url = "http://10.0.0.1:8080" }`. The tag names the edge in the
    /// rendezvous hash that picks each object's owner.
    pub nodes: Vec<NodeConfig>,
    /// Which of `nodes` this edge is.
    pub self_tag: String,
    /// Shared by the tier's edges (at least 16 characters): a peer's request carries it in
    /// `Ringcast-Peer`, so only peers may use `/_peer/` (which skips the visibility check,
    /// already done by the asking edge, and is never forwarded again).
    pub secret: String,
    /// How often each peer's `/healthz` is checked, in milliseconds. A dead owner's objects go
    /// to the origin within one interval (at once when a fetch from it fails).
    pub health_interval_ms: u64,
    /// Longest wait for a health check's answer, in milliseconds.
    pub health_timeout_ms: u64,
    /// Longest wait for an object from its owner, in milliseconds; then the edge marks the
    /// owner down and asks the origin itself (bounded by `origin_timeout_ms` again).
    pub fetch_timeout_ms: u64,
}

impl Default for PeersConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            self_tag: String::new(),
            secret: String::new(),
            health_interval_ms: 1000,
            health_timeout_ms: 500,
            fetch_timeout_ms: 2000,
        }
    }
}

impl PeersConfig {
    pub fn enabled(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Reject values that cannot work, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        crate::nodes::check_nodes("peers node", &self.nodes)?;
        if !self.nodes.iter().any(|n| n.tag == self.self_tag) {
            return Err(format!(
                "peers.self_tag {:?} must be the tag of one of peers.nodes",
                self.self_tag
            ));
        }
        ringcast_proto::secret::check_strength("peers.secret", &self.secret)
            .map_err(|e| e.to_string())?;
        if !self.secret.bytes().all(|b| b.is_ascii_graphic()) {
            // It goes into a request header as it is.
            return Err("peers.secret must be printable ASCII without spaces".into());
        }
        let durations = [
            ("peers.health_interval_ms", self.health_interval_ms),
            ("peers.health_timeout_ms", self.health_timeout_ms),
            ("peers.fetch_timeout_ms", self.fetch_timeout_ms),
        ];
        crate::config::bounds::positive(&durations)?;
        crate::config::bounds::at_most_one_day(&durations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(tags: &[&str], me: &str, secret: &str) -> PeersConfig {
        PeersConfig {
            nodes: tags
                .iter()
                .enumerate()
                .map(|(i, t)| NodeConfig {
                    tag: t.to_string(),
                    url: format!("http://127.0.0.1:{}", 9000 + i),
                })
                .collect(),
            self_tag: me.to_string(),
            secret: secret.to_string(),
            ..PeersConfig::default()
        }
    }

    #[test]
    fn the_tier_is_checked() {
        let good = "0123456789abcdefXYZ";
        assert!(PeersConfig::default().check().is_ok(), "off is fine");
        assert!(tier(&["e1", "e2"], "e1", good).check().is_ok());
        for (cfg, what) in [
            (tier(&["e1", "e2"], "e3", good), "self_tag"),
            (tier(&["e1", "e2"], "", good), "self_tag"),
            (tier(&["e1", "e2"], "e1", "short"), "peers.secret"),
            (
                tier(&["e1"], "e1", "0123456789abcdef\r\nX: y"),
                "peers.secret",
            ),
            (tier(&["e1", "e1"], "e1", good), "twice"),
            (tier(&["E1"], "E1", good), "tag"),
            (
                PeersConfig {
                    fetch_timeout_ms: 0,
                    ..tier(&["e1"], "e1", good)
                },
                "fetch_timeout_ms",
            ),
        ] {
            let err = cfg.check().expect_err(what);
            assert!(err.contains(what), "{err} should name {what}");
        }
    }
}
