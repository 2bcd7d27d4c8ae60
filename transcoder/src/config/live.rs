//! The `[live]` section of the transcoder config: how live jobs are encoded and announced.

use ringcast_infra::config::ConfigError;
use ringcast_infra::live_events::StreamTtl;
use ringcast_proto::live::rules;
use ringcast_proto::media::limits::MAX_OUTPUT_FPS;
use serde::{Deserialize, Serialize};

use crate::ffmpeg::rung::X264_PRESETS;

/// Live encoding and packaging settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveTranscodeConfig {
    /// LL-HLS part duration in seconds (0.15–0.5; 1/6 = 5 frames at 30 fps is the shortest
    /// measured, docs/BENCHMARKS.md), rounded to whole frames: ffmpeg
    /// `-frag_duration` and `PART-TARGET` follow from it (see `cmaf::cutter::Targets`). Shorter
    /// parts put the live edge closer (players hold back 3 parts) for more requests per second.
    pub part_seconds: f64,
    /// Keyframe interval (the encoder's fixed GOP) in seconds, rounded to whole parts: every
    /// part that starts with a keyframe is `INDEPENDENT=YES`, and a player can only start on
    /// one, so a start-up lands up to one GOP further behind than its hold-back. Between
    /// `part_seconds` and `segment_seconds`; costs bitrate (docs/BENCHMARKS.md, GOP cost).
    pub keyframe_seconds: f64,
    /// Segment duration in seconds (≈2), rounded to a whole number of GOPs, so every segment
    /// starts with a keyframe.
    pub segment_seconds: f64,
    /// `PART-HOLD-BACK` in part targets, at least 3 (rfc8216bis §4.4.3.8 minimum): how far
    /// behind the live edge players aim. More absorbs a jittery producer without stalls (each
    /// stall makes hls.js hold back a second more) at the price of latency.
    pub part_hold_back_parts: f64,
    /// Output frame rate (`-r`): live sources are not probed, and a fixed rate keeps parts a
    /// whole number of frames. At most 60 (`MAX_OUTPUT_FPS`).
    pub fps: f64,
    /// Rendition heights, highest first (e.g. `[720, 360]`); bitrates from the VOD ladder.
    pub heights: Vec<u32>,
    /// x264 preset for live (fast enough to keep up in real time on the machine).
    pub preset: String,
    /// Approximate MAXLEN of each rendition's event stream.
    pub event_maxlen: usize,
    /// Re-announce `start` after every this many segments, so that a consumer joining a
    /// trimmed stream finds one (keep `event_maxlen` well above
    /// `start_every_segments × (parts per segment + 1)`).
    pub start_every_segments: u32,
    /// ffmpeg input read/write timeout in seconds: a pull that delivers nothing for this long
    /// (ingest gone) ends the stream. Must exceed the ingest's `live.publisher_timeout_secs +
    /// live.grace_secs` (10 + 10 by default), the longest silence of a stream whose publisher
    /// drops and reconnects.
    pub input_timeout_secs: u64,
    /// Seconds an ended rendition's event stream stays in Redis after its `end` (live and VOD):
    /// followers that are behind still read up to `end`; later requests are answered from the
    /// final playlists in the store. Without it every stream ever published would stay in Redis.
    pub ended_stream_ttl_secs: u64,
    /// Seconds an event stream lives after its last event when no `end` comes (a job that died
    /// or was dead-lettered); every event pushes the expiry forward.
    pub idle_stream_ttl_secs: u64,
}

impl Default for LiveTranscodeConfig {
    fn default() -> Self {
        Self {
            // 5 frames at 30 fps with a keyframe every 10: the setting that put a stock hls.js
            // under 1 s behind capture (docs/live-latency.md, tuning), for +1–7 % bitrate.
            part_seconds: 1.0 / 6.0,
            keyframe_seconds: 1.0 / 3.0,
            segment_seconds: 2.0,
            part_hold_back_parts: 3.0,
            fps: 30.0,
            heights: vec![720, 360],
            preset: "veryfast".into(),
            event_maxlen: 2000,
            start_every_segments: 5,
            input_timeout_secs: 30,
            ended_stream_ttl_secs: 600,
            idle_stream_ttl_secs: 86_400,
        }
    }
}

impl LiveTranscodeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !(0.15..=0.5).contains(&self.part_seconds) {
            return invalid(format!(
                "live.part_seconds {} must be within 0.15–0.5",
                self.part_seconds
            ));
        }
        if !(self.keyframe_seconds >= self.part_seconds
            && self.keyframe_seconds <= self.segment_seconds)
        {
            return invalid(format!(
                "live.keyframe_seconds {} must be within live.part_seconds ({}) and \
                 live.segment_seconds ({})",
                self.keyframe_seconds, self.part_seconds, self.segment_seconds
            ));
        }
        if !(self.part_hold_back_parts >= rules::MIN_PART_HOLD_BACK_PARTS
            && self.part_hold_back_parts <= 20.0)
        {
            return invalid(format!(
                "live.part_hold_back_parts {} must be within 3–20 (rfc8216bis: at least 3 part targets)",
                self.part_hold_back_parts
            ));
        }
        if !(self.segment_seconds >= 1.0 && self.segment_seconds <= 6.0) {
            return invalid(format!(
                "live.segment_seconds {} must be within 1–6",
                self.segment_seconds
            ));
        }
        // Renditions never exceed MAX_OUTPUT_FPS, live or VOD.
        let max_fps = f64::from(MAX_OUTPUT_FPS);
        if !(self.fps >= 10.0 && self.fps <= max_fps) {
            return invalid(format!(
                "live.fps {} must be within 10–{MAX_OUTPUT_FPS}",
                self.fps
            ));
        }
        if self.heights.is_empty()
            || self
                .heights
                .iter()
                .any(|h| *h < 144 || *h > 2160 || h % 2 == 1)
        {
            return invalid("live.heights must list even heights within 144–2160".into());
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return invalid(format!(
                "live.preset {:?} is not an x264 preset",
                self.preset
            ));
        }
        if self.event_maxlen < 100 || self.start_every_segments == 0 || self.input_timeout_secs == 0
        {
            return invalid(
                "live.event_maxlen must be ≥ 100, start_every_segments and input_timeout_secs ≥ 1"
                    .into(),
            );
        }
        if self.ended_stream_ttl_secs == 0 || self.idle_stream_ttl_secs < self.ended_stream_ttl_secs
        {
            return invalid(
                "live.ended_stream_ttl_secs must be ≥ 1 and live.idle_stream_ttl_secs ≥ it".into(),
            );
        }
        Ok(())
    }

    /// The expiry rules for event streams.
    pub fn stream_ttl(&self) -> StreamTtl {
        StreamTtl {
            ended_secs: self.ended_stream_ttl_secs,
            idle_secs: self.idle_stream_ttl_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_keys_are_validated() {
        let ok = LiveTranscodeConfig::default();
        assert!(ok.validate().is_ok());
        // The default before 1/6 s parts: still a valid choice per ladder.
        let fifth = LiveTranscodeConfig {
            part_seconds: 0.2,
            keyframe_seconds: 0.4,
            ..ok.clone()
        };
        assert!(fifth.validate().is_ok());
        for bad in [
            LiveTranscodeConfig {
                part_seconds: 0.1,
                ..ok.clone()
            },
            LiveTranscodeConfig {
                keyframe_seconds: 0.1,
                ..ok.clone()
            },
            LiveTranscodeConfig {
                keyframe_seconds: 3.0,
                ..ok.clone()
            },
            LiveTranscodeConfig {
                part_hold_back_parts: 2.5,
                ..ok.clone()
            },
            LiveTranscodeConfig {
                part_hold_back_parts: f64::NAN,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
