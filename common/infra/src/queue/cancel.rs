//! Operator cancel of a job, and clearing what a stopped VOD attempt left in Redis.
//!
//! The contract with `ringcast-transcoder jobs cancel ID`: it sets field
//! [`CANCEL_REQUESTED_FIELD`] = `"1"` in the job hash `rc:job:{id}` ([`Queue::request_cancel`], in `admin`).
//! Workers read it ([`Queue::cancel_requested`]) when they pick a job up and, while it runs,
//! every `cancel_check_ms`; they end it in state `cancelled`. The flag is a field of the job hash
//! rather than a message so that it reaches a job wherever it is: queued, running on any worker,
//! or redelivered after a crash.

use redis::AsyncCommands;
use ringcast_proto::job::CANCEL_REQUESTED_FIELD;
use ringcast_proto::keys;
use ringcast_proto::live::events_stream_key;

use super::{Queue, QueueError};
use crate::side_runtime;

impl Queue {
    /// Whether an operator asked for job `job_id` to be cancelled.
    pub async fn cancel_requested(&self, job_id: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::job_state(job_id);
        let flag: Option<String> =
            side_runtime::run(async move { conn.hget(key, CANCEL_REQUESTED_FIELD).await })
                .await??;
        Ok(flag.as_deref() == Some("1"))
    }

    /// Remove the progressive-playback state of VOD version `video`/`version`: the event
    /// streams of `renditions` and `rc:live:{video}:{version}` (its `playlist_type`). Without
    /// this an edge would keep showing a stopped attempt as an EVENT playlist still being
    /// transcoded. Not for live streams, whose viewers keep what was published.
    pub async fn discard_version_events(
        &self,
        video: &str,
        version: u32,
        renditions: &[String],
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut doomed: Vec<String> = renditions
            .iter()
            .map(|r| events_stream_key(video, version, r))
            .collect();
        doomed.push(keys::live_stream(video, version));
        side_runtime::run(async move { conn.del::<_, ()>(doomed).await }).await??;
        Ok(())
    }
}
