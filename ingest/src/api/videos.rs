//! `GET /v1/videos/{id}`: what a client polls after an upload — the video's metadata (title,
//! description, visibility, owner, times), its versions, the state of its latest transcode job
//! and where to play it. Read from the Redis video and job hashes (`rc:video:{id}`,
//! `rc:job:{id}`) that the ingest, the queue and the transcoders maintain. A job hash expires
//! some time after its job ended (`[queue] job_ttl_secs` of the transcoder); the outcome then
//! comes from the copy the transcoder keeps in the video hash (`ended_*` fields,
//! [`ended_job_status`]), so the answer does not change when the job hash goes.
//!
//! ```json
//! {"video_id":"…","owner":"alice","title":"…","description":"","visibility":"public",
//!  "created_ms":1767225600000,"updated_ms":1767225600000,
//!  "latest_version":1,"current_version":null,"duration_secs":12.5,
//!  "job":{"job_id":"…","version":1,"state":"queued","progress":0.0,"error":null},
//!  "status":{"state":"queued","playable":false,
//!            "upload":{"state":"complete","offset":null,"length":null,"progress":100.0},
//!            "transcode":{"state":"queued","progress":0.0,"error":null}},
//!  "playback_url":"/v/…/master.m3u8",
//!  "poster":"/v/…/1/poster.jpg","thumbnails":"/v/…/1/thumbnails.vtt"}
//! ```
//!
//! `poster` and `thumbnails` (edge paths, like `playback_url`) belong to the current version:
//! the transcoder records them (video hash field `assets:{version}`) before it publishes the
//! version and marks the job done, so a ready version never lists a missing file. They are
//! `null` while no version is current and for versions without them (live streams).
//! `duration_secs` is the current version's (the latest's while none is current), as the
//! ingest's ffprobe read it from the source (field `duration_ms:{version}`); `null` when
//! unknown (live, or uploaded before it was recorded).
//!
//! While an upload is still in progress on this ingest node there is no video hash yet: the
//! answer then comes from the upload's state (`status.state` = `uploading`, with its offset
//! and length).

use std::collections::HashMap;

use ringcast_proto::assets::{self, VersionAssets};
use ringcast_proto::auth::{Caller, ANONYMOUS_OWNER};
use ringcast_proto::http::Method;
use ringcast_proto::job::{JobState, JobStatus};
use ringcast_proto::keys;
use ringcast_proto::visibility::{self, Visibility};
use serde_json::{json, Value};

use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use crate::tus::upload_store::{UploadPhase, UploadState};
use ringcast_server::Response;

/// What a handler is about to do with a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Change,
}

/// The hash of video `id` if `caller` may do `access` on it: 400 for an invalid id, 404 for
/// an unknown video, 403 for another owner's (or a viewer key that would change it).
pub async fn load(
    app: &App,
    caller: &Caller,
    id: &str,
    access: Access,
) -> Result<HashMap<String, String>, IngestError> {
    if !keys::is_valid_id(id) {
        return Err(IngestError::InvalidId(id.to_string()));
    }
    let video = with_timeout(app.queue.video(id)).await?;
    if !is_video(&video) {
        return Err(IngestError::NotFound(format!("video {id}")));
    }
    check(caller, id, &video, access)?;
    Ok(video)
}

/// Whether a video hash is a video: registered (`owner`) or made by a job (`latest_job`). A
/// hash holding only what a transcoder wrote after the video was deleted under it (an
/// `assets:{v}` record) is not one.
pub fn is_video(video: &HashMap<String, String>) -> bool {
    video.contains_key("owner") || video.contains_key("latest_job")
}

/// The ownership rule ([`Caller::may_read`], [`Caller::may_change`]) for one video hash.
pub fn check(
    caller: &Caller,
    id: &str,
    video: &HashMap<String, String>,
    access: Access,
) -> Result<(), IngestError> {
    let owner = video.get("owner").map(String::as_str);
    if !caller.may_read(owner) {
        return Err(IngestError::Forbidden(format!(
            "video {id} belongs to another owner"
        )));
    }
    if access == Access::Change && !caller.may_change(owner) {
        return Err(IngestError::Forbidden(format!(
            "a {} key may not change videos",
            caller.role
        )));
    }
    Ok(())
}

pub async fn get(
    app: &App,
    caller: &Caller,
    method: &Method,
    id: &str,
) -> Result<Response, IngestError> {
    if !matches!(method, Method::Get | Method::Head) {
        return Err(IngestError::MethodNotAllowed {
            method: method.as_str().to_string(),
            allow: "GET, HEAD, OPTIONS",
        });
    }
    let body = match load(app, caller, id, Access::Read).await {
        Ok(video) => current_json(app, id, &video).await?,
        Err(IngestError::NotFound(what)) => match uploading(app, caller, id).await? {
            Some(body) => body,
            None => return Err(IngestError::NotFound(what)),
        },
        Err(e) => return Err(e),
    };
    // Job state changes by the second; pollers must always see the latest.
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
}

/// The answer for a video hash, with its latest job's state read now.
pub async fn current_json(
    app: &App,
    id: &str,
    video: &HashMap<String, String>,
) -> Result<Value, IngestError> {
    let status = match video.get("latest_job") {
        Some(job_id) => with_timeout(app.queue.job_status(job_id)).await?,
        None => None,
    }
    .or_else(|| ended_job_status(id, video));
    Ok(video_json(id, video, status.as_ref()))
}

/// An upload still in progress on this node, for a caller who may see it.
async fn uploading(app: &App, caller: &Caller, id: &str) -> Result<Option<Value>, IngestError> {
    let Some(state) = app.uploads.load(id).await? else {
        return Ok(None);
    };
    if state.phase != UploadPhase::Uploading {
        return Ok(None);
    }
    if !caller.may_read(Some(&state.owner)) {
        return Err(IngestError::Forbidden(format!(
            "video {id} belongs to another owner"
        )));
    }
    Ok(Some(upload_json(id, &state)))
}

/// The answer for an upload that has no video yet.
pub fn upload_json(id: &str, state: &UploadState) -> Value {
    let mut video = HashMap::new();
    video.insert("owner".to_string(), state.owner.clone());
    if let Some(t) = state.metadata.get("title") {
        video.insert("title".to_string(), t.clone());
    }
    video.insert("created_ms".to_string(), state.created_ms.to_string());
    video.insert("updated_ms".to_string(), state.updated_ms.to_string());
    let mut body = video_json(id, &video, None);
    let progress = if state.length == 0 {
        100.0
    } else {
        (state.offset as f64 * 100.0 / state.length as f64 * 10.0).floor() / 10.0
    };
    body["status"]["state"] = Value::from("uploading");
    body["status"]["upload"] = json!({
        "state": "uploading",
        "offset": state.offset,
        "length": state.length,
        "progress": progress,
    });
    body
}

/// The latest job's outcome as recorded in the video hash when it ended (`ended_job`,
/// `ended_state`, `ended_progress`, `ended_error`, `ended_ms`); `None` unless that record is
/// about the video's `latest_job`.
pub fn ended_job_status(id: &str, video: &HashMap<String, String>) -> Option<JobStatus> {
    let job_id = video.get("latest_job")?;
    if video.get("ended_job") != Some(job_id) {
        return None;
    }
    Some(JobStatus {
        job_id: job_id.clone(),
        video_id: id.to_string(),
        version: video.get("latest_version")?.parse().ok()?,
        state: JobState::parse(video.get("ended_state")?)?,
        progress: video
            .get("ended_progress")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0.0),
        error: video.get("ended_error").cloned(),
        updated_ms: video
            .get("ended_ms")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
    })
}

/// The response body, from the video hash and the latest job's status (the same shape for one
/// video and for every item of a listing).
pub fn video_json(id: &str, video: &HashMap<String, String>, job: Option<&JobStatus>) -> Value {
    let number = |field: &str| -> Value {
        video
            .get(field)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Value::Null, Value::from)
    };
    let text =
        |field: &str| -> Value { Value::from(video.get(field).cloned().unwrap_or_default()) };
    let job_value = job.map_or(Value::Null, |s| {
        json!({
            "job_id": s.job_id,
            "version": s.version,
            "state": s.state.as_str(),
            "progress": s.progress,
            "error": s.error,
        })
    });
    let current = video
        .get("current_version")
        .and_then(|v| v.parse::<u32>().ok());
    let latest = video
        .get("latest_version")
        .and_then(|v| v.parse::<u32>().ok());
    let record = current
        .and_then(|v| video.get(&assets::field(v)))
        .and_then(|json| VersionAssets::from_json(json));
    // A path under the version for a plain file name; anything else is not ours to link.
    let path = |file: Option<&String>| -> Value {
        match (current, file) {
            (Some(v), Some(f)) if keys::is_valid_file_name(f) => {
                Value::from(format!("/{}", keys::version_file(id, v, f)))
            }
            _ => Value::Null,
        }
    };
    let duration = current
        .or(latest)
        .and_then(|v| video.get(&keys::duration_field(v)))
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Value::Null, |ms| Value::from(ms as f64 / 1000.0));
    let visibility =
        Visibility::from_field(video.get(visibility::FIELD).map(String::as_str)).as_str();
    json!({
        "video_id": id,
        "owner": video.get("owner").map_or(ANONYMOUS_OWNER, String::as_str),
        "title": text("title"),
        "description": text("description"),
        "visibility": visibility,
        "created_ms": number("created_ms"),
        "updated_ms": number("updated_ms"),
        "latest_version": number("latest_version"),
        "current_version": number("current_version"),
        "duration_secs": duration,
        "job": job_value,
        "status": status_json(current.is_some(), job),
        "playback_url": format!("/v/{id}/master.m3u8"),
        "poster": path(record.as_ref().and_then(|r| r.poster.as_ref())),
        "thumbnails": path(record.as_ref().and_then(|r| r.thumbnails.as_ref())),
    })
}

/// `status`: one word for the video's state, whether a version plays, and the progress of the
/// upload (complete once there is a video hash) and of the latest transcode.
fn status_json(playable: bool, job: Option<&JobStatus>) -> Value {
    let state = match job.map(|j| j.state) {
        Some(JobState::Queued) => "queued",
        Some(JobState::Running) => "processing",
        Some(JobState::Done) => "ready",
        Some(JobState::Failed) => "failed",
        Some(JobState::Cancelled) => "cancelled",
        None if playable => "ready",
        None => "unknown",
    };
    json!({
        "state": state,
        "playable": playable,
        "upload": {"state": "complete", "offset": null, "length": null, "progress": 100.0},
        "transcode": job.map_or(Value::Null, |s| json!({
            "state": s.state.as_str(),
            "progress": s.progress,
            "error": s.error,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_job_hash_falls_back_to_the_outcome_in_the_video_hash() {
        let mut video: HashMap<String, String> = [
            ("latest_job", "j2"),
            ("latest_version", "2"),
            ("ended_job", "j2"),
            ("ended_state", "failed"),
            ("ended_progress", "12.0"),
            ("ended_error", "not a readable video"),
            ("ended_ms", "77"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = ended_job_status("v", &video).expect("status");
        assert_eq!(
            (s.job_id.as_str(), s.version, s.state),
            ("j2", 2, JobState::Failed)
        );
        assert_eq!(s.error.as_deref(), Some("not a readable video"));
        assert_eq!(video_json("v", &video, Some(&s))["job"]["state"], "failed");
        // The record is about an older job: the latest one has no known outcome.
        video.insert("latest_job".into(), "j3".into());
        assert_eq!(ended_job_status("v", &video), None);
    }

    #[test]
    fn json_shape() {
        let mut video = HashMap::new();
        video.insert("latest_version".to_string(), "2".to_string());
        video.insert("latest_job".to_string(), "j".to_string());
        let status = JobStatus {
            job_id: "j".into(),
            video_id: "v".into(),
            version: 2,
            state: JobState::Running,
            progress: 40.0,
            error: None,
            updated_ms: 1,
        };
        let v = video_json("v", &video, Some(&status));
        assert_eq!(v["latest_version"], 2);
        assert_eq!(v["current_version"], Value::Null);
        assert_eq!(v["job"]["state"], "running");
        assert_eq!(v["job"]["progress"], 40.0);
        assert_eq!(v["playback_url"], "/v/v/master.m3u8");
        let v = video_json("v", &video, None);
        assert_eq!(v["job"], Value::Null);
        assert_eq!(v["poster"], Value::Null);
        assert_eq!(v["thumbnails"], Value::Null);
    }

    /// Poster and thumbnails are the current version's, never those of a version in progress.
    #[test]
    fn poster_and_thumbnails_of_the_current_version() {
        let record = VersionAssets {
            poster: Some("poster.jpg".into()),
            thumbnails: Some("thumbnails.vtt".into()),
            sheets: vec!["thumbs-0.jpg".into()],
        };
        let mut video = HashMap::new();
        video.insert("latest_version".to_string(), "2".to_string());
        video.insert(assets::field(2), record.to_json());
        let v = video_json("v", &video, None);
        assert_eq!(v["poster"], Value::Null, "version 2 is not current yet");
        video.insert("current_version".to_string(), "1".to_string());
        assert_eq!(video_json("v", &video, None)["poster"], Value::Null);
        video.insert("current_version".to_string(), "2".to_string());
        let v = video_json("v", &video, None);
        assert_eq!(v["poster"], "/v/v/2/poster.jpg");
        assert_eq!(v["thumbnails"], "/v/v/2/thumbnails.vtt");
        // A record that is not ours, or names something that is not a file name: nothing.
        video.insert(
            assets::field(2),
            r#"{"poster":"../x","thumbnails":null}"#.into(),
        );
        let v = video_json("v", &video, None);
        assert_eq!(
            (&v["poster"], &v["thumbnails"]),
            (&Value::Null, &Value::Null)
        );
        video.insert(assets::field(2), "garbage".into());
        assert_eq!(video_json("v", &video, None)["poster"], Value::Null);
    }
}
