//! `[platform]` of the edge configuration: following the platform's metadata in Redis (the
//! Redis is `[redis]`).

use serde::{Deserialize, Serialize};

use crate::config::bounds;

/// Platform settings (`[platform]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSettings {
    /// Enforce each video's visibility from `rc:video:{id}` (a private video's objects need a
    /// signed URL) and apply fleet-wide purges from the `rc:purge` channel. Off: every video is
    /// public and only this edge's own purge API drops cached objects. Unset: on when the
    /// origin is the object store (where the platform's videos are), off in front of a plain
    /// directory or HTTP origin (a standalone cache).
    pub enabled: Option<bool>,
    /// How long a video's visibility is used before Redis is asked again, in milliseconds: a
    /// change without a purge message takes effect within this long.
    pub visibility_ttl_ms: u64,
    /// Most videos whose visibility is kept (least recently used ones go first).
    pub visibility_max_entries: u64,
    /// Longest wait for Redis (a visibility lookup, subscribing, a fleet purge), in
    /// milliseconds. After a failed lookup the next one for that video waits
    /// `visibility_ttl_ms` (the old answer is used meanwhile).
    pub redis_timeout_ms: u64,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            visibility_ttl_ms: 5000,
            visibility_max_entries: 100_000,
            redis_timeout_ms: 1000,
        }
    }
}

impl PlatformSettings {
    /// Whether the platform is on for an edge whose origin is (`true`) or is not the store.
    pub fn is_enabled(&self, origin_is_store: bool) -> bool {
        self.enabled.unwrap_or(origin_is_store)
    }

    /// Values that cannot work, as a message naming the field.
    pub fn check(&self) -> Result<(), String> {
        bounds::positive(&[
            ("platform.visibility_ttl_ms", self.visibility_ttl_ms),
            (
                "platform.visibility_max_entries",
                self.visibility_max_entries,
            ),
            ("platform.redis_timeout_ms", self.redis_timeout_ms),
        ])?;
        bounds::at_most_one_day(&[
            ("platform.visibility_ttl_ms", self.visibility_ttl_ms),
            ("platform.redis_timeout_ms", self.redis_timeout_ms),
        ])?;
        if self.visibility_max_entries > 100_000_000 {
            return Err("platform.visibility_max_entries must be at most 100000000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_in_front_of_the_store_only() {
        let auto = PlatformSettings::default();
        assert!(auto.is_enabled(true));
        assert!(!auto.is_enabled(false));
        for explicit in [true, false] {
            let s = PlatformSettings {
                enabled: Some(explicit),
                ..PlatformSettings::default()
            };
            assert_eq!(
                (s.is_enabled(true), s.is_enabled(false)),
                (explicit, explicit)
            );
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(PlatformSettings::default().check(), Ok(()));
        for (bad, field) in [
            (
                PlatformSettings {
                    visibility_ttl_ms: 0,
                    ..PlatformSettings::default()
                },
                "visibility_ttl_ms",
            ),
            (
                PlatformSettings {
                    visibility_max_entries: 0,
                    ..PlatformSettings::default()
                },
                "visibility_max_entries",
            ),
            (
                PlatformSettings {
                    redis_timeout_ms: 100_000_000_000,
                    ..PlatformSettings::default()
                },
                "redis_timeout_ms",
            ),
        ] {
            assert!(bad.check().is_err_and(|m| m.contains(field)), "{field}");
        }
    }
}
