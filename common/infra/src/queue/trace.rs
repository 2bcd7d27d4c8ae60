//! Where the edge finds an upload's trace: the `traceparent` of the latest job span in the
//! video hash (`ringcast_proto::trace_context::VIDEO_FIELD`). Written only by a transcoder that
//! exports spans, so tracing off costs no Redis write.

use ringcast_proto::keys;
use ringcast_proto::trace_context::VIDEO_FIELD;

use super::{Queue, QueueError};
use crate::side_runtime;

impl Queue {
    /// Record `traceparent` as the trace of `video`'s latest job.
    pub async fn record_traceparent(
        &self,
        video: &str,
        traceparent: &str,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (key, tp) = (keys::video(video), traceparent.to_string());
        side_runtime::run(async move {
            redis::cmd("HSET")
                .arg(key)
                .arg(VIDEO_FIELD)
                .arg(tp)
                .query_async::<()>(&mut conn)
                .await
        })
        .await??;
        Ok(())
    }
}
