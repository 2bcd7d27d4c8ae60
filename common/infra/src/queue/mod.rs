//! Redis job queue and job state (DESIGN.md "Storage and keys").
//!
//! VOD jobs go to one stream per priority (`rc:jobs:{high,normal,low}`), live jobs to their
//! own stream `rc:jobs:live` ([`stream_for`]), all read by the consumer group `transcoders`
//! ([`consumer`]: a VOD worker reads only the VOD streams, a live slot only the live one) and
//! acknowledged with XACK once done or dead-lettered. Job state
//! and progress live in the hash `rc:job:{id}`; the video hash `rc:video:{id}` points at the
//! latest job and the current version. This file is the producer and job-state side;
//! [`inspect`] reads the queue for `/metrics` and the operator CLI, [`admin`] changes it on an
//! operator's request (re-queue, drop, cancel), [`retention`] bounds what it keeps (stream
//! trimming, DLQ length, job hash expiry).
//!
//! All Redis I/O runs on the tokio side runtime, so monoio services can call it too.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use ringcast_proto::job::{now_ms, JobState, JobStatus, TranscodeJob};
use ringcast_proto::keys;

use crate::live_events::fields::PUBLISHES_FIELD;
use crate::side_runtime;

pub mod admin;
mod cancel;
pub mod consumer;
mod error;
pub mod inspect;
pub mod retention;
mod trace;

pub use consumer::{
    all_streams, live_streams, stream_for, vod_streams, ClaimHeartbeat, Consumer, Delivery, Reclaim,
};
pub use error::QueueError;
pub use retention::RetentionConfig;

/// Producer side and job-state access. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    client: redis::Client,
    conn: ConnectionManager,
    retention: RetentionConfig,
}

impl Queue {
    /// Connect (on the side runtime) and make sure the consumer groups exist.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        let client = redis::Client::open(url)?;
        let c = client.clone();
        let conn = side_runtime::run(async move { c.get_connection_manager().await }).await??;
        let q = Self {
            client,
            conn,
            retention: RetentionConfig::default(),
        };
        q.ensure_groups().await?;
        Ok(q)
    }

    /// Use `retention` (job hash TTL, DLQ length, stream trimming) instead of the defaults.
    pub fn with_retention(mut self, retention: RetentionConfig) -> Self {
        self.retention = retention;
        self
    }

    /// The retention settings in force.
    pub fn retention(&self) -> &RetentionConfig {
        &self.retention
    }

    /// The shared, self-reconnecting connection (for [`crate::purge::publish`] and
    /// [`crate::platform`]).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn ensure_groups(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        side_runtime::run(async move { consumer::create_groups(&mut conn, &all_streams()).await })
            .await??;
        Ok(())
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        side_runtime::run(async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await??;
        Ok(())
    }

    /// Record the job as queued, point the video at it, then XADD it to its stream
    /// ([`stream_for`]: `rc:jobs:live` for a live job, its priority's stream otherwise).
    /// State first: a worker that picks the job up at once finds the hash already there.
    pub async fn enqueue(&self, job: &TranscodeJob) -> Result<String, QueueError> {
        self.enqueue_traced(job, None).await
    }

    /// [`Queue::enqueue`] with the W3C `traceparent` of the enqueuing span in the stream entry
    /// (field `traceparent`, beside `job`): the transcoder continues that trace. Outside the
    /// job JSON on purpose, so the job schema and older transcoders are unaffected.
    pub async fn enqueue_traced(
        &self,
        job: &TranscodeJob,
        traceparent: Option<String>,
    ) -> Result<String, QueueError> {
        let mut conn = self.conn.clone();
        let job = job.clone();
        let id = side_runtime::run(async move {
            let now = now_ms().to_string();
            let version = job.version.to_string();
            redis::pipe()
                .atomic()
                .hset_multiple(
                    keys::job_state(&job.job_id),
                    &[
                        ("job_id", job.job_id.as_str()),
                        ("video_id", job.video_id.as_str()),
                        ("version", version.as_str()),
                        ("state", JobState::Queued.as_str()),
                        ("progress", "0"),
                        ("updated_ms", now.as_str()),
                    ],
                )
                .ignore()
                .hset_multiple(
                    keys::video(&job.video_id),
                    &[
                        ("latest_job", job.job_id.as_str()),
                        ("latest_version", version.as_str()),
                    ],
                )
                .ignore()
                .query_async::<()>(&mut conn)
                .await?;
            let mut fields = vec![("job", job.to_json())];
            if let Some(tp) = traceparent {
                fields.push((ringcast_proto::trace_context::HEADER, tp));
            }
            conn.xadd::<_, _, _, _, String>(stream_for(&job), "*", &fields)
                .await
        })
        .await??;
        Ok(id)
    }

    /// Update a job's state and progress (0–100); `error` is stored for failed jobs.
    /// Reaching `done` also makes the job's version the video's current version. A state that
    /// ends the job ([`JobState::is_terminal`]) gives the job hash its TTL (`job_ttl_secs`) and
    /// copies the outcome into the video hash (`ended_*` fields, while the job is the video's
    /// latest), so the video's status outlives the job hash.
    pub async fn set_state(
        &self,
        job: &TranscodeJob,
        state: JobState,
        progress: f64,
        error: Option<&str>,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (job, error) = (job.clone(), error.map(str::to_string));
        let ttl = self.retention.job_ttl_secs;
        side_runtime::run(async move {
            if state.is_terminal() {
                return retention::end_job(&mut conn, &job, state, progress, error.as_deref(), ttl)
                    .await;
            }
            let key = keys::job_state(&job.job_id);
            let mut pipe = redis::pipe();
            pipe.atomic().hset_multiple(
                &key,
                &[
                    ("state", state.as_str().to_string()),
                    ("progress", format!("{progress:.1}")),
                    ("updated_ms", now_ms().to_string()),
                ],
            );
            if let Some(e) = &error {
                pipe.hset(&key, "error", e);
            }
            pipe.query_async::<()>(&mut conn).await
        })
        .await??;
        Ok(())
    }

    /// The job hash, or `None` for an unknown job.
    pub async fn job_status(&self, job_id: &str) -> Result<Option<JobStatus>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::job_state(job_id);
        let map: HashMap<String, String> =
            side_runtime::run(async move { conn.hgetall(key).await }).await??;
        Ok(status_from_hash(&map))
    }

    /// The video hash (`latest_job`, `latest_version`, `current_version`, …); empty when unknown.
    pub async fn video(&self, video_id: &str) -> Result<HashMap<String, String>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::video(video_id);
        Ok(side_runtime::run(async move { conn.hgetall(key).await }).await??)
    }

    /// Record that live stream `video`/`version` has had `publishes` publishers (2 and more
    /// after reconnects) in `rc:live:{video}:{version}` (expires after a day): the transcoder
    /// of the stream watches it to mark a discontinuity.
    pub async fn set_live_publishes(
        &self,
        video: &str,
        version: u32,
        publishes: u32,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::live_stream(video, version);
        side_runtime::run(async move {
            redis::pipe()
                .hset(&key, PUBLISHES_FIELD, publishes)
                .ignore()
                .expire(&key, 86_400)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok(())
    }

    /// Consumer `name` of the `transcoders` group reading `streams` (highest priority first:
    /// [`vod_streams`] or [`live_streams`]), with its own connection (a blocking XREADGROUP
    /// would stall every other command on a shared one). It reads new entries only;
    /// [`Consumer::reclaiming`] makes it take over abandoned ones (of its streams) too.
    pub async fn consumer(&self, name: &str, streams: Vec<String>) -> Result<Consumer, QueueError> {
        Consumer::connect(&self.client, name, streams, self.retention.dlq_maxlen).await
    }
}

pub(crate) fn status_from_hash(map: &HashMap<String, String>) -> Option<JobStatus> {
    let state = JobState::parse(map.get("state")?)?;
    Some(JobStatus {
        job_id: map.get("job_id").cloned().unwrap_or_default(),
        video_id: map.get("video_id").cloned().unwrap_or_default(),
        version: map.get("version").and_then(|v| v.parse().ok()).unwrap_or(0),
        state,
        progress: map
            .get("progress")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        error: map.get("error").cloned(),
        updated_ms: map
            .get("updated_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}
