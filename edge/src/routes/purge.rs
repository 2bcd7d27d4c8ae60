//! The purge API: drop cached objects by exact key or key prefix, on every cache tier.
//!
//! - `POST /purge` with `{"keys": ["v/a/1/720p/seg1.m4s"], "prefixes": ["v/b/"]}` (either list
//!   may be omitted; keys and prefixes may start with `/`);
//! - `DELETE /v/{key}` purges one key; `DELETE /v/{prefix}*` purges a prefix.
//!
//! Both need `Authorization: Bearer <admin_key>` ([`crate::routes::access_control`]). The answer counts
//! what went: `{"purged": 3, "keys": 1, "prefixes": 1, "tiers": {"memory": 3}}`.
//!
//! Tiers: every cache tier implements [`PurgeTier`] and is listed in [`tiers`] — the one call
//! site a new tier has to join. Purging only affects this edge; fan-out to the
//! other edges of a tier is the caller's job (call each edge).

use bytes::Bytes;
use ringcast_proto::http::RequestHead;
use serde::Deserialize;

use crate::error::EdgeError;
use crate::response::Response;
use crate::routes::path::object_key;
use crate::shared::Shared;
use crate::tiers::disk::DiskTier;
use crate::tiers::memory::MemoryCache;

/// Largest accepted purge body.
pub const MAX_BODY: usize = 64 * 1024;
/// Most keys + prefixes in one request.
const MAX_ITEMS: usize = 10_000;

/// A cache tier that can drop entries.
pub trait PurgeTier {
    /// Label in the answer and in metrics.
    fn name(&self) -> &'static str;
    /// Drop `key`; how many entries went.
    fn purge_key(&self, key: &str) -> u64;
    /// Drop every key starting with `prefix`; how many entries went.
    fn purge_prefix(&self, prefix: &str) -> u64;
}

impl PurgeTier for MemoryCache {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn purge_key(&self, key: &str) -> u64 {
        MemoryCache::purge_key(self, key)
    }
    fn purge_prefix(&self, prefix: &str) -> u64 {
        MemoryCache::purge_prefix(self, prefix)
    }
}

impl PurgeTier for DiskTier {
    fn name(&self) -> &'static str {
        "disk"
    }
    fn purge_key(&self, key: &str) -> u64 {
        u64::from(self.remove(key))
    }
    fn purge_prefix(&self, prefix: &str) -> u64 {
        self.remove_prefix(prefix)
    }
}

/// Every tier of this edge, memory first: a disk object's memory stand-in goes before its file,
/// so no request is sent to a file that is about to vanish.
fn tiers(shared: &Shared) -> Vec<&dyn PurgeTier> {
    let mut tiers: Vec<&dyn PurgeTier> = vec![shared.cache.as_ref()];
    if let Some(disk) = &shared.disk {
        tiers.push(disk.as_ref());
    }
    tiers
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
}

/// `POST /purge`.
pub fn post(req: &RequestHead, body: &[u8], shared: &Shared) -> Result<Response, EdgeError> {
    shared.access.authorize_admin(req)?;
    let parsed: PurgeRequest = serde_json::from_slice(body)
        .map_err(|e| EdgeError::BadRequest(format!("purge body: {e}")))?;
    if parsed.keys.is_empty() && parsed.prefixes.is_empty() {
        return Err(EdgeError::BadRequest(
            "purge body needs \"keys\" or \"prefixes\"".into(),
        ));
    }
    if parsed.keys.len() + parsed.prefixes.len() > MAX_ITEMS {
        return Err(EdgeError::BadRequest(format!(
            "at most {MAX_ITEMS} keys and prefixes per request"
        )));
    }
    let keys = parsed
        .keys
        .iter()
        .map(|k| normalize_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let prefixes = parsed
        .prefixes
        .iter()
        .map(|p| normalize_prefix(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(run(shared, &keys, &prefixes))
}

/// `DELETE /v/{key}` or `DELETE /v/{prefix}*`.
pub fn delete(req: &RequestHead, path: &str, shared: &Shared) -> Result<Response, EdgeError> {
    shared.access.authorize_admin(req)?;
    match path.strip_suffix('*') {
        Some(prefix) => Ok(run(shared, &[], &[normalize_prefix(prefix)?])),
        None => Ok(run(shared, &[normalize_key(path)?], &[])),
    }
}

fn run(shared: &Shared, keys: &[String], prefixes: &[String]) -> Response {
    let mut total = 0;
    let mut per_tier = serde_json::Map::new();
    for tier in tiers(shared) {
        let n: u64 = keys.iter().map(|k| tier.purge_key(k)).sum::<u64>()
            + prefixes.iter().map(|p| tier.purge_prefix(p)).sum::<u64>();
        total += n;
        per_tier.insert(tier.name().into(), n.into());
    }
    shared.metrics.purged(total);
    tracing::info!(
        keys = keys.len(),
        prefixes = prefixes.len(),
        purged = total,
        "purge"
    );
    let body = serde_json::json!({
        "purged": total,
        "keys": keys.len(),
        "prefixes": prefixes.len(),
        "tiers": per_tier,
    });
    Response::new(200)
        .header("Cache-Control", "no-store")
        .body("application/json", Bytes::from(body.to_string()))
}

/// A key as a client may write it (`v/...` or `/v/...`) → the object key, validated like a
/// request path so a purge names exactly what a GET would have cached.
fn normalize_key(k: &str) -> Result<String, EdgeError> {
    let path = if k.starts_with('/') {
        k.to_string()
    } else {
        format!("/{k}")
    };
    if !path.starts_with("/v/") {
        return Err(EdgeError::BadRequest(format!("key {k:?} is not under v/")));
    }
    Ok(object_key(&path)?)
}

/// A prefix must stay inside `v/` (use `v/` to purge every object).
fn normalize_prefix(p: &str) -> Result<String, EdgeError> {
    let p = p.strip_prefix('/').unwrap_or(p);
    if !p.starts_with("v/") {
        return Err(EdgeError::BadRequest(format!(
            "prefix {p:?} is not under v/ (\"v/\" purges everything)"
        )));
    }
    if p.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return Err(EdgeError::BadRequest("control character in prefix".into()));
    }
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes_are_normalized() {
        assert_eq!(
            normalize_key("v/a/1/s.m4s").ok().as_deref(),
            Some("v/a/1/s.m4s")
        );
        assert_eq!(
            normalize_key("/v/a/1/s.m4s").ok().as_deref(),
            Some("v/a/1/s.m4s")
        );
        assert!(normalize_key("sources/a").is_err());
        assert!(normalize_key("v/a/../b").is_err());
        assert_eq!(normalize_prefix("/v/a/").ok().as_deref(), Some("v/a/"));
        assert_eq!(normalize_prefix("v/").ok().as_deref(), Some("v/"));
        assert!(normalize_prefix("").is_err());
        assert!(normalize_prefix("x/").is_err());
    }
}
