//! Per-owner byte counters for upload quotas, in Redis, changed only by scripts so a check and
//! its update are one atomic step, and every update safe to repeat:
//!
//! - `rc:quota:owner:{owner}` (hash): `inflight` = the sum of the `Upload-Length`s of the owner's
//!   unfinished uploads, `stored` = the sum of the source sizes of the owner's videos' versions;
//! - `rc:quota:uploads:{owner}` (hash): upload id → its length, while it is in flight (so a
//!   release counts an upload once however often it is repeated);
//! - `rc:quota:video:{video}` (hash): version → its source's size (so a delete subtracts
//!   exactly what the video's versions added, and a repeated store adds nothing).

use redis::aio::ConnectionManager;

use crate::queue::{Queue, QueueError};
use crate::side_runtime;

/// Owner totals.
pub fn totals_key(owner: &str) -> String {
    format!("rc:quota:owner:{owner}")
}

/// An owner's uploads in flight.
pub fn uploads_key(owner: &str) -> String {
    format!("rc:quota:uploads:{owner}")
}

/// A video's stored versions.
pub fn video_key(video: &str) -> String {
    format!("rc:quota:video:{video}")
}

/// Reserve ARGV[2] bytes in flight for upload ARGV[1] unless a limit (ARGV[3] in flight,
/// ARGV[4] stored + in flight; 0 = none) would be passed. Returns `{1}` (reserved, or already
/// was) or `{0, which, would_be}` (1: in flight, 2: stored).
const RESERVE: &str = r"
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {1} end
local len = tonumber(ARGV[2])
local inflight = tonumber(redis.call('HGET', KEYS[1], 'inflight') or '0')
local stored = tonumber(redis.call('HGET', KEYS[1], 'stored') or '0')
local maxf, maxs = tonumber(ARGV[3]), tonumber(ARGV[4])
if maxf > 0 and inflight + len > maxf then return {0, 1, inflight + len} end
if maxs > 0 and stored + inflight + len > maxs then return {0, 2, stored + inflight + len} end
redis.call('HSET', KEYS[2], ARGV[1], len)
redis.call('HINCRBY', KEYS[1], 'inflight', len)
return {1}
";

/// Release upload ARGV[1]'s bytes in flight (KEYS[1] totals, KEYS[2] uploads), and when
/// ARGV[2] names a version, count ARGV[3] stored bytes for it (KEYS[3] the video owner's
/// totals, KEYS[4] the video's versions) once.
const SETTLE: &str = r"
local len = redis.call('HGET', KEYS[2], ARGV[1])
if len then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'inflight', -tonumber(len))
end
if ARGV[2] ~= '' and redis.call('HSETNX', KEYS[4], ARGV[2], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'stored', ARGV[3])
end
return 1
";

/// Forget a video's stored bytes (KEYS[1] its owner's totals, KEYS[2] its versions).
const FORGET_VIDEO: &str = r"
local sum = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(v) end
redis.call('DEL', KEYS[2])
if sum > 0 then redis.call('HINCRBY', KEYS[1], 'stored', -sum) end
return sum
";

/// Which limit a reservation would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    InFlight { would_be: u64 },
    Stored { would_be: u64 },
}

/// An owner's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub in_flight: u64,
    pub stored: u64,
}

/// The quota counters. Cheap to clone.
#[derive(Clone)]
pub struct Quotas {
    conn: ConnectionManager,
}

impl Quotas {
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
        }
    }

    async fn eval<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        let v = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(script)
                .arg(keys.len())
                .arg(&keys)
                .arg(&args)
                .query_async::<T>(&mut conn)
                .await
        })
        .await??;
        Ok(v)
    }

    /// Count `length` bytes in flight for `upload` of `owner`, unless that passes
    /// `max_in_flight` or `max_stored` (0 = no limit). Safe to repeat.
    pub async fn reserve(
        &self,
        owner: &str,
        upload: &str,
        length: u64,
        max_in_flight: u64,
        max_stored: u64,
    ) -> Result<Result<(), Over>, QueueError> {
        let reply: Vec<u64> = self
            .eval(
                RESERVE,
                vec![totals_key(owner), uploads_key(owner)],
                vec![
                    upload.to_string(),
                    length.to_string(),
                    max_in_flight.to_string(),
                    max_stored.to_string(),
                ],
            )
            .await?;
        Ok(match reply.as_slice() {
            [0, 1, n] => Err(Over::InFlight { would_be: *n }),
            [0, _, n] => Err(Over::Stored { would_be: *n }),
            _ => Ok(()),
        })
    }

    /// The upload ended: its bytes are no longer in flight; when it became version `version`
    /// of `video` (owned by `video_owner`), its `size` counts as stored. Safe to repeat.
    pub async fn settle(
        &self,
        owner: &str,
        upload: &str,
        stored: Option<(&str, &str, u32, u64)>,
    ) -> Result<(), QueueError> {
        let (vowner, video, version, size) = stored.unwrap_or((owner, "", 0, 0));
        let field = if video.is_empty() {
            String::new()
        } else {
            version.to_string()
        };
        let _: i64 = self
            .eval(
                SETTLE,
                vec![
                    totals_key(owner),
                    uploads_key(owner),
                    totals_key(vowner),
                    video_key(video),
                ],
                vec![upload.to_string(), field, size.to_string()],
            )
            .await?;
        Ok(())
    }

    /// `video` (owned by `owner`) is deleted: its stored bytes are freed. Returns them; safe to
    /// repeat (0 the second time).
    pub async fn forget_video(&self, owner: &str, video: &str) -> Result<u64, QueueError> {
        self.eval(
            FORGET_VIDEO,
            vec![totals_key(owner), video_key(video)],
            vec![],
        )
        .await
    }

    /// What `owner` uses now.
    pub async fn usage(&self, owner: &str) -> Result<Usage, QueueError> {
        let mut conn = self.conn.clone();
        let key = totals_key(owner);
        let (f, s): (Option<i64>, Option<i64>) = side_runtime::run(async move {
            redis::cmd("HMGET")
                .arg(&key)
                .arg("inflight")
                .arg("stored")
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(Usage {
            in_flight: f.unwrap_or(0).max(0) as u64,
            stored: s.unwrap_or(0).max(0) as u64,
        })
    }
}
