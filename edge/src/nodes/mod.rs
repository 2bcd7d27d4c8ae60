//! Sets of HTTP nodes the edge talks to, with active health checks: the front door's ingest
//! nodes ([`crate::front_door`]) and the edge tier's peer edges ([`crate::peers`]).

pub mod health;
pub mod pool;

use serde::{Deserialize, Serialize};

/// One node in a config list: `{ tag = "a", url = "http://127.0.0.1:8081" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// 1–12 characters of `[a-z0-9]`, unique in its list. It is what a node is known by: an
    /// ingest node's `node_tag`, a peer edge's name in the rendezvous hash (so it must be the
    /// same in every edge's list).
    pub tag: String,
    /// `http://host:port`.
    pub url: String,
}

/// Check a node list: tags well formed and unique, URLs `http://host:port`. `what` names the
/// list in errors (`front_door node`, `peers node`).
pub fn check_nodes(what: &str, nodes: &[NodeConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for n in nodes {
        let tag_ok = (1..=12).contains(&n.tag.len())
            && n.tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !tag_ok {
            return Err(format!(
                "{what} tag {:?} must be 1-12 characters of [a-z0-9]",
                n.tag
            ));
        }
        if !seen.insert(n.tag.as_str()) {
            return Err(format!("{what} tag {:?} appears twice", n.tag));
        }
        parse_node_url(&n.url)?;
    }
    Ok(())
}

/// A node's `url`, checked: `http://host:port` (no path, no userinfo).
pub fn parse_node_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("node url {url:?} must start with http://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return Err(format!(
            "node url {url:?} must be http://host:port without a path"
        ));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.contains(']'))
        .ok_or_else(|| format!("node url {url:?} needs a port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("node url {url:?} has a bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}
