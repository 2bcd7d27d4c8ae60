//! Which ingest node a request goes to.
//!
//! - `/files/{id}` (tus core: HEAD, PATCH, DELETE) goes to the node whose tag starts the id
//!   (`{tag}-{22 base62}`, ingest config `node_tag`): that node holds the upload's spool, so no
//!   sticky sessions are needed. When it is down the answer is 503 — never another node.
//!   An id without a known tag (a single untagged node) goes to any node.
//! - `/live/{key}…` (push and pull) goes to the node that wins the rendezvous hash of the key
//!   among the healthy ones, so a publisher's reconnect (and its pullers) land on the same node
//!   while it lives, and only the keys of a dead node move.
//! - `/files`, `/files/` (creation) and `/v1/…` go to the healthy node with the fewest requests
//!   in flight — except the tus concatenation extension's creations ([`creation_target`]): a
//!   final upload (`Upload-Concat: final;…`) goes to the node holding its partial uploads (the
//!   tag of the first one), and partial uploads go by rendezvous hash of the caller's API key id,
//!   so the parallel pieces of one client's file land on one node, where they can be joined.

use xxhash_rust::xxh3::xxh3_64;

/// Where a front-door request must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The node with this tag, and no other.
    Node(&'a str),
    /// Rendezvous hash of this key over the healthy nodes.
    Keyed(&'a str),
    /// Least connections among the healthy nodes.
    Any,
}

/// Whether the front door handles `path` (`/files`, `/files/…`, `/v1/…`, `/live/…`).
pub fn is_front_door_path(path: &str) -> bool {
    path == "/files"
        || path.starts_with("/files/")
        || path == "/v1"
        || path.starts_with("/v1/")
        || path.starts_with("/live/")
}

/// The target of a front-door path; `is_tag` says whether a string is a configured node's tag.
pub fn target<'a>(path: &'a str, is_tag: impl Fn(&str) -> bool) -> Target<'a> {
    if let Some(rest) = path.strip_prefix("/files/") {
        let id = rest.split('/').next().unwrap_or_default();
        if let Some((tag, _)) = id.split_once('-') {
            if is_tag(tag) {
                return Target::Node(tag);
            }
        }
        return Target::Any;
    }
    if let Some(rest) = path.strip_prefix("/live/") {
        let key = rest.split('/').next().unwrap_or_default();
        if !key.is_empty() {
            return Target::Keyed(key);
        }
    }
    Target::Any
}

/// The target of a creation request (`POST /files/`) by its `Upload-Concat` and
/// `Authorization` headers; `None` when the plain least-connections choice applies. Only the
/// API key's id (`Bearer rk_{id}` before the `.`) is used as the key, never its secret.
pub fn creation_target<'a>(
    upload_concat: Option<&'a str>,
    authorization: Option<&'a str>,
    is_tag: impl Fn(&str) -> bool,
) -> Option<Target<'a>> {
    let concat = upload_concat?;
    if concat == "partial" {
        let key = authorization
            .and_then(|a| a.split('.').next())
            .filter(|k| !k.is_empty())
            .unwrap_or("anonymous");
        return Some(Target::Keyed(key));
    }
    let first = concat
        .strip_prefix("final;")?
        .split(' ')
        .find(|u| !u.is_empty())?;
    let (_, id) = first.rsplit_once("/files/")?;
    let (tag, _) = id.split_once('-')?;
    is_tag(tag).then_some(Target::Node(tag))
}

/// Rendezvous (highest random weight) score of `node` for `key`.
pub fn rendezvous_score(node: &str, key: &str) -> u64 {
    let mut buf = Vec::with_capacity(node.len() + key.len() + 1);
    buf.extend_from_slice(node.as_bytes());
    buf.push(0);
    buf.extend_from_slice(key.as_bytes());
    xxh3_64(&buf)
}

/// A node as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub tag: &'a str,
    /// Passed its last health check and no connect failure since.
    pub healthy: bool,
    /// Requests in flight to it now.
    pub in_flight: u64,
    /// Already tried for this request (a refused connection): skip it.
    pub tried: bool,
}

/// Index of the node for `target` among `nodes`, `None` when no usable node is left.
/// `rotate` breaks least-connection ties (a counter per request), so equal nodes share the load.
pub fn choose(nodes: &[Candidate<'_>], target: Target<'_>, rotate: usize) -> Option<usize> {
    let usable = |c: &Candidate<'_>| c.healthy && !c.tried;
    match target {
        Target::Node(tag) => nodes.iter().position(|c| c.tag == tag && usable(c)),
        Target::Keyed(key) => nodes
            .iter()
            .enumerate()
            .filter(|(_, c)| usable(c))
            .max_by_key(|(_, c)| rendezvous_score(c.tag, key))
            .map(|(i, _)| i),
        Target::Any => {
            let n = nodes.len();
            (0..n)
                .map(|k| (k + rotate) % n.max(1))
                .filter(|&i| usable(&nodes[i]))
                .min_by_key(|&i| nodes[i].in_flight)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(tag: &str, healthy: bool, in_flight: u64) -> Candidate<'_> {
        Candidate {
            tag,
            healthy,
            in_flight,
            tried: false,
        }
    }

    #[test]
    fn paths_and_targets() {
        let is_tag = |t: &str| t == "a" || t == "b";
        for p in [
            "/files",
            "/files/",
            "/files/x",
            "/v1/videos",
            "/v1",
            "/live/k",
        ] {
            assert!(is_front_door_path(p), "{p}");
        }
        for p in [
            "/v/a/master.m3u8",
            "/filesx",
            "/v1x",
            "/live",
            "/healthz",
            "/",
        ] {
            assert!(!is_front_door_path(p), "{p}");
        }
        assert_eq!(target("/files/a-123", is_tag), Target::Node("a"));
        assert_eq!(target("/files/b-1-2", is_tag), Target::Node("b"));
        assert_eq!(target("/files/c-123", is_tag), Target::Any);
        assert_eq!(target("/files/abc", is_tag), Target::Any);
        assert_eq!(target("/files/", is_tag), Target::Any);
        assert_eq!(target("/files", is_tag), Target::Any);
        assert_eq!(target("/live/cam1", is_tag), Target::Keyed("cam1"));
        assert_eq!(target("/live/cam1/pull", is_tag), Target::Keyed("cam1"));
        assert_eq!(target("/v1/videos/a-1", is_tag), Target::Any);
    }

    #[test]
    fn concatenation_creations_stay_on_one_node() {
        let is_tag = |t: &str| t == "a" || t == "b";
        assert_eq!(
            creation_target(
                Some("final;http://fd.example/files/b-1 /files/b-2"),
                None,
                is_tag
            ),
            Some(Target::Node("b"))
        );
        assert_eq!(
            creation_target(Some("final;/files/c-1"), None, is_tag),
            None,
            "unknown tag"
        );
        assert_eq!(creation_target(Some("final;"), None, is_tag), None);
        assert_eq!(
            creation_target(Some("partial"), Some("Bearer rk_abc.secret"), is_tag),
            Some(Target::Keyed("Bearer rk_abc"))
        );
        assert_eq!(
            creation_target(Some("partial"), None, is_tag),
            Some(Target::Keyed("anonymous"))
        );
        assert_eq!(creation_target(None, Some("Bearer x"), is_tag), None);
    }

    #[test]
    fn a_tagged_upload_never_goes_elsewhere() {
        let nodes = [node("a", false, 0), node("b", true, 0)];
        assert_eq!(choose(&nodes, Target::Node("a"), 0), None);
        assert_eq!(choose(&nodes, Target::Node("b"), 0), Some(1));
    }

    #[test]
    fn least_connections_with_rotating_ties() {
        let nodes = [node("a", true, 3), node("b", true, 1), node("c", false, 0)];
        assert_eq!(choose(&nodes, Target::Any, 0), Some(1));
        let even = [node("a", true, 0), node("b", true, 0)];
        let picks: Vec<_> = (0..4).map(|r| choose(&even, Target::Any, r)).collect();
        assert_eq!(picks, [Some(0), Some(1), Some(0), Some(1)]);
        let mut tried = even;
        tried[0].tried = true;
        assert_eq!(choose(&tried, Target::Any, 0), Some(1));
        assert_eq!(choose(&[], Target::Any, 0), None);
    }

    #[test]
    fn rendezvous_is_stable_and_moves_only_a_dead_nodes_keys() {
        let all = [node("a", true, 0), node("b", true, 0), node("c", true, 0)];
        let keys: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
        let before: Vec<_> = keys
            .iter()
            .map(|k| choose(&all, Target::Keyed(k), 0).expect("a node"))
            .collect();
        // Every node gets some keys.
        for i in 0..3 {
            assert!(before.iter().filter(|&&n| n == i).count() > 50);
        }
        // In-flight counts and rotation do not matter.
        let busy = [node("a", true, 9), node("b", true, 0), node("c", true, 5)];
        for (k, b) in keys.iter().zip(&before) {
            assert_eq!(choose(&busy, Target::Keyed(k), 7), Some(*b));
        }
        let mut b_down = all;
        b_down[1].healthy = false;
        for (k, b) in keys.iter().zip(&before) {
            let now = choose(&b_down, Target::Keyed(k), 0).expect("a node");
            if *b != 1 {
                assert_eq!(now, *b, "{k} moved although its node lives");
            } else {
                assert_ne!(now, 1);
            }
        }
    }
}
