//! The limits a source video must stay within, and the check the ingest (before it accepts an
//! upload) and the transcoder (before it runs a job, for jobs that did not come through this
//! ingest) both apply to the [`ProbeInfo`] of a source.
//!
//! A source over a limit is refused for good, with a short message that names the value and the
//! limit ("video is 16384x16384; the limit is 7680x4320"): it is shown to the uploader (the
//! ingest's 422 body, the job `error` in `GET /v1/videos/{id}`), so it says nothing about the
//! host. Limits exist because decode and encode cost grows with every one of these values and a
//! single hostile upload could otherwise hold a worker for hours or exhaust its memory.
//!
//! Separately from what is accepted, renditions never exceed [`MAX_OUTPUT_FPS`]:
//! [`output_frame_rate`] divides a faster source's rate by the smallest whole number that
//! brings it under the cap, so frames are dropped evenly (120 → 60, 119.88 → 59.94, 100 → 50).

use serde::{Deserialize, Serialize};

use crate::media::probe::{FrameRate, ProbeInfo, MAX_PLAUSIBLE_FPS};

/// Renditions are encoded at no more than this many frames per second, whatever the source.
pub const MAX_OUTPUT_FPS: u32 = 60;

/// Largest frame side the encoder (x264) and the ladder accept; limits cannot be set above it.
pub const MAX_ENCODABLE_SIDE: u32 = 16_384;

/// Configured limits (`[limits]` in the ingest and transcoder config files; keep them equal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaLimits {
    /// Largest frame, as width x height of a landscape frame; a portrait frame is checked
    /// against the same box turned on its side (4320x7680 passes 7680x4320).
    pub max_width: u32,
    pub max_height: u32,
    /// Most pixels per frame (width x height).
    pub max_pixels: u64,
    /// Highest source frame rate accepted (renditions are capped at [`MAX_OUTPUT_FPS`] anyway).
    pub max_fps: f64,
    /// Longest source accepted, in seconds (a source whose container states no duration is not
    /// held to it).
    pub max_duration_secs: u64,
    /// Highest source video bitrate accepted, in bits per second (the whole file's rate when
    /// the container gives no per-stream rate).
    pub max_bitrate: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            max_width: 7680,
            max_height: 4320,
            max_pixels: 7680 * 4320,
            max_fps: 120.0,
            max_duration_secs: 6 * 3600,
            max_bitrate: 200_000_000,
        }
    }
}

/// Which limit a source is over, with the values to name in the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitViolation {
    #[error("video is {width}x{height}; the limit is {max_width}x{max_height}")]
    FrameSize {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error(
        "video is {width}x{height} ({} megapixels); the limit is {} megapixels",
        megapixels(u64::from(*width) * u64::from(*height)),
        megapixels(*max_pixels)
    )]
    Pixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("video is {} fps; the limit is {} fps", decimal(*fps), decimal(*max_fps))]
    FrameRate { fps: f64, max_fps: f64 },
    #[error(
        "video is {} long; the limit is {}",
        // Whole seconds, but never shown equal to the limit it is over.
        human_duration((seconds.round() as u64).max(max_secs.saturating_add(1))),
        human_duration(*max_secs)
    )]
    Duration { seconds: f64, max_secs: u64 },
    #[error("video bitrate is {}; the limit is {}", mbps(*bit_rate), mbps(*max_bit_rate))]
    Bitrate { bit_rate: u64, max_bit_rate: u64 },
}

impl MediaLimits {
    /// Values that would refuse everything or promise what the encoder cannot do; the message
    /// names the key.
    pub fn validate(&self) -> Result<(), String> {
        let side = 2..=MAX_ENCODABLE_SIDE;
        if !side.contains(&self.max_width) || !side.contains(&self.max_height) {
            return Err(format!(
                "limits.max_width and limits.max_height must be between 2 and {MAX_ENCODABLE_SIDE}"
            ));
        }
        if self.max_pixels < 4 {
            return Err("limits.max_pixels must be at least 4".into());
        }
        if !(self.max_fps.is_finite() && self.max_fps >= 1.0 && self.max_fps <= MAX_PLAUSIBLE_FPS) {
            return Err(format!(
                "limits.max_fps must be between 1 and {MAX_PLAUSIBLE_FPS}"
            ));
        }
        if self.max_duration_secs == 0 || self.max_bitrate == 0 {
            return Err(
                "limits.max_duration_secs and limits.max_bitrate must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// The first limit `info` is over, or `Ok`.
    pub fn check(&self, info: &ProbeInfo) -> Result<(), LimitViolation> {
        let (w, h) = (info.width, info.height);
        let fits = |a: u32, b: u32| a <= self.max_width && b <= self.max_height;
        if !(fits(w, h) || fits(h, w)) {
            // Name the box in the source's orientation, so the message compares like with like.
            let (max_width, max_height) = if h > w {
                (self.max_height, self.max_width)
            } else {
                (self.max_width, self.max_height)
            };
            return Err(LimitViolation::FrameSize {
                width: w,
                height: h,
                max_width,
                max_height,
            });
        }
        if u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(LimitViolation::Pixels {
                width: w,
                height: h,
                max_pixels: self.max_pixels,
            });
        }
        let fps = info.fps.as_f64();
        // 119.88 (120000/1001) is "120 fps" to everybody; allow for the rational's rounding.
        if fps > self.max_fps + 1e-6 {
            return Err(LimitViolation::FrameRate {
                fps,
                max_fps: self.max_fps,
            });
        }
        if let Some(seconds) = info.duration {
            if seconds > self.max_duration_secs as f64 {
                return Err(LimitViolation::Duration {
                    seconds,
                    max_secs: self.max_duration_secs,
                });
            }
        }
        if let Some(bit_rate) = info.bit_rate {
            if bit_rate > self.max_bitrate {
                return Err(LimitViolation::Bitrate {
                    bit_rate,
                    max_bit_rate: self.max_bitrate,
                });
            }
        }
        Ok(())
    }
}

/// The frame rate renditions of a `source`-rate video are encoded at: the source's own when it
/// is at most [`MAX_OUTPUT_FPS`], else the source's divided by the smallest whole number that
/// brings it there (every k-th frame kept, so motion stays even).
pub fn output_frame_rate(source: FrameRate) -> FrameRate {
    let max = f64::from(MAX_OUTPUT_FPS);
    let fps = source.as_f64();
    if fps <= max + 1e-6 {
        return source;
    }
    let k = (fps / max - 1e-9).ceil().max(1.0) as u32;
    let (num, den) = (source.num, source.den.saturating_mul(k));
    let g = gcd(num, den).max(1);
    FrameRate {
        num: num / g,
        den: den / g,
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `30`, `29.97`, `119.88`: at most two decimals, no trailing zeros.
fn decimal(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn megapixels(pixels: u64) -> String {
    decimal(pixels as f64 / 1e6)
}

fn mbps(bits_per_second: u64) -> String {
    format!("{} Mb/s", decimal(bits_per_second as f64 / 1e6))
}

/// `6 h`, `1 h 30 min`, `2 min 5 s`, `40 s`.
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(width: u32, height: u32, num: u32, den: u32) -> ProbeInfo {
        ProbeInfo {
            width,
            height,
            fps: FrameRate { num, den },
            duration: Some(10.0),
            bit_rate: Some(5_000_000),
            has_audio: true,
        }
    }

    #[test]
    fn defaults_accept_everyday_and_8k_video_either_way_up() {
        let l = MediaLimits::default();
        l.validate().expect("defaults are valid");
        for ok in [
            info(1920, 1080, 30, 1),
            info(1080, 1920, 30000, 1001),
            info(7680, 4320, 60, 1),
            info(4320, 7680, 60, 1),
            info(1280, 720, 120000, 1001),
            info(1280, 720, 120, 1),
        ] {
            assert_eq!(l.check(&ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn each_limit_has_a_short_message() {
        let l = MediaLimits::default();
        let cases = [
            (
                info(16384, 16384, 30, 1),
                "video is 16384x16384; the limit is 7680x4320",
            ),
            (
                info(7681, 100, 30, 1),
                "video is 7681x100; the limit is 7680x4320",
            ),
            (
                info(100, 7681, 30, 1),
                "video is 100x7681; the limit is 4320x7680",
            ),
            (
                info(1280, 720, 240, 1),
                "video is 240 fps; the limit is 120 fps",
            ),
            (
                info(1280, 720, 24000, 100),
                "video is 240 fps; the limit is 120 fps",
            ),
        ];
        for (i, msg) in cases {
            let v = l.check(&i).expect_err(msg);
            assert_eq!(v.to_string(), msg);
        }
        let long = ProbeInfo {
            duration: Some(6.0 * 3600.0 + 90.6),
            ..info(640, 360, 25, 1)
        };
        assert_eq!(
            l.check(&long).expect_err("too long").to_string(),
            "video is 6 h 1 min 31 s long; the limit is 6 h"
        );
        let fat = ProbeInfo {
            bit_rate: Some(350_000_000),
            ..info(640, 360, 25, 1)
        };
        assert_eq!(
            l.check(&fat).expect_err("bitrate").to_string(),
            "video bitrate is 350 Mb/s; the limit is 200 Mb/s"
        );
        let unknown = ProbeInfo {
            duration: None,
            bit_rate: None,
            ..info(640, 360, 25, 1)
        };
        assert_eq!(
            l.check(&unknown),
            Ok(()),
            "unknown values are not held against it"
        );
    }

    #[test]
    fn lowered_limits_apply_and_the_first_violation_wins() {
        let l = MediaLimits {
            max_width: 1920,
            max_height: 1080,
            max_pixels: 1280 * 720,
            max_fps: 30.0,
            max_duration_secs: 60,
            max_bitrate: 1_000_000,
        };
        l.validate().expect("valid");
        assert_eq!(
            l.check(&info(1920, 1080, 60, 1))
                .expect_err("pixels")
                .to_string(),
            "video is 1920x1080 (2.07 megapixels); the limit is 0.92 megapixels"
        );
        assert!(matches!(
            l.check(&info(640, 360, 60, 1)),
            Err(LimitViolation::FrameRate { .. })
        ));
        assert!(matches!(
            l.check(&info(640, 360, 30, 1)),
            Err(LimitViolation::Bitrate { .. })
        ));
        let short = ProbeInfo {
            duration: Some(60.2),
            ..info(640, 360, 30, 1)
        };
        assert_eq!(
            l.check(&short).expect_err("duration").to_string(),
            "video is 1 min 1 s long; the limit is 1 min"
        );
    }

    #[test]
    fn invalid_limits_are_refused() {
        let d = MediaLimits::default();
        for bad in [
            MediaLimits {
                max_width: 20_000,
                ..d.clone()
            },
            MediaLimits {
                max_height: 1,
                ..d.clone()
            },
            MediaLimits {
                max_pixels: 0,
                ..d.clone()
            },
            MediaLimits {
                max_fps: 0.5,
                ..d.clone()
            },
            MediaLimits {
                max_fps: 1000.0,
                ..d.clone()
            },
            MediaLimits {
                max_fps: f64::NAN,
                ..d.clone()
            },
            MediaLimits {
                max_duration_secs: 0,
                ..d.clone()
            },
            MediaLimits {
                max_bitrate: 0,
                ..d.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn output_rate_is_capped_by_an_even_divisor() {
        let fr = |num, den| FrameRate { num, den };
        assert_eq!(output_frame_rate(fr(30, 1)), fr(30, 1));
        assert_eq!(output_frame_rate(fr(60, 1)), fr(60, 1));
        assert_eq!(output_frame_rate(fr(60000, 1001)), fr(60000, 1001));
        assert_eq!(output_frame_rate(fr(120, 1)), fr(60, 1));
        assert_eq!(output_frame_rate(fr(120000, 1001)), fr(60000, 1001));
        assert_eq!(output_frame_rate(fr(100, 1)), fr(50, 1));
        assert_eq!(output_frame_rate(fr(240, 1)), fr(60, 1));
        assert_eq!(output_frame_rate(fr(90, 1)), fr(45, 1));
        for (num, den) in [(61, 1), (72, 1), (144, 1), (239, 1), (48000, 1001)] {
            let out = output_frame_rate(fr(num, den)).as_f64();
            assert!((30.0..=60.0).contains(&out), "{num}/{den} -> {out}");
        }
    }

    #[test]
    fn limits_parse_from_config_with_defaults() {
        let l: MediaLimits = serde_json::from_str(r#"{"max_width": 1920}"#).expect("parse");
        assert_eq!(l.max_width, 1920);
        assert_eq!(l.max_height, 4320);
        assert!(serde_json::from_str::<MediaLimits>(r#"{"max_widht": 1}"#).is_err());
    }
}
