//! `GET /v1/live`: the live streams running now, for a page's "live" list.
//!
//! Which videos can be live is configuration (`[live.keys]`: stream key → video id), so the
//! listing reads those few video hashes and their latest jobs (two pipelined round trips per
//! video, no scan) instead of keeping a registry of its own that a crashed node could leave
//! stale. A video is live while its latest job is queued or running and that job's version is
//! not an upload: an upload's version records the source's duration (`duration_ms:{version}`
//! in the video hash, written before its job is queued), a live version never has one. So a
//! VOD version uploaded to a live video's id does not count.
//! Every ingest node has the same `[live.keys]`, so any node gives the whole fleet's answer.
//!
//! A stream is `playable` once its version's master playlist is in the store: the transcoder
//! writes it only when every rendition keeps real time (`transcoder/src/pipeline/master_gate.rs`,
//! up to 5 s after the push starts), and a player sent to it earlier gets a 404. The page shows
//! such a stream as starting, without a watch link, and lists again until it plays. One store
//! HEAD per running stream (live keys are few).
//!
//! Live streams belong to the stream keys, not to an API key's owner: every caller sees every
//! running public or unlisted stream (it plays at the edge without a key anyway); a private
//! one only the callers who may read its video.
//!
//! ```json
//! {"streams":[{"video_id":"cam1","title":"","version":3,"state":"running","playable":true,
//!              "started_ms":1767225600000,"playback_url":"/v/cam1/master.m3u8"}]}
//! ```

use std::collections::BTreeSet;

use ringcast_proto::auth::Caller;
use ringcast_proto::http::Method;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_proto::visibility::{self, Visibility};
use serde_json::{json, Value};

use crate::api::videos::{check, is_video, Access};
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use ringcast_server::Response;

pub async fn list(app: &App, caller: &Caller, method: &Method) -> Result<Response, IngestError> {
    if !matches!(method, Method::Get | Method::Head) {
        return Err(IngestError::MethodNotAllowed {
            method: method.as_str().to_string(),
            allow: "GET, HEAD, OPTIONS",
        });
    }
    let ids: BTreeSet<&String> = app.config.live.keys.values().collect();
    let mut streams = Vec::new();
    for id in ids {
        if let Some(stream) = running(app, caller, id).await? {
            streams.push(stream);
        }
    }
    // Streams start and end at any moment: never reuse an answer.
    Ok(Response::json(200, &json!({ "streams": streams })).header("Cache-Control", "no-store"))
}

/// The stream of video `id` if it is live now and `caller` may see it in the list.
async fn running(app: &App, caller: &Caller, id: &str) -> Result<Option<Value>, IngestError> {
    let video = with_timeout(app.queue.video(id)).await?;
    if !is_video(&video) {
        return Ok(None);
    }
    let vis = Visibility::from_field(video.get(visibility::FIELD).map(String::as_str));
    if vis == Visibility::Private && check(caller, id, &video, Access::Read).is_err() {
        return Ok(None);
    }
    let Some(job) = video.get("latest_job") else {
        return Ok(None);
    };
    let Some(status) = with_timeout(app.queue.job_status(job)).await? else {
        return Ok(None);
    };
    if !matches!(status.state, JobState::Queued | JobState::Running) {
        return Ok(None);
    }
    if video.contains_key(&keys::duration_field(status.version)) {
        return Ok(None);
    }
    let playable = app
        .store
        .head(&keys::version_master(id, status.version))
        .await?
        .is_some();
    Ok(Some(json!({
        "video_id": id,
        "title": video.get("title").cloned().unwrap_or_default(),
        "version": status.version,
        "state": status.state.as_str(),
        "playable": playable,
        "started_ms": status.updated_ms,
        "playback_url": format!("/v/{id}/master.m3u8"),
    })))
}
