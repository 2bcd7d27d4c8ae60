//! `DELETE /v1/videos/{id}`: remove a video for good; 204.
//!
//! In this order, each step safe to repeat (a failure answers 503, and a retry starts over
//! as long as the video hash exists, which goes last):
//! 1. its latest job, if still queued or running, is asked to stop (`request_cancel`; the
//!    worker removes its partial output);
//! 2. every object the edge serves (`v/{id}/…`: every version, the current pointer), then its
//!    sources (`sources/{id}/…`) — while the video hash still exists, so a private video is
//!    never served unsigned in between;
//! 3. a fleet-wide purge ([`PurgeMessage::video_deleted`]: the prefix `v/{id}/` and the id),
//!    so every edge drops what it cached and answers 404 from then on (before the Redis keys
//!    go, so a failed publish is retried by the client's retry);
//! 4. its Redis keys in one script ([`Videos::delete`]): the hash, its entry in the owner's
//!    listing, its versions record, its live bookkeeping, and the dedup entry of its
//!    `source_sha256` when that entry names it.
//!
//! The version floor `sources/{id}/latest-version` is kept (a few bytes): should the id ever
//! be given content again (ids are random, but the versions API takes an existing id) its
//! versions continue above the deleted ones, so no player or cache outside the fleet that
//! still holds a year-cached `v/{id}/{n}/…` object can mix it with new content under the same
//! name.

use ringcast_infra::platform::videos::{Deleted, Videos};
use ringcast_infra::purge;
use ringcast_infra::queue::admin::{AdminError, CancelRequest};
use ringcast_proto::auth::{Caller, ANONYMOUS_OWNER};
use ringcast_proto::keys;
use ringcast_proto::purge::PurgeMessage;
use ringcast_server::Response;

use crate::api::videos::{load, Access};
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;

pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<Response, IngestError> {
    let video = load(app, caller, id, Access::Change).await?;
    let owner = video
        .get("owner")
        .map_or(ANONYMOUS_OWNER, String::as_str)
        .to_string();
    if let Some(job) = video.get("latest_job") {
        match with_timeout(async { app.queue.request_cancel(job).await.map_err(admin) }).await {
            Ok(CancelRequest::Requested) => tracing::info!(video = id, job, "job cancelled"),
            Ok(CancelRequest::AlreadyEnded(_)) | Err(IngestError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let served = app.store.delete_prefix(&keys::video_prefix(id)).await?;
    let floor = keys::version_floor(id);
    let sources: Vec<String> = app
        .store
        .list(&keys::sources_prefix(id))
        .await?
        .into_iter()
        .filter(|k| *k != floor)
        .collect();
    let source_count = sources.len();
    app.store.delete_many(sources).await?;
    let edges = with_timeout(purge::publish(&app.queue, &PurgeMessage::video_deleted(id))).await?;
    let latest = video
        .get("latest_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let sha = video.get("source_sha256").map(String::as_str);
    // Before the video hash goes (a retry after a failure here still finds the video).
    crate::admission::quota::forget_video(app, &owner, id).await?;
    match with_timeout(Videos::new(&app.queue).delete(id, &owner, latest, sha)).await? {
        Deleted::Now | Deleted::Missing => {}
        Deleted::OtherOwner => {
            return Err(IngestError::Conflict(format!(
                "video {id} changed owner while it was being deleted"
            )))
        }
    }
    tracing::info!(
        video = id,
        objects = served,
        sources = source_count,
        edges,
        "video deleted"
    );
    Ok(Response::new(204).header("Cache-Control", "no-store"))
}

fn admin(e: AdminError) -> IngestError {
    match e {
        AdminError::NotFound(m) => IngestError::NotFound(m),
        AdminError::Refused(m) => IngestError::Conflict(m),
        AdminError::Queue(q) => IngestError::Queue(q),
    }
}
