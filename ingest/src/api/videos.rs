//! `GET /v1/videos/{id}`: what a client polls after an upload — the video's versions, the state
//! of its latest transcode job and where to play it. Read from the Redis video and job hashes
//! (`rc:video:{id}`, `rc:job:{id}`) that the queue and the transcoders maintain. A job hash
//! expires some time after its job ended (`[queue] job_ttl_secs` of the transcoder); the
//! outcome then comes from the copy the transcoder keeps in the video hash (`ended_*` fields,
//! [`ended_job_status`]), so the answer does not change when the job hash goes.
//!
//! ```json
//! {"video_id":"…","latest_version":1,"current_version":null,
//!  "job":{"job_id":"…","version":1,"state":"queued","progress":0.0,"error":null},
//!  "playback_url":"/v/…/master.m3u8",
//!  "poster":"/v/…/1/poster.jpg","thumbnails":"/v/…/1/thumbnails.vtt"}
//! ```
//!
//! `poster` and `thumbnails` (edge paths, like `playback_url`) belong to the current version:
//! the transcoder records them (video hash field `assets:{version}`) before it publishes the
//! version and marks the job done, so a ready version never lists a missing file. They are
//! `null` while no version is current and for versions without them (live streams).

use std::collections::HashMap;
use std::time::Duration;

use ringcast_proto::assets::{self, VersionAssets};
use ringcast_proto::auth::Caller;
use ringcast_proto::http::Method;
use ringcast_proto::job::{JobState, JobStatus};
use ringcast_proto::keys;
use serde_json::{json, Value};

use crate::app::App;
use crate::error::IngestError;
use ringcast_server::Response;

const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

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
    if !keys::is_valid_id(id) {
        return Err(IngestError::InvalidId(id.to_string()));
    }
    let video = timed(app.queue.video(id)).await?;
    if video.is_empty() {
        return Err(IngestError::NotFound(format!("video {id}")));
    }
    if !caller.may_read(video.get("owner").map(String::as_str)) {
        return Err(IngestError::Forbidden(format!(
            "video {id} belongs to another owner"
        )));
    }
    let status = match video.get("latest_job") {
        Some(job_id) => timed(app.queue.job_status(job_id)).await?,
        None => None,
    }
    .or_else(|| ended_job_status(id, &video));
    let body = video_json(id, &video, status.as_ref());
    // Job state changes by the second; pollers must always see the latest.
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
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

/// The response body, from the video hash and the latest job's status.
pub fn video_json(id: &str, video: &HashMap<String, String>, job: Option<&JobStatus>) -> Value {
    let number = |field: &str| -> Value {
        video
            .get(field)
            .and_then(|v| v.parse::<u32>().ok())
            .map_or(Value::Null, Value::from)
    };
    let job = job.map_or(Value::Null, |s| {
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
    json!({
        "video_id": id,
        "latest_version": number("latest_version"),
        "current_version": number("current_version"),
        "job": job,
        "playback_url": format!("/v/{id}/master.m3u8"),
        "poster": path(record.as_ref().and_then(|r| r.poster.as_ref())),
        "thumbnails": path(record.as_ref().and_then(|r| r.thumbnails.as_ref())),
    })
}

async fn timed<T, E: Into<IngestError>>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, IngestError> {
    match monoio::time::timeout(REDIS_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(IngestError::Timeout("redis")),
    }
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
