//! The `[events]` section of the ingest config: the progress streams
//! (`GET /v1/videos/{id}/events`, [`crate::api::events`]).

use std::time::Duration;

use ringcast_infra::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Progress stream settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Open progress streams per worker (core) beyond which new ones get 503 + `Retry-After`.
    pub max_streams_per_worker: usize,
    /// Seconds a stream stays open at most; the client reconnects (it is told `retry:`).
    pub max_lifetime_secs: u64,
    /// Milliseconds between two reads of the video's state from Redis (50–500).
    pub poll_interval_ms: u64,
    /// Seconds of silence after which a `: keepalive` comment is sent (proxies close idle
    /// streams).
    pub heartbeat_secs: u64,
    /// The `retry:` hint (ms) a client waits before reconnecting.
    pub retry_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_streams_per_worker: 256,
            max_lifetime_secs: 3600,
            poll_interval_ms: 250,
            heartbeat_secs: 15,
            retry_ms: 3000,
        }
    }
}

impl EventsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.max_streams_per_worker == 0 {
            return invalid("events.max_streams_per_worker must be at least 1");
        }
        if self.max_lifetime_secs == 0 || self.heartbeat_secs == 0 {
            return invalid(
                "events.max_lifetime_secs and events.heartbeat_secs must be at least 1",
            );
        }
        if !(50..=500).contains(&self.poll_interval_ms) {
            return invalid("events.poll_interval_ms must be between 50 and 500");
        }
        Ok(())
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_lifetime_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_hold() {
        assert!(EventsConfig::default().validate().is_ok());
        for bad in [
            EventsConfig {
                poll_interval_ms: 10,
                ..EventsConfig::default()
            },
            EventsConfig {
                poll_interval_ms: 501,
                ..EventsConfig::default()
            },
            EventsConfig {
                max_streams_per_worker: 0,
                ..EventsConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
