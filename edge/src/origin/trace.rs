//! The edge's part of an upload's trace: its first origin fetch of each video becomes a span
//! (`edge.origin.fetch`), the child of the video's latest transcode job span (the `traceparent`
//! a transcoder records in `rc:video:{id}`; a new trace when there is none). Only with span
//! export on (`[telemetry] otlp_endpoint`) and Redis configured; otherwise [`fetch`] is the
//! plain origin fetch. "First" is per process, remembered for up to [`MAX_VIDEOS`] videos (then
//! forgotten all at once), so a video's later misses cost no Redis read.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use ringcast_infra::side_runtime;
use ringcast_infra::trace_export::{self, Span};
use ringcast_proto::keys;
use ringcast_proto::trace_context::{SpanKind, VIDEO_FIELD};

use crate::error::EdgeError;
use crate::origin::Origin;

/// Videos remembered as traced before the set is cleared.
pub const MAX_VIDEOS: usize = 10_000;
/// Bound on the Redis read of a video's `traceparent` (on a miss only; then no parent).
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(500);

struct Tracer {
    redis: ConnectionManager,
    traced: Mutex<HashSet<String>>,
}

static TRACER: OnceLock<Tracer> = OnceLock::new();

/// Turn origin-fetch spans on when spans are exported; `redis_url` holds the video hashes.
pub fn init(redis_url: &str) -> Result<(), String> {
    if !trace_export::enabled() || TRACER.get().is_some() {
        return Ok(());
    }
    let redis = ringcast_infra::lazy_redis::connect(redis_url, LOOKUP_TIMEOUT)
        .map_err(|e| format!("redis.url: {e}"))?;
    let _ = TRACER.set(Tracer {
        redis,
        traced: Mutex::new(HashSet::new()),
    });
    Ok(())
}

/// The video of an object key `v/{video}/…`.
fn video_of(key: &str) -> Option<&str> {
    key.strip_prefix("v/")?
        .split('/')
        .next()
        .filter(|v| keys::is_valid_id(v))
}

impl Tracer {
    /// True the first time `video` is seen (until the set is cleared).
    fn first(&self, video: &str) -> bool {
        let mut set = self.traced.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= MAX_VIDEOS {
            set.clear();
        }
        set.insert(video.to_string())
    }

    async fn traceparent(&self, video: &str) -> Option<String> {
        let mut conn = self.redis.clone();
        let key = keys::video(video);
        let read = side_runtime::run(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(key).arg(VIDEO_FIELD);
            tokio::time::timeout(LOOKUP_TIMEOUT, cmd.query_async::<Option<String>>(&mut conn)).await
        });
        match read.await {
            Ok(Ok(Ok(tp))) => tp,
            _ => None,
        }
    }
}

/// `origin.fetch(key)`, as a span when it is this process's first fetch of the key's video.
pub async fn fetch(origin: &Origin, key: &str) -> Result<Option<Bytes>, EdgeError> {
    let (Some(tracer), Some(video)) = (TRACER.get(), video_of(key)) else {
        return origin.fetch(key).await;
    };
    if !tracer.first(video) {
        return origin.fetch(key).await;
    }
    let parent = tracer.traceparent(video).await;
    let mut span = Span::continue_from("edge.origin.fetch", SpanKind::Client, parent.as_deref());
    span.attr("video.id", video);
    span.attr("object.key", key);
    let fetched = origin.fetch(key).await;
    match &fetched {
        Ok(None) => span.attr("object.found", "false"),
        Ok(Some(_)) => span.attr("object.found", "true"),
        Err(e) => span.fail(e),
    }
    fetched
}

#[cfg(test)]
mod tests {
    use super::video_of;

    #[test]
    fn video_of_object_keys() {
        assert_eq!(video_of("v/abc/1/720p/seg1.m4s"), Some("abc"));
        assert_eq!(video_of("v/abc/master.m3u8"), Some("abc"));
        assert_eq!(video_of("sources/abc/1/source"), None);
        assert_eq!(video_of("v/a b/x"), None);
    }
}
