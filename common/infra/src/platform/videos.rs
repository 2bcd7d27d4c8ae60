//! Videos and their owners in Redis: the video hash `rc:video:{id}` (fields `owner`, `title`,
//! `created_ms`, `updated_ms` beside the job fields the queue keeps) and each owner's listing,
//! the sorted set `rc:owner:{owner}:videos` (score `created_ms`, member the video id), so an
//! owner's videos are listed newest first without SCAN.
//!
//! The videos API reads and changes them here: a page of the listing ([`Videos::page`], one
//! script call), the hashes and job states of a page ([`Videos::hashes`],
//! [`Videos::job_statuses`], one pipeline each: no round trip per item), an update of the
//! user's fields ([`Videos::update`]) and the removal of every key of a video
//! ([`Videos::delete`]).

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use ringcast_proto::job::JobStatus;
use ringcast_proto::keys;
use ringcast_proto::videos::Cursor;

use crate::queue::{status_from_hash, Queue, QueueError};
use crate::side_runtime;

/// Records a video the first time one of its versions is stored: the owner, title and
/// creation time never change afterwards (`HSETNX`), the listing entry is added once. A video
/// that already belongs to another owner is left alone (-1). Both keys are passed in `KEYS`.
const REGISTER: &str = r"
if redis.call('HSETNX', KEYS[1], 'owner', ARGV[1]) == 0 and
   redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return -1
end
local created = redis.call('HSETNX', KEYS[1], 'created_ms', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'title', ARGV[3]) end
redis.call('HSET', KEYS[1], 'updated_ms', ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', redis.call('HGET', KEYS[1], 'created_ms'), ARGV[4])
return created
";

/// A page of an owner's listing, newest first, from just after a cursor position. Equal
/// scores come in descending id order (ZREVRANGEBYSCORE's order); the ids are compared bytewise
/// here (Lua's `<` on strings follows the server's locale). Reads batches until it has
/// `ARGV[3]` items or the set is exhausted; only the items that share the cursor's score and
/// sort before it are read and skipped.
const PAGE: &str = r"
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local want = tonumber(ARGV[3])
local cid = ARGV[2]
local cscore = tonumber(ARGV[1])
local out = {}
local offset = 0
while #out < want * 2 do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES',
    'LIMIT', offset, want)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    if cid == '' or tonumber(score) < cscore or before(id, cid) then
      out[#out + 1] = id
      out[#out + 1] = score
      if #out >= want * 2 then break end
    end
  end
  offset = offset + #batch / 2
end
return out
";

/// Set user fields of an existing video (never re-creates a deleted one). ARGV: field, value
/// pairs.
const UPDATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
";

/// Remove a video's keys: KEYS[1] its hash, KEYS[2] its owner's listing, KEYS[3] its dedup
/// entry (when ARGV[3] is '1'), KEYS[4..] deleted outright (versions, live bookkeeping).
/// ARGV[1] the id, ARGV[2] the owner the caller checked (the hash's `owner`, or
/// 'anonymous' for a video without one): a video whose owner changed meanwhile is left alone
/// (-1). The dedup entry goes only if it names this video (a string equal to the id, or hash
/// fields whose value is the id).
const DELETE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner') or 'anonymous'
if owner ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == '1' and redis.call('TYPE', KEYS[3])['ok'] == 'string'
   and redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
end
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
return 1
";

/// Live versions whose bookkeeping keys a delete removes at most (the newest ones).
const MAX_LIVE_KEYS: u32 = 1000;

/// What [`Videos::delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Now,
    /// No such video (already deleted).
    Missing,
    /// Its owner is not the one the caller checked; nothing changed.
    OtherOwner,
}

/// What [`Videos::register`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new video, now `owner`'s.
    New,
    /// The video existed and is `owner`'s.
    Existing,
    /// The video belongs to someone else; nothing changed.
    OtherOwner,
}

/// The platform's videos. Cheap to clone.
#[derive(Clone)]
pub struct Videos {
    conn: ConnectionManager,
}

impl Videos {
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
        }
    }

    /// Record that a version of `video`, owned by `owner`, was stored (at `now_ms`): a new
    /// video gets its owner, title and creation time and joins the owner's listing; an
    /// existing one keeps them. Safe to repeat.
    pub async fn register(
        &self,
        video: &str,
        owner: &str,
        title: &str,
        now_ms: u64,
    ) -> Result<Registered, QueueError> {
        let mut conn = self.conn.clone();
        let (key, listing, owner, title, video) = (
            keys::video(video),
            keys::owner_videos(owner),
            owner.to_string(),
            title.to_string(),
            video.to_string(),
        );
        let created: i64 = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(REGISTER)
                .arg(2)
                .arg(&key)
                .arg(&listing)
                .arg(&owner)
                .arg(now_ms)
                .arg(&title)
                .arg(&video)
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(match created {
            1 => Registered::New,
            -1 => Registered::OtherOwner,
            _ => Registered::Existing,
        })
    }

    /// Record that `version` of `video` lasts `duration_ms` (from the ingest's probe of its
    /// source), in field [`keys::duration_field`].
    pub async fn record_duration(
        &self,
        video: &str,
        version: u32,
        duration_ms: u64,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (key, field) = (keys::video(video), keys::duration_field(version));
        side_runtime::run(async move {
            redis::cmd("HSET")
                .arg(&key)
                .arg(&field)
                .arg(duration_ms)
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok(())
    }

    /// Up to `limit` of `owner`'s videos after `after` (from the newest without one), newest
    /// first, as `(id, created_ms)`, and whether more follow.
    pub async fn page(
        &self,
        owner: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<(String, u64)>, bool), QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::owner_videos(owner);
        let (max, cid) = match after {
            Some(c) => (c.score.to_string(), c.id.clone()),
            None => ("+inf".to_string(), String::new()),
        };
        let want = limit + 1;
        let flat: Vec<String> = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(PAGE)
                .arg(1)
                .arg(&key)
                .arg(&max)
                .arg(&cid)
                .arg(want)
                .query_async(&mut conn)
                .await
        })
        .await??;
        let mut items: Vec<(String, u64)> = flat
            .chunks_exact(2)
            .map(|p| (p[0].clone(), parse_score(&p[1])))
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok((items, more))
    }

    /// The hashes of `videos`, in order (empty for one that does not exist), in one pipeline.
    pub async fn hashes(
        &self,
        videos: &[String],
    ) -> Result<Vec<HashMap<String, String>>, QueueError> {
        if videos.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = videos.iter().map(|v| keys::video(v)).collect();
        Ok(side_runtime::run(async move {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.hgetall(k);
            }
            pipe.query_async(&mut conn).await
        })
        .await??)
    }

    /// The states of `jobs`, in order (`None` for an unknown or expired job), in one pipeline.
    pub async fn job_statuses(
        &self,
        jobs: &[String],
    ) -> Result<Vec<Option<JobStatus>>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = jobs.iter().map(|j| keys::job_state(j)).collect();
        let maps: Vec<HashMap<String, String>> = side_runtime::run(async move {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.hgetall(k);
            }
            pipe.query_async(&mut conn).await
        })
        .await??;
        Ok(maps.iter().map(status_from_hash).collect())
    }

    /// Set the user fields `fields` of `video` and its `updated_ms`; `false` when the video
    /// does not exist (nothing is written then).
    pub async fn update(
        &self,
        video: &str,
        fields: &[(&str, String)],
        now_ms: u64,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video(video);
        let mut args: Vec<String> = Vec::with_capacity(fields.len() * 2 + 2);
        for (f, v) in fields {
            args.push((*f).to_string());
            args.push(v.clone());
        }
        args.push("updated_ms".into());
        args.push(now_ms.to_string());
        let done: i64 = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(UPDATE)
                .arg(1)
                .arg(&key)
                .arg(&args)
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(done == 1)
    }

    /// Remove every Redis key of `video` at once: its hash, its listing entry, its versions
    /// record, its upload-in-progress record, the live bookkeeping of its versions up to `latest_version` (the newest
    /// [`MAX_LIVE_KEYS`]), and the dedup entry of `source_sha256` if that entry names it.
    /// `owner` is the owner the caller checked (`anonymous` for a video without one).
    pub async fn delete(
        &self,
        video: &str,
        owner: &str,
        latest_version: u32,
        source_sha256: Option<&str>,
    ) -> Result<Deleted, QueueError> {
        let mut conn = self.conn.clone();
        let sha =
            source_sha256.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()));
        let mut all_keys = vec![
            keys::video(video),
            keys::owner_videos(owner),
            keys::sha256(owner, sha.unwrap_or("none")),
            keys::video_versions(video),
            keys::video_upload(video),
        ];
        let first_live = latest_version.saturating_sub(MAX_LIVE_KEYS - 1).max(1);
        all_keys.extend((first_live..=latest_version).map(|v| keys::live_stream(video, v)));
        let args = [
            video.to_string(),
            owner.to_string(),
            if sha.is_some() { "1" } else { "0" }.to_string(),
        ];
        let done: i64 = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(DELETE)
                .arg(all_keys.len())
                .arg(&all_keys)
                .arg(&args)
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(match done {
            1 => Deleted::Now,
            -1 => Deleted::OtherOwner,
            _ => Deleted::Missing,
        })
    }

    /// Register many videos at once (one pipeline of [`register`](Self::register)'s script):
    /// `(video, owner, title, created_ms)`. For seeding benchmarks and tests.
    pub async fn register_many(
        &self,
        videos: Vec<(String, String, String, u64)>,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        side_runtime::run(async move {
            for chunk in videos.chunks(1000) {
                let mut pipe = redis::pipe();
                for (video, owner, title, created) in chunk {
                    pipe.cmd("EVAL")
                        .arg(REGISTER)
                        .arg(2)
                        .arg(keys::video(video))
                        .arg(keys::owner_videos(owner))
                        .arg(owner)
                        .arg(*created)
                        .arg(title)
                        .arg(video)
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            Ok::<_, redis::RedisError>(())
        })
        .await??;
        Ok(())
    }
}

/// A score as Redis prints it (`1700000000123`, or in exponent form for huge values).
fn parse_score(s: &str) -> u64 {
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().map(|f| f as u64))
        .unwrap_or(0)
}
