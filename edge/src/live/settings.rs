//! `[live]` section of the edge configuration: how the edge follows the live event streams (the
//! Redis holding them is `[redis]`).

use serde::{Deserialize, Serialize};

use crate::config::bounds;

/// Live LL-HLS settings (`[live]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSettings {
    /// Serve live and still-transcoding playlists from the Redis event streams. Off: every
    /// playlist comes from the object store.
    pub enabled: bool,
    /// Complete segments a live (sliding-window) playlist keeps.
    pub window_segments: usize,
    /// A rendition nobody asked for during this long, in milliseconds, is no longer followed.
    pub idle_stop_ms: u64,
    /// How long "this rendition has no event stream" is remembered, in milliseconds, before
    /// Redis is asked again (VOD playlists then come from the store without a Redis round trip).
    pub probe_ttl_ms: u64,
    /// Longest wait for Redis when a rendition is first requested, in milliseconds; after it
    /// the request is served from the store.
    pub probe_timeout_ms: u64,
    /// `BLOCK` of each `XREAD`, in milliseconds: how often an idle follower checks whether it
    /// should stop (entries are delivered the moment they are added whatever this is).
    pub read_block_ms: u64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window_segments: ringcast_proto::live::DEFAULT_WINDOW_SEGMENTS,
            idle_stop_ms: 60_000,
            probe_ttl_ms: 1000,
            probe_timeout_ms: 2000,
            read_block_ms: 1000,
        }
    }
}

impl LiveSettings {
    /// Values that cannot work, as a message naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.window_segments == 0 {
            return Err("live.window_segments must be positive".into());
        }
        bounds::positive(&[
            ("live.idle_stop_ms", self.idle_stop_ms),
            ("live.probe_timeout_ms", self.probe_timeout_ms),
            ("live.read_block_ms", self.read_block_ms),
        ])?;
        bounds::at_most_one_day(&[
            ("live.idle_stop_ms", self.idle_stop_ms),
            ("live.probe_ttl_ms", self.probe_ttl_ms),
            ("live.probe_timeout_ms", self.probe_timeout_ms),
            ("live.read_block_ms", self.read_block_ms),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(LiveSettings::default().check(), Ok(()));
        let bad = LiveSettings {
            window_segments: 0,
            ..LiveSettings::default()
        };
        assert!(bad.check().is_err_and(|m| m.contains("window_segments")));
        let bad = LiveSettings {
            read_block_ms: 0,
            ..LiveSettings::default()
        };
        assert!(bad.check().is_err_and(|m| m.contains("read_block_ms")));
    }
}
