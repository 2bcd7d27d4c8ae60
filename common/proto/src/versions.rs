//! Versions of a video (DESIGN.md "Versions and rollback"): the per-version record the ingest
//! keeps in `rc:video:{id}:versions` ([`crate::keys::video_versions`]), the state a version is
//! in, and the rules of a rollback. Pure: callers pass in what Redis and the store said.
//!
//! An upload whose tus metadata names a `video_id` becomes that video's next version. Each
//! stored version gets one [`VersionRecord`] (written once, when its job is queued). Its state
//! is read from the job hash while that exists, then from the `{version}:state` field the
//! queue writes when the job ends (the job hash expires; the version's outcome must not).
//!
//! A rollback makes an older, published version current again. Concurrency with a transcode
//! that finishes at the same time is settled by a rule, not a lock: an upload is an explicit
//! request, so a version that is still being transcoded wins — a rollback is refused (409)
//! while the video's latest job is queued or running, and a version that finishes after a
//! rollback becomes current. The ingest also applies the rollback with a compare-and-set on
//! `current_version`, so one that raced a version becoming current is reported, not half done.

use serde::{Deserialize, Serialize};

use crate::container::Container;
use crate::job::JobState;

/// One stored version of a video (JSON in field `{version}` of `rc:video:{id}:versions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    /// The upload that brought the source.
    pub upload_id: String,
    /// Hex sha256 of the source bytes (computed while they were received).
    pub source_sha256: String,
    pub container: Option<Container>,
    /// The transcode job of this version (its hash `rc:job:{id}` until it expires).
    pub job_id: String,
    pub created_ms: u64,
}

impl VersionRecord {
    pub fn to_json(&self) -> String {
        // Strings, integers and an enum: always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for text that is not a record (never trusted blindly: it comes from Redis).
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// `Upload-Metadata` pair that turns duplicate detection off for one upload: the same bytes as
/// an existing video of the owner still make a new video (re-uploads on purpose, load tests).
/// Any other value of the key is refused (400).
pub const ALLOW_DUPLICATES: (&str, &str) = ("duplicates", "allow");

/// The hash field holding version `v`'s record.
pub fn record_field(version: u32) -> String {
    version.to_string()
}

/// The hash field holding the state version `v`'s job ended in.
pub fn state_field(version: u32) -> String {
    format!("{version}:state")
}

/// Edge path of a version's own master playlist (playable whatever is current).
pub fn playback_path(video: &str, version: u32) -> String {
    format!("/v/{video}/{version}/master.m3u8")
}

/// A version's state: the live job hash wins (it is the newest word), then the state recorded
/// when the job ended. `None`: neither is known any more.
pub fn version_state(job_hash: Option<JobState>, ended: Option<JobState>) -> Option<JobState> {
    job_hash.or(ended)
}

/// Why a rollback is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    /// The body is not `{"version": N}` with N ≥ 1 (422).
    #[error("{0}")]
    BadBody(String),
    /// The video has no such version (404).
    #[error("video has no version {0}")]
    UnknownVersion(u32),
    /// The version exists but was never published (409).
    #[error("version {version} is not published (its transcode is {state}); only a version whose transcode is done can become current")]
    NotPublished { version: u32, state: String },
    /// A newer version is being transcoded; it becomes current when it finishes (409).
    #[error("version {0} is being transcoded and becomes current when it is done; wait for it (or cancel its job) before rolling back")]
    NewerInProgress(u32),
}

/// Parse `{"version": N}`.
pub fn parse_rollback_body(body: &[u8]) -> Result<u32, RollbackRefusal> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        version: u64,
    }
    let bad = |m: String| RollbackRefusal::BadBody(m);
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body must be {{\"version\": N}} (N ≥ 1): {e}")))?;
    match u32::try_from(b.version) {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(bad(format!(
            "version must be between 1 and {}, not {}",
            u32::MAX,
            b.version
        ))),
    }
}

/// What is known about the video when a rollback to `target` is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackFacts {
    pub target: u32,
    /// `target`'s record exists.
    pub has_record: bool,
    /// `target`'s state ([`version_state`]).
    pub target_state: Option<JobState>,
    /// The video's current version.
    pub current: Option<u32>,
    /// The latest job's version and state (when its hash or ended record is known).
    pub latest: Option<(u32, JobState)>,
}

/// Whether the rollback may go ahead. A version without a record (made before records were
/// kept) qualifies only when it is the current one (re-writing the pointer, e.g. to repair it).
pub fn check_rollback(f: &RollbackFacts) -> Result<(), RollbackRefusal> {
    if let Some((version, state)) = f.latest {
        if !state.is_terminal() && version != f.target {
            return Err(RollbackRefusal::NewerInProgress(version));
        }
    }
    if !f.has_record {
        return if f.current == Some(f.target) {
            Ok(())
        } else {
            Err(RollbackRefusal::UnknownVersion(f.target))
        };
    }
    match f.target_state {
        Some(JobState::Done) => Ok(()),
        other => Err(RollbackRefusal::NotPublished {
            version: f.target,
            state: other.map_or("unknown", JobState::as_str).to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(target: u32) -> RollbackFacts {
        RollbackFacts {
            target,
            has_record: true,
            target_state: Some(JobState::Done),
            current: Some(2),
            latest: Some((2, JobState::Done)),
        }
    }

    #[test]
    fn records_round_trip() {
        let r = VersionRecord {
            version: 2,
            upload_id: "u".into(),
            source_sha256: "ab".into(),
            container: Some(Container::IsoBmff),
            job_id: "j".into(),
            created_ms: 1_765_000_000_000,
        };
        assert_eq!(VersionRecord::from_json(&r.to_json()), Some(r));
        assert_eq!(VersionRecord::from_json("{"), None);
        assert_eq!(
            (record_field(3), state_field(3)),
            ("3".into(), "3:state".into())
        );
        assert_eq!(playback_path("abc", 2), "/v/abc/2/master.m3u8");
    }

    #[test]
    fn the_job_hash_is_newer_than_the_ended_state() {
        assert_eq!(
            version_state(Some(JobState::Running), Some(JobState::Failed)),
            Some(JobState::Running)
        );
        assert_eq!(
            version_state(None, Some(JobState::Done)),
            Some(JobState::Done)
        );
        assert_eq!(version_state(None, None), None);
    }

    #[test]
    fn rollback_bodies() {
        assert_eq!(parse_rollback_body(br#"{"version": 3}"#), Ok(3));
        for bad in [
            &br#"{"version": 0}"#[..],
            br#"{"version": -1}"#,
            br#"{"version": "1"}"#,
            br#"{"version": 99999999999}"#,
            br#"{"v": 1}"#,
            b"",
            b"not json",
        ] {
            assert!(
                matches!(parse_rollback_body(bad), Err(RollbackRefusal::BadBody(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rollback_rules() {
        assert_eq!(check_rollback(&facts(1)), Ok(()));
        // Back to the current version: allowed (the pointer is rewritten, nothing changes).
        assert_eq!(check_rollback(&facts(2)), Ok(()));
        let failed = RollbackFacts {
            target_state: Some(JobState::Failed),
            ..facts(1)
        };
        let e = check_rollback(&failed).expect_err("failed version");
        assert!(
            e.to_string()
                .contains("not published (its transcode is failed)"),
            "{e}"
        );
        let running = RollbackFacts {
            latest: Some((3, JobState::Running)),
            ..facts(1)
        };
        assert_eq!(
            check_rollback(&running),
            Err(RollbackRefusal::NewerInProgress(3))
        );
        let unknown = RollbackFacts {
            has_record: false,
            target_state: None,
            ..facts(5)
        };
        assert_eq!(
            check_rollback(&unknown),
            Err(RollbackRefusal::UnknownVersion(5))
        );
        // A legacy current version without a record may be re-pointed.
        let legacy = RollbackFacts {
            has_record: false,
            target_state: None,
            ..facts(2)
        };
        assert_eq!(check_rollback(&legacy), Ok(()));
    }
}
