//! What the queue keeps, and for how long (the `[queue]` section of the transcoder's config):
//!
//! - **Job streams** are trimmed by [`Queue::trim_streams`] (the transcoder runs it every
//!   `trim_interval_secs`), with `XTRIM … MINID ~ floor` where the floor
//!   ([`ringcast_proto::stream_id::trim_floor`]) is the oldest of: the group's oldest pending
//!   entry, the entry after its last-delivered-id, and now minus `keep_acked_secs`. So an entry
//!   still waiting for a worker or still running is never trimmed, whatever the backlog, and
//!   finished entries stay `keep_acked_secs` for inspection. `MAXLEN ~ n` on `XADD` was the
//!   other choice: it needs no periodic task, but a backlog longer than `n` (a burst of uploads
//!   with the workers down) would silently drop queued jobs.
//! - **The dead-letter stream** is capped at about `dlq_maxlen` entries (`XADD … MAXLEN ~` when
//!   dead-lettering): the oldest dead letters go first; their job hashes and video status keep
//!   the outcome.
//! - **Job hashes** `rc:job:{id}` get a TTL of `job_ttl_secs` when the job ends ([`JobState::is_terminal`]):
//!   done, failed (dead-lettered), or dropped by an operator. The outcome is copied into the
//!   video hash (`ended_job`, `ended_state`, `ended_progress`, `ended_error`, `ended_ms`) in the
//!   same script, while the job is still the video's `latest_job`, so `GET /v1/videos/{id}`
//!   still shows the state of a video whose job hash expired. A re-queued job loses its TTL.

use redis::aio::ConnectionManager;
use redis::streams::StreamInfoGroupsReply;
use redis::AsyncCommands;
use ringcast_proto::job::{now_ms, JobState, TranscodeJob};
use ringcast_proto::keys;
use ringcast_proto::stream_id::{trim_floor, GroupPosition, StreamId};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::queue::{all_streams, Queue, QueueError};
use crate::side_runtime;

/// The `[queue]` config section: retention of job streams, dead letters and job hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds a job hash `rc:job:{id}` lives after its job ended (done, failed, dropped).
    pub job_ttl_secs: u64,
    /// Approximate maximum length of the dead-letter stream `rc:jobs:dlq`.
    pub dlq_maxlen: usize,
    /// Seconds finished (acknowledged) entries stay in the job streams before trimming may
    /// remove them. Waiting and running entries are never trimmed.
    pub keep_acked_secs: u64,
    /// Seconds between two trims of the job streams (each transcoder process trims; trims
    /// are idempotent).
    pub trim_interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            job_ttl_secs: 7 * 86_400,
            dlq_maxlen: 10_000,
            keep_acked_secs: 86_400,
            trim_interval_secs: 60,
        }
    }
}

impl RetentionConfig {
    /// Reject values that would expire job state at once or never trim.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.job_ttl_secs == 0 || self.dlq_maxlen == 0 || self.trim_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "queue.job_ttl_secs, queue.dlq_maxlen and queue.trim_interval_secs must be > 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Record an ended job in one script: KEYS = job hash, video hash, the video's versions hash
/// (the version's record gets field `{version}:state` when the record is this job's,
/// `ringcast_proto::versions`); ARGV = job id, state,
/// progress, now (ms), whether an error is given, the error, TTL (s), version. See the module
/// doc for what it writes.
const END_JOB: &str = r"
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'progress', ARGV[3], 'updated_ms', ARGV[4])
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('EXPIRE', KEYS[1], ARGV[7])
-- A video deleted while its job ran stays deleted (no hash re-created with only this field).
if ARGV[2] == 'done' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'current_version', ARGV[8])
end
local rec = redis.call('HGET', KEYS[3], ARGV[8])
if rec then
  local ok, r = pcall(cjson.decode, rec)
  if ok and type(r) == 'table' and r['job_id'] == ARGV[1] then
    redis.call('HSET', KEYS[3], ARGV[8] .. ':state', ARGV[2])
  end
end
if redis.call('HGET', KEYS[2], 'latest_job') == ARGV[1] then
  redis.call('HSET', KEYS[2], 'ended_job', ARGV[1], 'ended_state', ARGV[2],
    'ended_progress', ARGV[3], 'ended_ms', ARGV[4])
  local err = redis.call('HGET', KEYS[1], 'error')
  if err then redis.call('HSET', KEYS[2], 'ended_error', err)
  else redis.call('HDEL', KEYS[2], 'ended_error') end
end
return 1
";

/// [`END_JOB`] for `job`.
pub(crate) async fn end_job(
    conn: &mut ConnectionManager,
    job: &TranscodeJob,
    state: JobState,
    progress: f64,
    error: Option<&str>,
    ttl_secs: u64,
) -> redis::RedisResult<()> {
    redis::cmd("EVAL")
        .arg(END_JOB)
        .arg(3)
        .arg(keys::job_state(&job.job_id))
        .arg(keys::video(&job.video_id))
        .arg(keys::video_versions(&job.video_id))
        .arg(&job.job_id)
        .arg(state.as_str())
        .arg(format!("{progress:.1}"))
        .arg(now_ms())
        .arg(if error.is_some() { "1" } else { "0" })
        .arg(error.unwrap_or(""))
        .arg(ttl_secs.max(1))
        .arg(job.version)
        .query_async::<i64>(conn)
        .await?;
    Ok(())
}

/// One stream's trim: where the floor was and how many entries went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    pub stream: String,
    /// `None`: no consumer group reads the stream, nothing was trimmed.
    pub floor: Option<StreamId>,
    pub removed: u64,
}

impl Queue {
    /// Trim every job stream down to its safe floor (see the module doc). Safe to run from
    /// several processes at once.
    pub async fn trim_streams(&self) -> Result<Vec<Trimmed>, QueueError> {
        let mut conn = self.conn.clone();
        let keep_ms = self.retention.keep_acked_secs.saturating_mul(1000);
        let out = side_runtime::run(async move {
            let mut out = Vec::new();
            for stream in all_streams() {
                let groups = group_positions(&mut conn, &stream).await?;
                let floor = trim_floor(&groups, now_ms(), keep_ms);
                let removed = match floor {
                    Some(f) if f > StreamId::ZERO => {
                        redis::cmd("XTRIM")
                            .arg(&stream)
                            .arg("MINID")
                            .arg("~")
                            .arg(f.to_string())
                            .query_async::<u64>(&mut conn)
                            .await?
                    }
                    _ => 0,
                };
                out.push(Trimmed {
                    stream,
                    floor,
                    removed,
                });
            }
            Ok::<_, redis::RedisError>(out)
        })
        .await??;
        Ok(out)
    }
}

/// Every group's position on `stream` (none when the stream does not exist).
pub(crate) async fn group_positions(
    conn: &mut ConnectionManager,
    stream: &str,
) -> redis::RedisResult<Vec<GroupPosition>> {
    let exists: bool = conn.exists(stream).await?;
    if !exists {
        return Ok(Vec::new());
    }
    let info: StreamInfoGroupsReply = conn.xinfo_groups(stream).await?;
    let mut out = Vec::new();
    for g in info.groups {
        let Some(last_delivered) = StreamId::parse(&g.last_delivered_id) else {
            // An id we cannot read: not knowing the group's position, keep everything.
            return Ok(Vec::new());
        };
        let oldest_pending = if g.pending == 0 {
            None
        } else {
            let (_, min, _, _): (u64, Option<String>, redis::Value, redis::Value) =
                redis::cmd("XPENDING")
                    .arg(stream)
                    .arg(&g.name)
                    .query_async(conn)
                    .await?;
            match min.as_deref().map(StreamId::parse) {
                Some(Some(id)) => Some(id),
                // Pending entries we cannot place: keep everything.
                _ => return Ok(Vec::new()),
            }
        };
        out.push(GroupPosition {
            last_delivered,
            oldest_pending,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_done_failed_and_cancelled_end_a_job() {
        assert!(!JobState::Queued.is_terminal());
        assert!(!JobState::Running.is_terminal());
        assert!(JobState::Done.is_terminal());
        assert!(JobState::Failed.is_terminal());
        assert!(JobState::Cancelled.is_terminal());
    }

    #[test]
    fn defaults_validate_and_zeroes_do_not() {
        RetentionConfig::default().validate().expect("defaults");
        let bad = RetentionConfig {
            dlq_maxlen: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
