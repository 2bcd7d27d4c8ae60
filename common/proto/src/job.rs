//! Job schema shared by ingest (producer) and transcoder (consumer): versioned serde structs so
//! both sides can be upgraded independently (an unknown `v` is rejected, not misread).

use serde::{Deserialize, Serialize};

use crate::container::Container;

/// Current schema version of [`TranscodeJob`].
pub const JOB_SCHEMA_VERSION: u32 = 1;

/// Queue priority; each has its own VOD stream (`rc:jobs:{high,normal,low}`). Live jobs go to
/// `rc:jobs:live` whatever their priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// Highest first: the order in which workers read the streams.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// One VOD transcode: source object → ladder under `v/{video}/{version}/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeJob {
    /// Schema version, [`JOB_SCHEMA_VERSION`].
    pub v: u32,
    pub job_id: String,
    pub video_id: String,
    pub version: u32,
    /// Object key of the source file.
    pub source_key: String,
    pub priority: Priority,
    /// Unix milliseconds when the job was created.
    pub created_ms: u64,
    /// Set for a live stream: the transcoder reads [`LiveSource::pull_url`] instead of
    /// `source_key` (empty for live jobs) and publishes LL-HLS parts and events as it goes.
    /// Absent from VOD payloads (skipped when `None`), so VOD jobs keep their v1 wire shape and
    /// an older transcoder still reads them; it dead-letters a live job (unknown field) rather
    /// than misreading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSource>,
    /// The container the ingest detected in the source (VOD only). The transcoder forces its
    /// demuxer on every ffprobe and ffmpeg run; a job without it (queued by an older ingest) has
    /// its source sniffed again by the transcoder. Skipped when `None` like `live`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// Where a live job's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSource {
    /// HTTP URL of the ingest's pull endpoint (`…/live/{key}/pull`): the MPEG-TS the publisher
    /// pushes, as it arrives; end of the response = end of the stream.
    pub pull_url: String,
}

/// Errors decoding a job payload.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job payload is not valid JSON for this schema: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("job schema version {0} is not supported (expected {JOB_SCHEMA_VERSION})")]
    Version(u32),
}

impl TranscodeJob {
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, JobError> {
        let job: Self = serde_json::from_str(s)?;
        if job.v != JOB_SCHEMA_VERSION {
            return Err(JobError::Version(job.v));
        }
        Ok(job)
    }
}

/// Field of the job hash `rc:job:{id}` an operator sets to `"1"` to cancel the job
/// (`ringcast-transcoder jobs cancel ID`). A worker that finds it on a queued job acks the job
/// without running it; a running job notices within `cancel_check_ms`, stops ffmpeg and removes
/// its partial output. Either way the job ends [`JobState::Cancelled`].
pub const CANCEL_REQUESTED_FIELD: &str = "cancel_requested";

/// Error text of a job cancelled by an operator.
pub const CANCELLED_ERROR: &str = "cancelled by operator";

/// Lifecycle of a job, stored in `rc:job:{id}` field `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    /// Stopped by an operator ([`CANCEL_REQUESTED_FIELD`]): acknowledged, not retried, not
    /// dead-lettered, its partial output removed.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended and no worker will write its state again.
    pub fn is_terminal(self) -> bool {
        // Exhaustive on purpose: a new state must be placed on one side or the other (ended
        // jobs get a TTL on their hash, `ringcast_infra::queue::retention`).
        match self {
            JobState::Queued | JobState::Running => false,
            JobState::Done | JobState::Failed | JobState::Cancelled => true,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

/// What the job hash says about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: String,
    pub video_id: String,
    pub version: u32,
    pub state: JobState,
    /// 0–100.
    pub progress: f64,
    pub error: Option<String>,
    pub updated_ms: u64,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> TranscodeJob {
        TranscodeJob {
            v: JOB_SCHEMA_VERSION,
            job_id: "j1".into(),
            video_id: "vid".into(),
            version: 1,
            source_key: "sources/vid/1/source".into(),
            priority: Priority::High,
            created_ms: 5,
            live: None,
            container: Some(Container::IsoBmff),
        }
    }

    #[test]
    fn vod_payloads_keep_their_shape_and_live_jobs_roundtrip() {
        let vod = job().to_json();
        assert!(!vod.contains("live"), "{vod}");
        assert!(vod.contains(r#""container":"iso-bmff""#), "{vod}");
        // A payload written before the live variant and the container existed still decodes.
        let old = r#"{"v":1,"job_id":"j","video_id":"v","version":1,"source_key":"s","priority":"normal","created_ms":1}"#;
        let old = TranscodeJob::from_json(old).expect("old payload");
        assert_eq!((old.live, old.container), (None, None));
        // A container the transcoder does not know is refused, not guessed at.
        let unknown = r#"{"v":1,"job_id":"j","video_id":"v","version":1,"source_key":"s","priority":"normal","created_ms":1,"container":"dash"}"#;
        assert!(TranscodeJob::from_json(unknown).is_err());
        let mut live = job();
        live.source_key = String::new();
        live.live = Some(LiveSource {
            pull_url: "http://127.0.0.1:8081/live/k/pull".into(),
        });
        let json = live.to_json();
        assert!(json.contains(r#""live":{"pull_url":"#), "{json}");
        assert_eq!(TranscodeJob::from_json(&json).expect("decode"), live);
    }

    #[test]
    fn roundtrips_and_rejects_other_versions() {
        let j = job();
        assert_eq!(TranscodeJob::from_json(&j.to_json()).expect("decode"), j);
        let mut other = job();
        other.v = 2;
        assert!(matches!(
            TranscodeJob::from_json(&other.to_json()),
            Err(JobError::Version(2))
        ));
        assert!(matches!(
            TranscodeJob::from_json("{\"v\":1}"),
            Err(JobError::Decode(_))
        ));
    }

    #[test]
    fn states_parse() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("x"), None);
        assert_eq!(JobState::Cancelled.as_str(), "cancelled");
        assert!(JobState::Cancelled.is_terminal() && JobState::Failed.is_terminal());
        assert!(!JobState::Queued.is_terminal() && !JobState::Running.is_terminal());
    }
}
