//! The purge API: drop cached objects by exact key or key prefix, on every cache tier.
//!
//! - `POST /purge` with `{"keys": ["v/a/1/720p/seg1.m4s"], "prefixes": ["v/b/"], "videos":
//!   ["c"]}` (any list may be omitted, not all; keys and prefixes may start with `/`; `videos`
//!   drops the cached visibility of those ids);
//! - `POST /purge?fleet=1` with the same body publishes it on the Redis channel `rc:purge`
//!   instead (a `ringcast_proto::purge::PurgeMessage`): every subscribed edge, this one
//!   included, applies it (`platform::fleet`). Needs `[platform] enabled`; 503 when Redis
//!   cannot take it;
//! - `DELETE /v/{key}` purges one key; `DELETE /v/{prefix}*` purges a prefix (this edge only).
//!
//! All need `Authorization: Bearer <admin_key>` ([`crate::routes::access_control`]). The local
//! answer counts what went: `{"purged": 3, "keys": 1, "prefixes": 1, "videos": 0, "tiers":
//! {"memory": 3}}`; the fleet answer how many edges were subscribed: `{"fleet": true,
//! "receivers": 2, "keys": 1, "prefixes": 1, "videos": 0}`.
//!
//! Tiers: every cache tier implements [`PurgeTier`] and is listed in [`purge_tiers`] — the one
//! call site a new tier has to join (the fleet path uses it too).

use std::sync::Arc;

use bytes::Bytes;
use ringcast_proto::http::RequestHead;
use serde::Deserialize;

use ringcast_proto::purge::PurgeMessage;

use crate::error::EdgeError;
use crate::platform::stats::PlatformStats;
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
fn tiers<'a>(cache: &'a MemoryCache, disk: Option<&'a Arc<DiskTier>>) -> Vec<&'a dyn PurgeTier> {
    let mut tiers: Vec<&dyn PurgeTier> = vec![cache];
    if let Some(disk) = disk {
        tiers.push(disk.as_ref());
    }
    tiers
}

/// Purge `keys` and `prefixes` (normalized) from every tier: how many entries went in all and
/// per tier.
pub fn purge_tiers(
    cache: &MemoryCache,
    disk: Option<&Arc<DiskTier>>,
    keys: &[String],
    prefixes: &[String],
) -> (u64, serde_json::Map<String, serde_json::Value>) {
    let mut total = 0;
    let mut per_tier = serde_json::Map::new();
    for tier in tiers(cache, disk) {
        let n: u64 = keys.iter().map(|k| tier.purge_key(k)).sum::<u64>()
            + prefixes.iter().map(|p| tier.purge_prefix(p)).sum::<u64>();
        total += n;
        per_tier.insert(tier.name().into(), n.into());
    }
    (total, per_tier)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    videos: Vec<String>,
}

/// `POST /purge[?fleet=1]`.
pub async fn post(req: &RequestHead, body: &[u8], shared: &Shared) -> Result<Response, EdgeError> {
    shared.access.authorize_admin(req)?;
    let fleet = fleet_requested(req.query())?;
    let parsed: PurgeRequest = serde_json::from_slice(body)
        .map_err(|e| EdgeError::BadRequest(format!("purge body: {e}")))?;
    if parsed.keys.is_empty() && parsed.prefixes.is_empty() && parsed.videos.is_empty() {
        return Err(EdgeError::BadRequest(
            "purge body needs \"keys\", \"prefixes\" or \"videos\"".into(),
        ));
    }
    let items = parsed.keys.len() + parsed.prefixes.len() + parsed.videos.len();
    if items > MAX_ITEMS {
        return Err(EdgeError::BadRequest(format!(
            "at most {MAX_ITEMS} keys, prefixes and videos per request"
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
    if let Some(bad) = parsed
        .videos
        .iter()
        .find(|v| !ringcast_proto::keys::is_valid_id(v))
    {
        return Err(EdgeError::BadRequest(format!(
            "video id {bad:?} is not valid"
        )));
    }
    if fleet {
        let msg = PurgeMessage::new(keys, prefixes, parsed.videos);
        return publish(&msg, shared).await;
    }
    if let Some(v) = shared.platform.visibility() {
        v.forget(parsed.videos.iter().map(String::as_str));
    }
    Ok(run(shared, &keys, &prefixes, parsed.videos.len()))
}

/// `fleet=1|true` in the query (anything else about `fleet` is a 400).
fn fleet_requested(query: Option<&str>) -> Result<bool, EdgeError> {
    let mut fleet = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("fleet", "1" | "true") => fleet = true,
            ("fleet", "0" | "false") => fleet = false,
            ("fleet", other) => {
                return Err(EdgeError::BadRequest(format!(
                    "fleet={other:?}: use fleet=1 to purge every edge"
                )))
            }
            _ => {}
        }
    }
    Ok(fleet)
}

/// Publish `msg` to every edge (this one applies it through its own subscription).
async fn publish(msg: &PurgeMessage, shared: &Shared) -> Result<Response, EdgeError> {
    let Some(publisher) = shared.platform.publisher() else {
        return Err(EdgeError::FleetPurgeDisabled);
    };
    let receivers = publisher.publish(msg).await.map_err(|e| match e {
        ringcast_infra::purge::PurgeError::Message(m) => EdgeError::BadRequest(m.to_string()),
        other => EdgeError::FleetPurgeFailed(other.to_string()),
    })?;
    PlatformStats::bump(&shared.platform.stats.purge_published);
    tracing::info!(
        keys = msg.keys.len(),
        prefixes = msg.prefixes.len(),
        videos = msg.videos.len(),
        receivers,
        "fleet purge published"
    );
    let body = serde_json::json!({
        "fleet": true,
        "receivers": receivers,
        "keys": msg.keys.len(),
        "prefixes": msg.prefixes.len(),
        "videos": msg.videos.len(),
    });
    Ok(Response::new(200)
        .header("Cache-Control", "no-store")
        .body("application/json", Bytes::from(body.to_string())))
}

/// `DELETE /v/{key}` or `DELETE /v/{prefix}*`.
pub fn delete(req: &RequestHead, path: &str, shared: &Shared) -> Result<Response, EdgeError> {
    shared.access.authorize_admin(req)?;
    match path.strip_suffix('*') {
        Some(prefix) => Ok(run(shared, &[], &[normalize_prefix(prefix)?], 0)),
        None => Ok(run(shared, &[normalize_key(path)?], &[], 0)),
    }
}

fn run(shared: &Shared, keys: &[String], prefixes: &[String], videos: usize) -> Response {
    let (total, per_tier) = purge_tiers(&shared.cache, shared.disk.as_ref(), keys, prefixes);
    shared.metrics.purged(total);
    tracing::info!(
        keys = keys.len(),
        prefixes = prefixes.len(),
        videos,
        purged = total,
        "purge"
    );
    let body = serde_json::json!({
        "purged": total,
        "keys": keys.len(),
        "prefixes": prefixes.len(),
        "videos": videos,
        "tiers": per_tier,
    });
    Response::new(200)
        .header("Cache-Control", "no-store")
        .body("application/json", Bytes::from(body.to_string()))
}

/// A key as a client may write it (`v/...` or `/v/...`) → the object key, validated like a
/// request path so a purge names exactly what a GET would have cached.
pub fn normalize_key(k: &str) -> Result<String, EdgeError> {
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
pub fn normalize_prefix(p: &str) -> Result<String, EdgeError> {
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

    #[test]
    fn the_fleet_switch() {
        assert_eq!(fleet_requested(None).ok(), Some(false));
        assert_eq!(fleet_requested(Some("fleet=1")).ok(), Some(true));
        assert_eq!(fleet_requested(Some("x=2&fleet=true")).ok(), Some(true));
        assert_eq!(fleet_requested(Some("fleet=0")).ok(), Some(false));
        assert!(fleet_requested(Some("fleet=yes")).is_err());
        assert!(fleet_requested(Some("fleet")).is_err());
    }
}
