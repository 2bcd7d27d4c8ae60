//! Version numbers of a video: the next one is one above both the latest in Redis and the
//! floor kept in the object store (`keys::version_floor`). Redis alone is not enough: after it
//! loses its data the numbering would restart at 1, and edges would serve the old version's
//! year-cached segments under the new version's names. The store is the durable side; the floor
//! is written before the version is used anywhere.
//!
//! [`check_target`] decides whether a caller may add a version to a video (an upload with
//! `video_id` in its tus metadata): checked when the upload is created and again when it
//! finishes.

use bytes::Bytes;
use ringcast_proto::auth::{Caller, ANONYMOUS_OWNER};
use ringcast_proto::keys;

use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;

/// May `caller` upload a new version of `video`? Returns the video's owner. 400 for an id that
/// cannot be a video, 404 for an unknown video, 403 unless the caller owns it (or is an admin).
pub async fn check_target(app: &App, caller: &Caller, video: &str) -> Result<String, IngestError> {
    if !keys::is_valid_id(video) {
        return Err(IngestError::BadRequest(format!(
            "video_id {video:?} is not a video id (1-64 characters of [A-Za-z0-9_-])"
        )));
    }
    let hash = with_timeout(app.queue.video(video)).await?;
    if hash.is_empty() {
        return Err(IngestError::NotFound(format!("video {video}")));
    }
    let owner = hash.get("owner").map(String::as_str);
    if !caller.may_change(owner) {
        return Err(IngestError::Forbidden(format!(
            "video {video} belongs to another owner; only its owner (or an admin) may upload a new version"
        )));
    }
    Ok(owner.unwrap_or(ANONYMOUS_OWNER).to_string())
}

/// Choose and reserve the next version of `video_id`.
pub async fn next_version(app: &App, video_id: &str) -> Result<u32, IngestError> {
    let video = with_timeout(app.queue.video(video_id)).await?;
    let in_redis = video
        .get("latest_version")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let floor_key = keys::version_floor(video_id);
    let in_store = match app.store.get(&floor_key).await? {
        Some(text) => parse_floor(&text).ok_or_else(|| IngestError::CorruptState {
            id: video_id.to_string(),
            message: format!("{floor_key} does not hold a version number"),
        })?,
        None => 0,
    };
    let next = next_after(in_redis, in_store);
    app.store
        .put(
            &floor_key,
            Bytes::from(next.to_string()),
            "text/plain; charset=utf-8",
        )
        .await?;
    if in_store > in_redis {
        tracing::warn!(
            video = video_id,
            in_redis,
            in_store,
            next,
            "Redis is behind the store's version floor (data lost?); numbering continues from the store"
        );
    }
    Ok(next)
}

fn parse_floor(text: &[u8]) -> Option<u32> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The version after the highest one either side knows.
fn next_after(in_redis: u32, in_store: u32) -> u32 {
    in_redis.max(in_store).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_higher_side_wins() {
        assert_eq!(next_after(0, 0), 1);
        assert_eq!(next_after(3, 0), 4);
        // Redis lost its data: the store's floor keeps the numbering going.
        assert_eq!(next_after(0, 7), 8);
    }

    #[test]
    fn floors_parse_strictly() {
        assert_eq!(parse_floor(b"12\n"), Some(12));
        assert_eq!(parse_floor(b"x"), None);
        assert_eq!(parse_floor(b"-1"), None);
        assert_eq!(parse_floor(&[0xff]), None);
    }
}
