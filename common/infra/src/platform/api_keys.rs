//! API keys in Redis: `rc:apikey:{key_id}` (hash: `owner`, `role`, `hash`, `label`,
//! `created_ms`, `revoked_ms` once revoked) and the set `rc:apikeys` of every key id. The token
//! itself is never stored, only its SHA-256 ([`ringcast_proto::auth`]); authenticating a request
//! is one `HGETALL` of the key id the token names and a constant-time hash comparison.
//!
//! Revoking keeps the record (with `revoked_ms`) so `keys list` still shows who had it; a
//! revoked key authenticates nobody from the next request on.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use ringcast_proto::auth::{self, ApiToken, Caller, Role};
use ringcast_proto::job::now_ms;
use ringcast_proto::keys;

use crate::queue::{Queue, QueueError};
use crate::side_runtime;

/// One key as stored (never the token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub owner: String,
    pub role: Role,
    pub label: String,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
    #[serde(skip)]
    hash: String,
}

impl ApiKeyRecord {
    fn from_hash(key_id: &str, map: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            key_id: key_id.to_string(),
            owner: map.get("owner")?.clone(),
            role: Role::parse(map.get("role")?)?,
            label: map.get("label").cloned().unwrap_or_default(),
            created_ms: map.get("created_ms")?.parse().ok()?,
            revoked_ms: map.get("revoked_ms").and_then(|v| v.parse().ok()),
            hash: map.get("hash")?.clone(),
        })
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_ms.is_some()
    }
}

/// The API keys of the platform. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    conn: ConnectionManager,
}

/// Marks a key revoked only if it exists (a revoke of a mistyped id must not create a record).
const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked_ms') == 1 then return 2 end
redis.call('HSET', KEYS[1], 'revoked_ms', ARGV[1])
return 1
";

/// What [`ApiKeys::revoke`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
    NoSuchKey,
}

impl ApiKeys {
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
        }
    }

    /// Make a key for `owner` with `role`; returns its record and the token, which exists
    /// nowhere else from now on.
    pub async fn create(
        &self,
        owner: &str,
        role: Role,
        label: &str,
    ) -> Result<(ApiKeyRecord, String), QueueError> {
        let random = [
            uuid::Uuid::new_v4().as_u128(),
            uuid::Uuid::new_v4().as_u128(),
            uuid::Uuid::new_v4().as_u128(),
        ];
        let new = auth::new_key(random);
        let record = ApiKeyRecord {
            key_id: new.key_id.clone(),
            owner: owner.to_string(),
            role,
            label: label.to_string(),
            created_ms: now_ms(),
            revoked_ms: None,
            hash: new.hash.clone(),
        };
        let mut conn = self.conn.clone();
        let r = record.clone();
        side_runtime::run(async move {
            redis::pipe()
                .atomic()
                .hset_multiple(
                    keys::api_key(&r.key_id),
                    &[
                        ("owner", r.owner.clone()),
                        ("role", r.role.as_str().to_string()),
                        ("hash", r.hash.clone()),
                        ("label", r.label.clone()),
                        ("created_ms", r.created_ms.to_string()),
                    ],
                )
                .ignore()
                .sadd(keys::API_KEYS, &r.key_id)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok((record, new.token))
    }

    /// The record of `key_id`, revoked or not.
    pub async fn get(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::api_key(key_id);
        let map: HashMap<String, String> =
            side_runtime::run(async move { conn.hgetall(key).await }).await??;
        Ok(ApiKeyRecord::from_hash(key_id, &map))
    }

    /// Every key (of `owner` when given), oldest first.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<ApiKeyRecord>, QueueError> {
        let mut conn = self.conn.clone();
        let maps: Vec<(String, HashMap<String, String>)> = side_runtime::run(async move {
            let ids: Vec<String> = conn.smembers(keys::API_KEYS).await?;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(keys::api_key(id));
            }
            let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            Ok::<_, redis::RedisError>(ids.into_iter().zip(maps).collect())
        })
        .await??;
        let mut out: Vec<ApiKeyRecord> = maps
            .iter()
            .filter_map(|(id, map)| ApiKeyRecord::from_hash(id, map))
            .filter(|r| owner.is_none_or(|o| r.owner == o))
            .collect();
        out.sort_by(|a, b| (a.created_ms, &a.key_id).cmp(&(b.created_ms, &b.key_id)));
        Ok(out)
    }

    /// Revoke `key_id` (idempotent).
    pub async fn revoke(&self, key_id: &str) -> Result<Revoked, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::api_key(key_id);
        let done: i64 = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(REVOKE)
                .arg(1)
                .arg(&key)
                .arg(now_ms())
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(match done {
            0 => Revoked::NoSuchKey,
            2 => Revoked::Already,
            _ => Revoked::Now,
        })
    }

    /// The caller a bearer token stands for; `None` when it is malformed, unknown, revoked or
    /// does not match its record's hash (one answer for all, so a client learns nothing about
    /// which key ids exist).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, QueueError> {
        let Some(parsed) = ApiToken::parse(token) else {
            return Ok(None);
        };
        let Some(record) = self.get(parsed.key_id()).await? else {
            return Ok(None);
        };
        if record.is_revoked() || !parsed.matches(&record.hash) {
            return Ok(None);
        }
        Ok(Some(Caller {
            owner: record.owner,
            role: record.role,
            key_id: Some(record.key_id),
        }))
    }
}
