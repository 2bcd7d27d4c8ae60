//! The `[admission]` and `[quota]` sections of the ingest config.

use std::collections::BTreeMap;
use std::time::Duration;

use ringcast_infra::config::ConfigError;
use ringcast_proto::upload_pace::PaceLimits;
use serde::{Deserialize, Serialize};

/// Limits on how uploads use the ingest's disk, memory and connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Bytes that must stay free on the spool's filesystem (statvfs): a creation whose
    /// `Upload-Length`, or a PATCH whose body, would eat into the reserve gets 507 `insufficient_storage` with
    /// `Retry-After` before the disk fills; the upload resumes once space returns. 0 = no
    /// reserve (a full disk still answers 507 when a write fails).
    pub spool_reserve_bytes: u64,
    /// A PATCH body must bring at least this many bytes per second, measured over every
    /// `body_rate_window_secs`; slower, it is cut off with 408 `body_too_slow` (the bytes that
    /// arrived are kept: the upload resumes at its offset). 0 = no minimum rate.
    pub min_body_bytes_per_sec: u64,
    /// The window of the minimum rate, in seconds.
    pub body_rate_window_secs: u64,
    /// Longest one PATCH request may take, in seconds, whatever its rate (408 after that, the
    /// upload resumable). 0 = no deadline. The default (6 h) lets a whole 20 GiB file through
    /// one PATCH at 1 MB/s: tus-js-client sends a file in one PATCH unless `chunkSize` is set,
    /// and does not retry a 4xx other than 409/423 by itself.
    pub patch_deadline_secs: u64,
    /// Full-size (256 KiB) PATCH buffers each worker keeps in its pool; a PATCH arriving while
    /// all are in use streams through a 16 KiB buffer instead. Memory for PATCH bodies per
    /// worker is therefore at most `patch_buffers_per_worker × 256 KiB + 16 KiB × open PATCHes`
    /// (bounded by `max_connections_per_worker`).
    pub patch_buffers_per_worker: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            spool_reserve_bytes: 1 << 30,
            min_body_bytes_per_sec: 1024,
            body_rate_window_secs: 30,
            patch_deadline_secs: 21_600,
            patch_buffers_per_worker: 64,
        }
    }
}

impl AdmissionConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_body_bytes_per_sec > 0 && self.body_rate_window_secs == 0 {
            return Err(ConfigError::Invalid(
                "admission.body_rate_window_secs must be at least 1 when min_body_bytes_per_sec is set"
                    .into(),
            ));
        }
        if self.patch_buffers_per_worker > 65_536 {
            return Err(ConfigError::Invalid(
                "admission.patch_buffers_per_worker must be at most 65536".into(),
            ));
        }
        Ok(())
    }

    pub fn pace_limits(&self) -> PaceLimits {
        PaceLimits {
            min_bytes_per_sec: self.min_body_bytes_per_sec,
            window_ms: self.body_rate_window_secs * 1000,
            deadline_ms: self.patch_deadline_secs * 1000,
        }
    }

    pub fn patch_deadline(&self) -> Option<Duration> {
        (self.patch_deadline_secs > 0).then(|| Duration::from_secs(self.patch_deadline_secs))
    }
}

/// Per-owner limits (an owner is an API key's owner; `anonymous` in open mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Most bytes an owner may have in unfinished uploads (the sum of their `Upload-Length`s);
    /// a creation past it gets 403 `quota_exceeded`. 0 = unlimited.
    pub max_bytes_in_flight: u64,
    /// Most bytes an owner may have stored (sources of their videos' versions, plus uploads in
    /// flight); freed when a video is deleted. 0 = unlimited.
    pub max_bytes_stored: u64,
    /// Per-owner overrides, `[quota.owners.NAME]` with either key (0 = unlimited for that
    /// owner); an owner without an entry gets the limits above.
    pub owners: BTreeMap<String, OwnerQuota>,
}

/// One owner's limits (`[quota.owners.NAME]`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OwnerQuota {
    pub max_bytes_in_flight: Option<u64>,
    pub max_bytes_stored: Option<u64>,
}

impl QuotaConfig {
    /// `(in flight, stored)` limits of `owner`, 0 = unlimited.
    pub fn limits_of(&self, owner: &str) -> (u64, u64) {
        let o = self.owners.get(owner).copied().unwrap_or_default();
        (
            o.max_bytes_in_flight.unwrap_or(self.max_bytes_in_flight),
            o.max_bytes_stored.unwrap_or(self.max_bytes_stored),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_overrides() {
        let mut q = QuotaConfig {
            max_bytes_in_flight: 10,
            max_bytes_stored: 100,
            ..QuotaConfig::default()
        };
        q.owners.insert(
            "big".into(),
            OwnerQuota {
                max_bytes_in_flight: Some(0),
                max_bytes_stored: None,
            },
        );
        assert_eq!(q.limits_of("someone"), (10, 100));
        assert_eq!(q.limits_of("big"), (0, 100));
    }

    #[test]
    fn rate_needs_a_window() {
        let bad = AdmissionConfig {
            body_rate_window_secs: 0,
            ..AdmissionConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(AdmissionConfig::default().validate().is_ok());
    }
}
