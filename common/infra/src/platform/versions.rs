//! Versions of a video, duplicate sources and upload progress in Redis (the pure rules are in
//! [`ringcast_proto::versions`] and [`ringcast_proto::progress`]):
//!
//! - `rc:video:{id}:versions` (hash): field `{version}` = the version's JSON record, field
//!   `{version}:state` = the state its job ended in (written by the queue's end-of-job script);
//! - `rc:sha256:{owner}:{hex}` (string) = the video id whose source had those bytes, for the
//!   owner's duplicate uploads; the video hash's `source_sha256` names the latest one;
//! - `rc:video:{id}:upload` (hash, with a TTL) = the upload in progress for the video, for the
//!   progress stream;
//! - `current_version` of the video hash, changed by a rollback with a compare-and-set.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use ringcast_proto::auth::ANONYMOUS_OWNER;
use ringcast_proto::job::{now_ms, JobState, JobStatus};
use ringcast_proto::keys;
use ringcast_proto::progress::UploadProgress;
use ringcast_proto::versions::{record_field, state_field, VersionRecord};

use crate::queue::{status_from_hash, Queue, QueueError};
use crate::side_runtime;

/// How long an upload's progress hash lives after its last update (an abandoned upload's entry
/// goes away by itself).
pub const UPLOAD_PROGRESS_TTL_SECS: u64 = 86_400;
/// How long the outcome of an upload that ended without a job (refused, duplicate) stays
/// readable by a progress stream.
pub const UPLOAD_OUTCOME_TTL_SECS: u64 = 600;

/// Sets `current_version` to ARGV[2] only if it is still ARGV[1] ('' = absent); returns
/// `{1, old}` or `{0, actual}`.
const SET_CURRENT_IF: &str = r"
local cur = redis.call('HGET', KEYS[1], 'current_version') or ''
if cur ~= ARGV[1] then return {0, cur} end
redis.call('HSET', KEYS[1], 'current_version', ARGV[2], 'updated_ms', ARGV[3])
return {1, cur}
";

/// One version as listed: its record and what is known of its state.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub record: VersionRecord,
    /// The job hash, while it exists.
    pub job: Option<JobStatus>,
    /// The state the job ended in, recorded beside the record.
    pub ended: Option<JobState>,
}

/// Versions, dedup entries and upload progress. Cheap to clone.
#[derive(Clone)]
pub struct Versions {
    conn: ConnectionManager,
}

impl Versions {
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
        }
    }

    /// Keep `record` as version `record.version` of `video` (owned by `owner`), note its
    /// source hash on the video and point the owner's dedup entry for those bytes at it.
    /// Safe to repeat.
    pub async fn record(
        &self,
        video: &str,
        owner: &str,
        record: &VersionRecord,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (versions, video_key, dedup) = (
            keys::video_versions(video),
            keys::video(video),
            keys::sha256(owner, &record.source_sha256),
        );
        let (field, json, sha, id) = (
            record_field(record.version),
            record.to_json(),
            record.source_sha256.clone(),
            video.to_string(),
        );
        side_runtime::run(async move {
            redis::pipe()
                .atomic()
                .hset(&versions, &field, &json)
                .ignore()
                .hset(&video_key, "source_sha256", &sha)
                .ignore()
                .set(&dedup, &id)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok(())
    }

    /// Every version of `video` with what is known of its state, newest first.
    pub async fn list(&self, video: &str) -> Result<Vec<VersionEntry>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video_versions(video);
        let (map, jobs) = side_runtime::run(async move {
            let map: HashMap<String, String> = conn.hgetall(&key).await?;
            let records: Vec<VersionRecord> = map
                .iter()
                .filter(|(k, _)| k.parse::<u32>().is_ok())
                .filter_map(|(_, v)| VersionRecord::from_json(v))
                .collect();
            let mut pipe = redis::pipe();
            for r in &records {
                pipe.hgetall(keys::job_state(&r.job_id));
            }
            let jobs: Vec<HashMap<String, String>> = if records.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            Ok::<_, redis::RedisError>((map, records.into_iter().zip(jobs).collect::<Vec<_>>()))
        })
        .await??;
        let mut out: Vec<VersionEntry> = jobs
            .into_iter()
            .map(|(record, job)| {
                let ended = map
                    .get(&state_field(record.version))
                    .and_then(|s| JobState::parse(s));
                VersionEntry {
                    job: status_from_hash(&job),
                    ended,
                    record,
                }
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.record.version));
        Ok(out)
    }

    /// The video `owner` already has with source bytes `sha256`, if it still exists and is
    /// still `owner`'s (a stale entry of a deleted video is ignored).
    pub async fn duplicate_of(
        &self,
        owner: &str,
        sha256: &str,
    ) -> Result<Option<String>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::sha256(owner, sha256);
        let owner = owner.to_string();
        let found = side_runtime::run(async move {
            let Some(video): Option<String> = conn.get(&key).await? else {
                return Ok::<_, redis::RedisError>(None);
            };
            if !keys::is_valid_id(&video) {
                return Ok(None);
            }
            let fields: (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(keys::video(&video))
                .arg("owner")
                .arg("latest_job")
                .query_async(&mut conn)
                .await?;
            let same_owner = match &fields.0 {
                Some(o) => *o == owner,
                // A video made before owners existed is the anonymous owner's.
                None => fields.1.is_some() && owner == ANONYMOUS_OWNER,
            };
            Ok(same_owner.then_some(video))
        })
        .await??;
        Ok(found)
    }

    /// Set `current_version` of `video` to `new` if it is still `expected`; `Err(actual)` when
    /// something else changed it in between.
    pub async fn set_current_if(
        &self,
        video: &str,
        expected: Option<u32>,
        new: u32,
    ) -> Result<Result<(), Option<u32>>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video(video);
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let (ok, actual): (i64, String) = side_runtime::run(async move {
            redis::cmd("EVAL")
                .arg(SET_CURRENT_IF)
                .arg(1)
                .arg(&key)
                .arg(&expected)
                .arg(new)
                .arg(now_ms())
                .query_async(&mut conn)
                .await
        })
        .await??;
        Ok(if ok == 1 {
            Ok(())
        } else {
            Err(actual.parse().ok())
        })
    }

    /// Record the progress of the upload in progress for `video` (refreshing its TTL).
    pub async fn set_upload_progress(
        &self,
        video: &str,
        owner: &str,
        progress: &UploadProgress,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video_upload(video);
        let fields = [
            ("upload_id", progress.upload_id.clone()),
            ("owner", owner.to_string()),
            ("offset", progress.offset.to_string()),
            ("length", progress.length.to_string()),
            ("updated_ms", now_ms().to_string()),
        ];
        side_runtime::run(async move {
            redis::pipe()
                .atomic()
                .hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, UPLOAD_PROGRESS_TTL_SECS as i64)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok(())
    }

    /// The upload of `video` ended: with a job (`outcome` `None`: the entry goes, the job takes
    /// over) or without one (`outcome` kept for [`UPLOAD_OUTCOME_TTL_SECS`]).
    pub async fn end_upload(
        &self,
        video: &str,
        upload_id: &str,
        outcome: Option<&str>,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video_upload(video);
        let (upload_id, outcome) = (upload_id.to_string(), outcome.map(str::to_string));
        side_runtime::run(async move {
            // Only this upload's entry: another upload of the video may have started since.
            let current: Option<String> = conn.hget(&key, "upload_id").await?;
            if current.as_deref().is_some_and(|c| c != upload_id) {
                return Ok(());
            }
            match outcome {
                None => conn.del::<_, ()>(&key).await,
                Some(o) => {
                    redis::pipe()
                        .atomic()
                        .hset(&key, "upload_id", &upload_id)
                        .ignore()
                        .hset(&key, "outcome", o)
                        .ignore()
                        .expire(&key, UPLOAD_OUTCOME_TTL_SECS as i64)
                        .ignore()
                        .query_async::<()>(&mut conn)
                        .await
                }
            }
        })
        .await??;
        Ok(())
    }

    /// What a progress stream needs in one round trip: the video hash, the upload in progress
    /// (if any) and the latest job's hash.
    pub async fn progress_snapshot(
        &self,
        video: &str,
    ) -> Result<
        (
            HashMap<String, String>,
            Option<UploadProgress>,
            Option<JobStatus>,
        ),
        QueueError,
    > {
        let mut conn = self.conn.clone();
        let (video_key, upload_key) = (keys::video(video), keys::video_upload(video));
        let (video_map, upload_map, job_map) = side_runtime::run(async move {
            let (video_map, upload_map): (HashMap<String, String>, HashMap<String, String>) =
                redis::pipe()
                    .hgetall(&video_key)
                    .hgetall(&upload_key)
                    .query_async(&mut conn)
                    .await?;
            let job_map: HashMap<String, String> = match video_map.get("latest_job") {
                Some(job) => conn.hgetall(keys::job_state(job)).await?,
                None => HashMap::new(),
            };
            Ok::<_, redis::RedisError>((video_map, upload_map, job_map))
        })
        .await??;
        Ok((
            video_map,
            upload_from_hash(&upload_map),
            status_from_hash(&job_map),
        ))
    }

    /// The owner recorded with the upload in progress for `video` (before the video exists).
    pub async fn upload_owner(&self, video: &str) -> Result<Option<String>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video_upload(video);
        Ok(side_runtime::run(async move { conn.hget(&key, "owner").await }).await??)
    }
}

fn upload_from_hash(map: &HashMap<String, String>) -> Option<UploadProgress> {
    Some(UploadProgress {
        upload_id: map.get("upload_id")?.clone(),
        offset: map.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0),
        length: map.get("length").and_then(|v| v.parse().ok()).unwrap_or(0),
        outcome: map.get("outcome").cloned(),
    })
}
