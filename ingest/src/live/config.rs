//! The `[live]` section of the ingest config: stream keys and the live push limits.

use std::collections::BTreeMap;
use std::time::Duration;

use ringcast_infra::config::ConfigError;
use ringcast_proto::keys;
use ringcast_proto::secret::{check_strength, redact};
use serde::{Deserialize, Serialize};

/// Live push settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveIngestConfig {
    /// Stream keys allowed to publish, each mapped to the video id its stream is published as
    /// (`PUT /live/{key}` → `v/{video}/{version}/…`). A key not listed is refused with 403
    /// before the body is read. Empty = live push disabled. Keys and video ids are 1–64
    /// characters of `[A-Za-z0-9_-]`; a key is a publishing credential, so it must have at least
    /// 16 characters (not one repeated) and is logged only redacted.
    pub keys: BTreeMap<String, String>,
    /// Seconds a stream survives its publisher's disconnect: a publisher that reconnects with
    /// the same key within this time continues the same stream (same version, the pull stream
    /// goes on, the packager marks a discontinuity); after it the pull stream ends (EOF) and
    /// the transcoder ends the stream.
    pub grace_secs: u64,
    /// Seconds a publisher may send nothing before its push counts as disconnected (its socket
    /// is closed and the grace period starts). Keep `publisher_timeout_secs + grace_secs` below
    /// the transcoder's `live.input_timeout_secs` (30 by default): the pull is silent for that
    /// sum while a dropped publisher reconnects, and a reconnect must find its stream alive and
    /// its key free (a dead socket that still held the key would answer 409).
    pub publisher_timeout_secs: u64,
    /// Bytes of a stream kept in memory for pullers. A new puller starts at the oldest byte
    /// kept; a puller that falls further behind than this is disconnected (the publisher is
    /// never slowed down by a puller).
    pub buffer_bytes: usize,
    /// Base URL the transcoder uses to reach this ingest's pull endpoint
    /// (`{pull_base_url}/live/{key}/pull?token=…`); unset → `http://{listen}` (with 127.0.0.1
    /// for an unspecified listen address).
    pub pull_base_url: Option<String>,
}

impl Default for LiveIngestConfig {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            grace_secs: 10,
            publisher_timeout_secs: 10,
            buffer_bytes: 16 * 1024 * 1024,
            pull_base_url: None,
        }
    }
}

impl LiveIngestConfig {
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs)
    }

    pub fn publisher_timeout(&self) -> Duration {
        Duration::from_secs(self.publisher_timeout_secs)
    }

    /// Reject keys and ids that could not become object or Redis keys, and a zero buffer.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, video) in &self.keys {
            if !keys::is_valid_id(key) || !keys::is_valid_id(video) {
                return Err(ConfigError::Invalid(format!(
                    "live.keys: {} = {video:?}: keys and video ids are 1-64 characters of [A-Za-z0-9_-]",
                    redact(key)
                )));
            }
            check_strength(&format!("live stream key {}", redact(key)), key)
                .map_err(|e| ConfigError::Invalid(format!("live.keys: {e}")))?;
        }
        if self.publisher_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "live.publisher_timeout_secs must be at least 1".into(),
            ));
        }
        if self.buffer_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "live.buffer_bytes must be at least 65536".into(),
            ));
        }
        if let Some(url) = &self.pull_base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(
                    "live.pull_base_url must start with http:// or https://".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bounds_are_checked() {
        let mut bad = LiveIngestConfig::default();
        bad.keys.insert("a b".into(), "v".into());
        assert!(bad.validate().is_err());
        let mut weak = LiveIngestConfig::default();
        weak.keys.insert("key1".into(), "cam".into());
        let err = weak.validate().expect_err("short key").to_string();
        assert!(err.contains("at least 16"), "{err}");
        let mut good = LiveIngestConfig::default();
        good.keys.insert("cam-key-0123456789".into(), "cam".into());
        good.validate().expect("a strong key");
        let bad = LiveIngestConfig {
            buffer_bytes: 10,
            ..LiveIngestConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = LiveIngestConfig {
            pull_base_url: Some("ftp://x".into()),
            ..LiveIngestConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
