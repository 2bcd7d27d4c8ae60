//! ffprobe's `-print_format json -show_streams -show_format` output turned into the summary
//! the ladder, the ffmpeg command and the [limits](crate::media::limits) are computed from:
//! size, frame rate, duration, bitrate and audio presence.
//!
//! Every value comes from an untrusted file, so all of it is optional in the JSON model and
//! checked before use. Values that are implausible rather than merely large (a frame rate of
//! 90000/1 written by a VFR muxer, a 1-pixel frame) are [`ProbeError::BadVideo`]; values that
//! are real but more than this service accepts are left to [`crate::media::limits`].

use serde::Deserialize;

/// Frame rates outside this range are not believed (VFR sources report 1000/1 or 90000/1).
pub const MAX_PLAUSIBLE_FPS: f64 = 240.0;
const MIN_FPS: f64 = 1.0;

/// Why ffprobe's output does not describe a video we can transcode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// The text is not ffprobe's JSON (a crashed or confused ffprobe).
    #[error("ffprobe output is not valid JSON: {0}")]
    NotJson(String),
    /// No video stream (cover art does not count).
    #[error("source has no video stream")]
    NoVideo,
    /// The video stream has values nothing can work with.
    #[error("source video stream is unusable: {0}")]
    BadVideo(String),
}

/// A frame rate as the exact rational ffprobe reported (`30000/1001`), so `-r` keeps it exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// The value for ffmpeg's `-r`.
    pub fn to_arg(self) -> String {
        format!("{}/{}", self.num, self.den)
    }

    /// Parse `num/den` (or a plain integer) into a plausible frame rate.
    pub fn parse(s: &str) -> Option<Self> {
        let (num, den) = match s.split_once('/') {
            Some((n, d)) => (n.trim().parse().ok()?, d.trim().parse().ok()?),
            None => (s.trim().parse().ok()?, 1),
        };
        if den == 0 {
            return None;
        }
        let fr = FrameRate { num, den };
        (MIN_FPS..=MAX_PLAUSIBLE_FPS)
            .contains(&fr.as_f64())
            .then_some(fr)
    }
}

/// What the ingest and the transcoder need to know about a source.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeInfo {
    /// Display width and height (after rotation metadata, which ffmpeg applies when decoding).
    pub width: u32,
    pub height: u32,
    pub fps: FrameRate,
    /// Seconds; `None` when the container does not say (progress is then not reported).
    pub duration: Option<f64>,
    /// Bits per second of the video stream, or of the whole file when the container gives no
    /// per-stream rate (Matroska); `None` when neither is known.
    pub bit_rate: Option<u64>,
    pub has_audio: bool,
}

#[derive(Debug, Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    #[serde(default)]
    format: Option<FormatJson>,
}

#[derive(Debug, Deserialize)]
struct StreamJson {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    disposition: Option<DispositionJson>,
    #[serde(default)]
    tags: Option<TagsJson>,
    #[serde(default)]
    side_data_list: Vec<SideDataJson>,
}

#[derive(Debug, Deserialize)]
struct DispositionJson {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Deserialize)]
struct TagsJson {
    rotate: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SideDataJson {
    rotation: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct FormatJson {
    duration: Option<String>,
    bit_rate: Option<String>,
}

/// Interpret ffprobe's JSON. The first real video stream (not cover art) decides size and
/// frame rate, matching what `0:v:0` selects in the ffmpeg command.
pub fn parse_probe_json(json: &str) -> Result<ProbeInfo, ProbeError> {
    let probe: ProbeJson =
        serde_json::from_str(json).map_err(|e| ProbeError::NotJson(e.to_string()))?;
    let is = |s: &StreamJson, kind: &str| s.codec_type.as_deref() == Some(kind);
    let video = probe
        .streams
        .iter()
        .find(|s| is(s, "video") && s.disposition.as_ref().is_none_or(|d| d.attached_pic == 0))
        .ok_or(ProbeError::NoVideo)?;
    let has_audio = probe.streams.iter().any(|s| is(s, "audio"));

    // Large frames are the limits' business (with a message naming the limit); only sizes no
    // encoder can work with are refused here.
    let (mut width, mut height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w >= 2 && h >= 2 => (w, h),
        (w, h) => {
            return Err(ProbeError::BadVideo(format!(
                "frame size {w:?}x{h:?} is missing or smaller than 2x2"
            )))
        }
    };
    if rotation_degrees(video).rem_euclid(180) == 90 {
        // ffmpeg autorotates while decoding, so the ladder sees the rotated frame.
        std::mem::swap(&mut width, &mut height);
    }
    let fps = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .flatten()
        .find_map(|s| FrameRate::parse(s))
        .ok_or_else(|| {
            ProbeError::BadVideo(format!(
                "no usable frame rate (avg_frame_rate {:?}, r_frame_rate {:?})",
                video.avg_frame_rate, video.r_frame_rate
            ))
        })?;
    let positive = |s: &Option<String>| {
        s.as_deref()
            .and_then(|d| d.trim().parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
    };
    let format = probe.format.as_ref();
    let duration = format
        .and_then(|f| positive(&f.duration))
        .or_else(|| positive(&video.duration));
    let rate = |s: &Option<String>| {
        s.as_deref()
            .and_then(|r| r.trim().parse::<u64>().ok())
            .filter(|r| *r > 0)
    };
    let bit_rate = rate(&video.bit_rate).or_else(|| format.and_then(|f| rate(&f.bit_rate)));
    Ok(ProbeInfo {
        width,
        height,
        fps,
        duration,
        bit_rate,
        has_audio,
    })
}

/// Rotation in whole degrees from the display matrix side data (ffmpeg ≥ 5) or the legacy
/// `rotate` tag; 0 when absent.
fn rotation_degrees(s: &StreamJson) -> i64 {
    let from_side = s
        .side_data_list
        .iter()
        .find_map(|d| d.rotation)
        .filter(|r| r.is_finite())
        .map(|r| r.round() as i64);
    let from_tag = || {
        s.tags
            .as_ref()
            .and_then(|t| t.rotate.as_deref())
            .and_then(|r| r.trim().parse::<i64>().ok())
    };
    from_side.or_else(from_tag).unwrap_or(0)
}

/// The last `n` non-empty lines of a tool's stderr, joined with "; " for a one-line log entry.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed ffprobe 5.1 output for a 1280x720 30 fps H.264 + AAC MP4.
    const MP4_WITH_AUDIO: &str = r#"{
        "streams": [
            {"index": 0, "codec_name": "h264", "codec_type": "video", "width": 1280, "height": 720,
             "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "duration": "4.000000",
             "bit_rate": "2500000", "disposition": {"default": 1, "attached_pic": 0}},
            {"index": 1, "codec_name": "aac", "codec_type": "audio", "sample_rate": "44100",
             "r_frame_rate": "0/0", "avg_frame_rate": "0/0", "duration": "4.000000"}
        ],
        "format": {"filename": "src.mp4", "nb_streams": 2, "duration": "4.010000",
                   "bit_rate": "2650000"}
    }"#;

    #[test]
    fn parses_size_rate_duration_bitrate_and_audio() {
        let p = parse_probe_json(MP4_WITH_AUDIO).expect("parse");
        assert_eq!((p.width, p.height), (1280, 720));
        assert_eq!(p.fps, FrameRate { num: 30, den: 1 });
        assert_eq!(p.fps.to_arg(), "30/1");
        assert_eq!(p.duration, Some(4.01));
        assert_eq!(p.bit_rate, Some(2_500_000), "the video stream's own rate");
        assert!(p.has_audio);
    }

    #[test]
    fn ntsc_rate_rotation_and_fallbacks() {
        let json = r#"{"streams": [
            {"codec_type": "video", "width": 1920, "height": 1080, "avg_frame_rate": "0/0",
             "r_frame_rate": "30000/1001", "duration": "12.5",
             "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}
        ], "format": {"bit_rate": "8000000"}}"#;
        let p = parse_probe_json(json).expect("parse");
        assert_eq!((p.width, p.height), (1080, 1920), "rotated 90 degrees");
        assert_eq!(p.fps.to_arg(), "30000/1001");
        assert!((p.fps.as_f64() - 29.97).abs() < 0.01);
        assert_eq!(
            p.duration,
            Some(12.5),
            "stream duration when the format has none"
        );
        assert_eq!(p.bit_rate, Some(8_000_000), "the file's rate as a fallback");
        assert!(!p.has_audio);

        let legacy = r#"{"streams": [{"codec_type": "video", "width": 640, "height": 480,
            "avg_frame_rate": "25/1", "tags": {"rotate": "270"}}]}"#;
        let p = parse_probe_json(legacy).expect("parse");
        assert_eq!((p.width, p.height), (480, 640));
        assert_eq!((p.duration, p.bit_rate), (None, None));
    }

    #[test]
    fn huge_frames_are_parsed_for_the_limits_to_judge() {
        let json = r#"{"streams": [{"codec_type": "video", "width": 16384, "height": 16384,
            "avg_frame_rate": "240/1"}]}"#;
        let p = parse_probe_json(json).expect("parse");
        assert_eq!((p.width, p.height, p.fps.num), (16384, 16384, 240));
    }

    #[test]
    fn cover_art_is_not_video() {
        let json = r#"{"streams": [
            {"codec_type": "audio"},
            {"codec_type": "video", "width": 600, "height": 600, "avg_frame_rate": "0/0",
             "r_frame_rate": "90000/1", "disposition": {"attached_pic": 1}}
        ], "format": {"duration": "180.0"}}"#;
        assert_eq!(parse_probe_json(json), Err(ProbeError::NoVideo));
    }

    #[test]
    fn rejects_unusable_streams() {
        let no_streams = r#"{"streams": [], "format": {"duration": "1"}}"#;
        assert_eq!(parse_probe_json(no_streams), Err(ProbeError::NoVideo));
        let no_size = r#"{"streams": [{"codec_type": "video", "avg_frame_rate": "30/1"}]}"#;
        assert!(matches!(
            parse_probe_json(no_size),
            Err(ProbeError::BadVideo(_))
        ));
        let vfr_garbage = r#"{"streams": [{"codec_type": "video", "width": 64, "height": 64,
            "avg_frame_rate": "1000/1", "r_frame_rate": "0/0"}]}"#;
        assert!(matches!(
            parse_probe_json(vfr_garbage),
            Err(ProbeError::BadVideo(_))
        ));
        assert!(matches!(
            parse_probe_json("not json"),
            Err(ProbeError::NotJson(_))
        ));
        // ffprobe prints `{}` for a file it opened but found nothing in.
        assert_eq!(parse_probe_json("{}"), Err(ProbeError::NoVideo));
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b; c");
        assert_eq!(last_lines("", 2), "");
    }
}
