//! The `[uploads]` section of the ingest config: how a finished upload is inspected before it
//! is accepted, and how long an abandoned one is kept. (Who may choose a job priority is the caller's role: `crate::auth`.)

use std::path::PathBuf;
use std::time::Duration;

use ringcast_infra::config::ConfigError;
use ringcast_proto::tus::expiry::ExpiryPolicy;
use serde::{Deserialize, Serialize};

/// Upload acceptance settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// ffprobe binary (a name looked up on PATH, or a path). The ingest runs it on every
    /// complete upload before queueing a job, so it is required.
    pub ffprobe_path: PathBuf,
    /// Seconds ffprobe gets to read a finished upload (it reads headers and at most a few MB);
    /// it is killed after that and the upload refused with 422.
    pub probe_timeout_secs: u64,
    /// tus Expiration: an unfinished upload expires this many seconds after its last change
    /// (creation or a stored chunk); requests then get 410 and the sweep deletes it.
    pub expire_after_secs: u64,
    /// A finished (stored and queued, or a duplicate) or rejected upload's record is kept this
    /// many seconds after it finished — long enough for a client's final HEAD or retried PATCH
    /// after a lost response to get the same answer — then swept (404 afterwards).
    pub finished_retention_secs: u64,
    /// Seconds between two runs of the background sweep of expired uploads and old finished
    /// records; also the width of the expiry index's time buckets (`crate::tus::expiry_index`).
    /// A run reads only the records that are due, and goes on at once while more are due.
    pub expiry_sweep_secs: u64,
    /// Nice value of a PATCH's hash thread while it hashes (`crate::tus::hash_placement`):
    /// below the workers' 0, the SHA-256 that bounds an upload's speed runs first on a core it
    /// shares. 0 (the default) leaves it alone: on the 2-core test VM -5 measured no gain when
    /// the machine was quiet (docs/BENCHMARKS.md, issue 13). Below 0 needs CAP_SYS_NICE
    /// (without it the thread runs at 0, logged once). -20..=19.
    pub hash_thread_nice: i32,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            ffprobe_path: PathBuf::from("ffprobe"),
            probe_timeout_secs: 15,
            expire_after_secs: 24 * 3600,
            finished_retention_secs: 600,
            expiry_sweep_secs: 60,
            hash_thread_nice: 0,
        }
    }
}

impl UploadsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.probe_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "uploads.probe_timeout_secs must be at least 1".into(),
            ));
        }
        if self.expire_after_secs == 0
            || self.expiry_sweep_secs == 0
            || self.finished_retention_secs == 0
        {
            return Err(ConfigError::Invalid(
                "uploads.expire_after_secs, uploads.finished_retention_secs and \
                 uploads.expiry_sweep_secs must be at least 1"
                    .into(),
            ));
        }
        if !(-20..=19).contains(&self.hash_thread_nice) {
            return Err(ConfigError::Invalid(
                "uploads.hash_thread_nice must be in -20..=19".into(),
            ));
        }
        if self.ffprobe_path.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "uploads.ffprobe_path must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// When the sweep deletes records, and the index's bucket width (the sweep period).
    pub fn expiry_policy(&self) -> ExpiryPolicy {
        ExpiryPolicy {
            unfinished_secs: self.expire_after_secs,
            finished_secs: self.finished_retention_secs,
            bucket_secs: self.expiry_sweep_secs,
        }
    }

    pub fn expiry_sweep(&self) -> Duration {
        Duration::from_secs(self.expiry_sweep_secs)
    }

    pub fn probe_timeout(&self) -> Duration {
        Duration::from_secs(self.probe_timeout_secs)
    }
}
