//! Versions of a video and rollback (DESIGN.md "Versions and rollback"):
//!
//! - `GET /v1/videos/{id}/versions`: every stored version, newest first, with its state, which
//!   one is current and the versioned playback URL of each (`/v/{id}/{version}/master.m3u8`,
//!   playable whatever is current);
//! - `POST /v1/videos/{id}/rollback` `{"version": N}`: make published version N current. The
//!   current pointer `v/{id}/master.m3u8` is rewritten in place from N's own master (one PUT
//!   replaces the object; it is never deleted first, so a player never finds it missing), then
//!   `current_version` is set with a compare-and-set, then every edge is told to drop that one
//!   key (`PurgeMessage::current_master`). Concurrency rule ([`ringcast_proto::versions`]): a
//!   version still being transcoded wins — 409 while the latest job is queued or running, and
//!   a rollback that lost the race with a version becoming current repairs the pointer to that
//!   version and answers 409.

use ringcast_infra::platform::versions::{VersionEntry, Versions};
use ringcast_proto::auth::Caller;
use ringcast_proto::content_type;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_proto::playlist::parse_master;
use ringcast_proto::purge::PurgeMessage;
use ringcast_proto::versions::{
    check_rollback, parse_rollback_body, playback_path, version_state, RollbackFacts,
    RollbackRefusal,
};
use serde_json::{json, Value};

use crate::api::videos::ended_job_status;
use crate::api::videos::{self, Access};
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use ringcast_server::{Conn, Response};

/// Largest rollback body read (`{"version": N}` is a few bytes).
const MAX_BODY: usize = 1024;
/// Time a rollback body has to arrive.
const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

fn number(video: &std::collections::HashMap<String, String>, field: &str) -> Option<u32> {
    video.get(field).and_then(|v| v.parse().ok())
}

/// The state of a listed version.
fn entry_state(e: &VersionEntry) -> Option<JobState> {
    let live = e
        .job
        .as_ref()
        .filter(|j| j.job_id == e.record.job_id)
        .map(|j| j.state);
    version_state(live, e.ended)
}

/// `GET /v1/videos/{id}/versions`.
pub async fn list(app: &App, caller: &Caller, id: &str) -> Result<Response, IngestError> {
    let video = videos::load(app, caller, id, Access::Read).await?;
    let current = number(&video, "current_version");
    let entries = with_timeout(Versions::new(&app.queue).list(id)).await?;
    let body = versions_json(id, current, &entries);
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
}

/// The list body (see docs/api.md).
pub fn versions_json(id: &str, current: Option<u32>, entries: &[VersionEntry]) -> Value {
    let versions: Vec<Value> = entries
        .iter()
        .map(|e| {
            let r = &e.record;
            let progress = e
                .job
                .as_ref()
                .filter(|j| j.job_id == r.job_id)
                .map(|j| j.progress);
            json!({
                "version": r.version,
                "state": entry_state(e).map(JobState::as_str),
                "progress": progress,
                "current": current == Some(r.version),
                "job_id": r.job_id,
                "upload_id": r.upload_id,
                "source_sha256": r.source_sha256,
                "container": r.container.map(|c| c.as_str()),
                "created_ms": r.created_ms,
                "playback_url": playback_path(id, r.version),
            })
        })
        .collect();
    json!({ "video_id": id, "current_version": current, "versions": versions })
}

/// `POST /v1/videos/{id}/rollback` with `{"version": N}`.
pub async fn rollback(
    app: &App,
    caller: &Caller,
    id: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    let body = conn
        .read_to_end(MAX_BODY, BODY_TIME)
        .await
        .map_err(|e| IngestError::BadRequest(format!("rollback body: {e}")))?;
    let video = videos::load(app, caller, id, Access::Change).await?;
    let target = parse_rollback_body(&body).map_err(refusal)?;
    let current = number(&video, "current_version");
    let versions = Versions::new(&app.queue);
    let entries = with_timeout(versions.list(id)).await?;
    let entry = entries.iter().find(|e| e.record.version == target);
    let latest = match video.get("latest_job") {
        Some(job) => with_timeout(app.queue.job_status(job)).await?,
        None => None,
    }
    .or_else(|| ended_job_status(id, &video))
    .map(|s| (s.version, s.state));
    check_rollback(&RollbackFacts {
        target,
        has_record: entry.is_some(),
        target_state: entry.and_then(entry_state),
        current,
        latest,
    })
    .map_err(refusal)?;

    write_pointer(app, id, target).await?;
    let result = with_timeout(versions.set_current_if(id, current, target)).await?;
    if let Err(actual) = result {
        // A version became current between our read and our write: it wins (an upload is an
        // explicit request). Put the pointer back to it so pointer and field agree.
        if let Some(now) = actual {
            write_pointer(app, id, now).await?;
        }
        let receivers = purge(app, id).await;
        tracing::warn!(
            video = id,
            target,
            ?actual,
            receivers,
            "rollback lost a race with a version becoming current"
        );
        return Err(IngestError::VersionConflict(format!(
            "version {} became current while the rollback ran; it stays current",
            actual.map_or_else(|| "?".to_string(), |v| v.to_string())
        )));
    }
    let receivers = purge(app, id).await;
    tracing::info!(video = id, from = ?current, to = target, caller = %caller.owner, receivers, "rolled back");
    Ok(Response::json(
        200,
        &json!({
            "video_id": id,
            "previous_version": current,
            "current_version": target,
            "playback_url": format!("/v/{id}/master.m3u8"),
            "version_playback_url": playback_path(id, target),
            "purged_edges": receivers,
        }),
    )
    .header("Cache-Control", "no-store"))
}

/// Rewrite `v/{id}/master.m3u8` from `v/{id}/{version}/master.m3u8` (one PUT: atomic replace).
async fn write_pointer(app: &App, id: &str, version: u32) -> Result<(), IngestError> {
    let key = keys::version_master(id, version);
    let Some(text) = app.store.get(&key).await? else {
        return Err(IngestError::VersionConflict(format!(
            "version {version} has no master playlist in the store (deleted?); it cannot become current"
        )));
    };
    let corrupt = |message: String| IngestError::CorruptState {
        id: id.to_string(),
        message,
    };
    let text = std::str::from_utf8(&text).map_err(|e| corrupt(format!("{key}: {e}")))?;
    let pointer = parse_master(text)
        .map_err(|e| corrupt(format!("{key}: {e}")))?
        .pointer(version);
    pointer
        .validate()
        .map_err(|e| corrupt(format!("{key}: {e}")))?;
    app.store
        .put(
            &keys::current_master(id),
            bytes::Bytes::from(pointer.render()),
            content_type::PLAYLIST,
        )
        .await?;
    Ok(())
}

/// Tell every edge to drop the pointer; the number of edges reached (0 when none listened or
/// Redis failed: edges then see the change after their playlist TTL).
async fn purge(app: &App, id: &str) -> u64 {
    let msg = PurgeMessage::current_master(id);
    match with_timeout(async {
        ringcast_infra::purge::publish(&app.queue, &msg)
            .await
            .map_err(|e| IngestError::BadRequest(e.to_string()))
    })
    .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(video = id, error = %e, "fleet purge of the current master failed; edges refresh it after their playlist TTL");
            0
        }
    }
}

fn refusal(r: RollbackRefusal) -> IngestError {
    match r {
        RollbackRefusal::BadBody(m) => IngestError::Unprocessable {
            code: "invalid_rollback",
            reason: m,
        },
        RollbackRefusal::UnknownVersion(_) => IngestError::NotFound(r.to_string()),
        RollbackRefusal::NotPublished { .. } | RollbackRefusal::NewerInProgress(_) => {
            IngestError::VersionConflict(r.to_string())
        }
    }
}
