//! Operator actions on the queue (`ringcast-transcoder jobs requeue|drop|cancel`):
//!
//! - [`Queue::requeue`]: a dead-lettered job goes back to its stream as a new entry (so its
//!   delivery count starts again at 1), its hash back to `queued` (error and TTL removed), and
//!   its dead letters are deleted, in one transaction. Refused when the video has a newer
//!   version than the job (finishing it would make the old version current again) unless
//!   forced.
//! - [`Queue::drop_dead_letter`]: the dead letters are deleted; the job hash, if it still
//!   exists, stays `failed` (its error keeps the real reason), gets `dropped_ms` and its TTL.
//! - [`Queue::request_cancel`]: field `cancel_requested` = `1` in the job hash of a job that
//!   has not ended; the worker running it (or about to) acts on it.
//!
//! A dead letter is named by its job id (every dead letter of that job) or by its own entry id
//! in `rc:jobs:dlq` (`{ms}-{seq}`, for one whose payload names no job): [`DeadLetterRef`].

use ringcast_proto::job::{now_ms, JobState, CANCEL_REQUESTED_FIELD};
use ringcast_proto::keys;
use ringcast_proto::stream_id::StreamId;

use crate::queue::inspect::DeadLetter;
use crate::queue::{stream_for, Queue, QueueError};
use crate::side_runtime;

/// Dead letters read when looking one up: the whole stream at its default cap.
const DLQ_SCAN_LIMIT: usize = 100_000;

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<redis::RedisError> for AdminError {
    fn from(e: redis::RedisError) -> Self {
        Self::Queue(e.into())
    }
}

/// Which dead letters an operator means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterRef {
    /// Every dead letter whose payload is this job.
    Job(String),
    /// One entry of `rc:jobs:dlq`.
    Entry(String),
}

impl DeadLetterRef {
    /// `{ms}-{seq}` is an entry id; anything else must be a valid job id.
    pub fn parse(s: &str) -> Result<Self, AdminError> {
        if s.contains('-') && StreamId::parse(s).is_some() {
            return Ok(Self::Entry(s.to_string()));
        }
        if keys::is_valid_id(s) {
            return Ok(Self::Job(s.to_string()));
        }
        Err(AdminError::NotFound(format!(
            "{s:?} is neither a job id nor a dead-letter entry id"
        )))
    }

    fn matches(&self, d: &DeadLetter) -> bool {
        match self {
            Self::Entry(id) => d.entry_id == *id,
            Self::Job(id) => d.job.as_ref().is_ok_and(|j| j.job_id == *id),
        }
    }
}

impl std::fmt::Display for DeadLetterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Job(id) => write!(f, "job {id}"),
            Self::Entry(id) => write!(f, "dead-letter entry {id}"),
        }
    }
}

/// What [`Queue::requeue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub job_id: String,
    pub stream: String,
    /// The job's new entry in its stream.
    pub entry_id: String,
    /// Dead letters deleted.
    pub removed: Vec<String>,
}

/// What [`Queue::request_cancel`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelRequest {
    /// `cancel_requested` is set.
    Requested,
    /// The job has already ended (its state).
    AlreadyEnded(String),
}

/// Set `cancel_requested` unless the job hash is missing (returns `missing`) or its state ends
/// the job (returns the state; `cancelled` is the state the worker side records).
const REQUEST_CANCEL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' or state == 'failed' or state == 'cancelled' then return state end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 'requested'
";

/// Mark a dropped job's hash, if it still exists: `failed` unless it is `done`, `dropped_ms`,
/// TTL. KEYS = job hash; ARGV = now (ms), TTL (s).
const MARK_DROPPED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'done' then
  redis.call('HSET', KEYS[1], 'state', 'failed')
end
redis.call('HSET', KEYS[1], 'dropped_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

impl Queue {
    /// The dead letters `r` names; [`AdminError::NotFound`] when there are none.
    pub async fn find_dead_letters(
        &self,
        r: &DeadLetterRef,
    ) -> Result<Vec<DeadLetter>, AdminError> {
        let found: Vec<DeadLetter> = self
            .dead_letters(DLQ_SCAN_LIMIT)
            .await?
            .into_iter()
            .filter(|d| r.matches(d))
            .collect();
        if found.is_empty() {
            return Err(AdminError::NotFound(format!(
                "no dead letter for {r} (see `jobs list --dlq`)"
            )));
        }
        Ok(found)
    }

    /// Put a dead-lettered job back on its stream; see the module doc. `force` requeues an
    /// older version of a video that has a newer one.
    pub async fn requeue(&self, r: &DeadLetterRef, force: bool) -> Result<Requeued, AdminError> {
        let found = self.find_dead_letters(r).await?;
        // The newest dead letter carries the job as it was last queued.
        let job = match &found[0].job {
            Ok(job) => job.clone(),
            Err(e) => {
                return Err(AdminError::Refused(format!(
                    "{r} cannot be requeued: {e}; drop it instead"
                )))
            }
        };
        // Named by entry id: take every dead letter of the same job with it.
        let all = self
            .find_dead_letters(&DeadLetterRef::Job(job.job_id.clone()))
            .await?;
        let video = self.video(&job.video_id).await?;
        let latest = video
            .get("latest_version")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        if latest > job.version && !force {
            return Err(AdminError::Refused(format!(
                "video {} has version {latest}, newer than this job's version {}; finishing it \
                 would make version {} current again (--force to requeue anyway)",
                job.video_id, job.version, job.version
            )));
        }
        let removed: Vec<String> = all.iter().map(|d| d.entry_id.clone()).collect();
        let stream = stream_for(&job);
        let mut conn = self.conn.clone();
        let (job2, stream2, removed2) = (job.clone(), stream.clone(), removed.clone());
        let entry_id: String = side_runtime::run(async move {
            let key = keys::job_state(&job2.job_id);
            let version = job2.version.to_string();
            let now = now_ms().to_string();
            let (entry_id,): (String,) = redis::pipe()
                .atomic()
                .hset_multiple(
                    &key,
                    &[
                        ("job_id", job2.job_id.as_str()),
                        ("video_id", job2.video_id.as_str()),
                        ("version", version.as_str()),
                        ("state", JobState::Queued.as_str()),
                        ("progress", "0"),
                        ("updated_ms", now.as_str()),
                    ],
                )
                .ignore()
                .hdel(&key, &["error", "cancel_requested", "dropped_ms"])
                .ignore()
                .persist(&key)
                .ignore()
                .xadd(&stream2, "*", &[("job", job2.to_json())])
                .xdel(keys::JOB_DLQ, &removed2)
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(entry_id)
        })
        .await
        .map_err(QueueError::from)??;
        tracing::info!(job = %job.job_id, %stream, entry = %entry_id, ?removed, "requeued a dead-lettered job");
        Ok(Requeued {
            job_id: job.job_id,
            stream,
            entry_id,
            removed,
        })
    }

    /// Delete the dead letters `r` names and mark their job dropped; see the module doc.
    /// Returns the deleted entry ids.
    pub async fn drop_dead_letter(&self, r: &DeadLetterRef) -> Result<Vec<String>, AdminError> {
        let found = self.find_dead_letters(r).await?;
        let ids: Vec<String> = found.iter().map(|d| d.entry_id.clone()).collect();
        let job_ids: Vec<String> = found
            .iter()
            .filter_map(|d| d.job.as_ref().ok().map(|j| j.job_id.clone()))
            .collect();
        let ttl = self.retention.job_ttl_secs;
        let mut conn = self.conn.clone();
        let ids2 = ids.clone();
        side_runtime::run(async move {
            let mut pipe = redis::pipe();
            pipe.atomic().xdel(keys::JOB_DLQ, &ids2).ignore();
            for job_id in &job_ids {
                pipe.cmd("EVAL")
                    .arg(MARK_DROPPED)
                    .arg(1)
                    .arg(keys::job_state(job_id))
                    .arg(now_ms())
                    .arg(ttl.max(1))
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await
        })
        .await
        .map_err(QueueError::from)??;
        tracing::info!(%r, removed = ?ids, "dropped dead letters");
        Ok(ids)
    }

    /// Ask for job `job_id` to be cancelled; see the module doc.
    pub async fn request_cancel(&self, job_id: &str) -> Result<CancelRequest, AdminError> {
        if !keys::is_valid_id(job_id) {
            return Err(AdminError::NotFound(format!("{job_id:?} is not a job id")));
        }
        let mut conn = self.conn.clone();
        let key = keys::job_state(job_id);
        let answer: String = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(REQUEST_CANCEL)
                .arg(1)
                .arg(&key)
                .arg(CANCEL_REQUESTED_FIELD)
                .query_async(&mut conn)
                .await
        })
        .await
        .map_err(QueueError::from)??;
        match answer.as_str() {
            "requested" => Ok(CancelRequest::Requested),
            "missing" => Err(AdminError::NotFound(format!(
                "no job {job_id} (unknown, or its state expired)"
            ))),
            state => Ok(CancelRequest::AlreadyEnded(state.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_entry_ids_or_job_ids() {
        assert_eq!(
            DeadLetterRef::parse("1700000000000-0").expect("entry"),
            DeadLetterRef::Entry("1700000000000-0".into())
        );
        assert_eq!(
            DeadLetterRef::parse("6f1c2e9a-1b2c-4d5e-8f90-123456789abc").expect("uuid"),
            DeadLetterRef::Job("6f1c2e9a-1b2c-4d5e-8f90-123456789abc".into())
        );
        assert_eq!(
            DeadLetterRef::parse("job-7").expect("job"),
            DeadLetterRef::Job("job-7".into())
        );
        assert!(DeadLetterRef::parse("../x").is_err());
        assert!(DeadLetterRef::parse("").is_err());
    }
}
