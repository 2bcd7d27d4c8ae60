//! The progress stream of a video (`GET /v1/videos/{id}/events`, server-sent events): from
//! successive snapshots of what Redis holds — the upload in progress
//! ([`crate::keys::video_upload`]) and the latest job's status — [`Tracker`] derives the
//! events a client has not seen yet and tells when the stream is over (the version is ready,
//! or it failed). Pure; the ingest polls and writes.
//!
//! Events (`event:` name, `data:` one JSON object, `id:` counting from 1 per stream):
//! - `upload` `{"upload_id","offset","length"}` while bytes arrive;
//! - `transcode` `{"job_id","version","state","progress"}` on every change of state or
//!   progress;
//! - last, `ready` `{"version","playback_url"}`, `failed` `{"version","error"}` (a failed or
//!   cancelled job, or a refused upload), or `duplicate` `{"video_id"}` (the upload was the
//!   same bytes as an existing video, which is the one to follow).

use serde_json::{json, Value};

use crate::job::{JobState, JobStatus};
use crate::versions::playback_path;

/// The upload in progress for a video, as its hash says.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadProgress {
    pub upload_id: String,
    pub offset: u64,
    pub length: u64,
    /// Set when the upload ended without a job: `rejected: {reason}` or `duplicate:{video}`.
    pub outcome: Option<String>,
}

/// Prefix of [`UploadProgress::outcome`] for a refused upload.
pub const OUTCOME_REJECTED: &str = "rejected: ";
/// Prefix of [`UploadProgress::outcome`] for a duplicate (followed by the existing video id).
pub const OUTCOME_DUPLICATE: &str = "duplicate:";

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub upload: Option<UploadProgress>,
    /// The video's latest job (from its hash, or the outcome kept in the video hash).
    pub job: Option<JobStatus>,
}

/// One event to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    pub name: &'static str,
    pub data: Value,
}

impl Event {
    /// The event's wire form (one `data:` line: the JSON has no newlines).
    pub fn render(&self) -> String {
        format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            self.id, self.name, self.data
        )
    }
}

/// The first bytes of a stream: how long a client waits before reconnecting.
pub fn retry_hint(ms: u64) -> String {
    format!("retry: {ms}\n\n")
}

/// A comment line: ignored by clients, keeps proxies (and the liveness check) going.
pub fn comment(text: &str) -> String {
    format!(": {text}\n\n")
}

/// Turns snapshots into events (see the module docs).
#[derive(Debug, Default)]
pub struct Tracker {
    video: String,
    next_id: u64,
    last_upload: Option<(String, u64)>,
    last_job: Option<(String, JobState, u64)>,
    ended: bool,
}

impl Tracker {
    pub fn new(video: &str) -> Self {
        Self {
            video: video.to_string(),
            next_id: 1,
            ..Self::default()
        }
    }

    /// The stream has sent its last event.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn event(&mut self, name: &'static str, data: Value) -> Event {
        let id = self.next_id;
        self.next_id += 1;
        Event { id, name, data }
    }

    /// Events for what changed since the previous snapshot.
    pub fn update(&mut self, snap: &Snapshot) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if let Some(u) = &snap.upload {
            if let Some(outcome) = &u.outcome {
                self.ended = true;
                let last = match outcome.strip_prefix(OUTCOME_DUPLICATE) {
                    Some(video) => self.event("duplicate", json!({ "video_id": video })),
                    None => {
                        let error = outcome.strip_prefix(OUTCOME_REJECTED).unwrap_or(outcome);
                        self.event("failed", json!({ "version": null, "error": error }))
                    }
                };
                out.push(last);
                return out;
            }
            let seen = (u.upload_id.clone(), u.offset);
            if self.last_upload.as_ref() != Some(&seen) {
                self.last_upload = Some(seen);
                let e = self.event(
                    "upload",
                    json!({ "upload_id": u.upload_id, "offset": u.offset, "length": u.length }),
                );
                out.push(e);
            }
            // While bytes arrive, the latest job is an older version's: not this stream's end.
            return out;
        }
        let Some(job) = &snap.job else {
            return out;
        };
        // Progress in tenths of a percent: the transcoder stores one decimal.
        let tenths = (job.progress.clamp(0.0, 100.0) * 10.0).round() as u64;
        let seen = (job.job_id.clone(), job.state, tenths);
        if self.last_job.as_ref() != Some(&seen) {
            self.last_job = Some(seen);
            let e = self.event(
                "transcode",
                json!({
                    "job_id": job.job_id,
                    "version": job.version,
                    "state": job.state.as_str(),
                    "progress": job.progress,
                }),
            );
            out.push(e);
        }
        if job.state.is_terminal() {
            self.ended = true;
            let last = if job.state == JobState::Done {
                let url = playback_path(&self.video, job.version);
                self.event(
                    "ready",
                    json!({ "version": job.version, "playback_url": url }),
                )
            } else {
                let error = job
                    .error
                    .clone()
                    .unwrap_or_else(|| job.state.as_str().into());
                self.event("failed", json!({ "version": job.version, "error": error }))
            };
            out.push(last);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: JobState, progress: f64) -> JobStatus {
        JobStatus {
            job_id: "j".into(),
            video_id: "v".into(),
            version: 2,
            state,
            progress,
            error: None,
            updated_ms: 0,
        }
    }

    fn upload(offset: u64) -> Snapshot {
        Snapshot {
            upload: Some(UploadProgress {
                upload_id: "u".into(),
                offset,
                length: 100,
                outcome: None,
            }),
            // An older version's job: ignored while the upload runs.
            job: Some(job(JobState::Done, 100.0)),
        }
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.name).collect()
    }

    #[test]
    fn upload_then_transcode_then_ready() {
        let mut t = Tracker::new("v");
        let e = t.update(&upload(10));
        assert_eq!((names(&e), e[0].id), (vec!["upload"], 1));
        assert_eq!(e[0].data["offset"], 10);
        assert!(t.update(&upload(10)).is_empty(), "nothing changed");
        assert_eq!(t.update(&upload(60))[0].data["offset"], 60);
        let running = Snapshot {
            upload: None,
            job: Some(job(JobState::Running, 12.5)),
        };
        let e = t.update(&running);
        assert_eq!(names(&e), ["transcode"]);
        assert_eq!((e[0].id, &e[0].data["progress"]), (3, &json!(12.5)));
        assert!(t.update(&running).is_empty());
        let done = Snapshot {
            upload: None,
            job: Some(job(JobState::Done, 100.0)),
        };
        let e = t.update(&done);
        assert_eq!(names(&e), ["transcode", "ready"]);
        assert_eq!(e[1].data["playback_url"], "/v/v/2/master.m3u8");
        assert!(t.ended());
        assert!(t.update(&done).is_empty(), "nothing after the end");
        assert_eq!(
            e[1].render(),
            "id: 5\nevent: ready\ndata: {\"playback_url\":\"/v/v/2/master.m3u8\",\"version\":2}\n\n"
        );
    }

    #[test]
    fn failures_and_duplicates_end_the_stream() {
        let mut t = Tracker::new("v");
        let mut failed = job(JobState::Failed, 3.0);
        failed.error = Some("not a readable video".into());
        let e = t.update(&Snapshot {
            upload: None,
            job: Some(failed),
        });
        assert_eq!(names(&e), ["transcode", "failed"]);
        assert_eq!(e[1].data["error"], "not a readable video");
        assert!(t.ended());

        for (outcome, name) in [
            (format!("{OUTCOME_REJECTED}not a video"), "failed"),
            (format!("{OUTCOME_DUPLICATE}abc"), "duplicate"),
        ] {
            let mut t = Tracker::new("v");
            let mut snap = upload(100);
            if let Some(u) = snap.upload.as_mut() {
                u.outcome = Some(outcome);
            }
            let e = t.update(&snap);
            assert_eq!(names(&e), [name]);
            assert!(t.ended());
        }
    }

    #[test]
    fn wire_helpers() {
        assert_eq!(retry_hint(3000), "retry: 3000\n\n");
        assert_eq!(comment("keepalive"), ": keepalive\n\n");
    }
}
