//! The outputs of one ffmpeg run, one per rung: the scaled video encoded with x264, the audio
//! with AAC, muxed as fragmented CMAF into the rung's FIFO, with no source metadata, chapters
//! or other streams ([`OUTPUT_HYGIENE`]). VOD and live write the same list;
//! live adds `-tune zerolatency` and `-flush_packets 1`, and takes its frame rate from the
//! config instead of the probe.
//!
//! The fixed GOP with scene-cut keyframes off puts a keyframe exactly every segment, in every
//! rendition at the same instant, so segments line up across the ladder and players can switch
//! at any segment boundary.

use std::ffi::OsString;
use std::path::Path;

use crate::ladder::{Rung, AUDIO_BITRATE};

/// x264 presets ffmpeg accepts for `-preset`; anything else would fail every job.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Flags that make ffmpeg's mp4 muxer write CMAF: `ftyp`+`moov` up front with no samples
/// (`empty_moov`), then self-contained `moof`+`mdat` fragments (`default_base_moof`), a new
/// fragment at every keyframe (`frag_keyframe`) and no index at the end (`skip_trailer`:
/// a FIFO cannot seek back, and the packager does not need it).
pub const CMAF_MOVFLAGS: &str = "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer";

/// Published media carry nothing of the source but its pictures and sound: by default ffmpeg
/// copies the source's global and per-stream metadata (GPS `location`, `comment`, camera and
/// editing tags) and its chapters into every output's `moov`. `-map_metadata -1` and
/// `-map_chapters -1` turn that copying off; `-sn -dn` keep subtitle and data streams out even
/// if a `-map` ever selects more than the one video and one audio stream (docs/security.md).
pub const OUTPUT_HYGIENE: [&str; 6] = ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"];

/// GOP length in frames: one keyframe per segment.
pub fn gop_frames(segment_seconds: f64, fps: f64) -> u32 {
    let g = (segment_seconds * fps).round();
    if g.is_finite() && g >= 1.0 {
        g.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

/// How every rung of one ffmpeg run is encoded and muxed.
#[derive(Debug, Clone, Copy)]
pub struct RungEncoding<'a> {
    /// x264 preset.
    pub preset: &'a str,
    /// `-tune zerolatency` (live): no lookahead, no B-frames, a frame leaves the encoder as
    /// soon as it is in.
    pub zerolatency: bool,
    /// Frames per GOP (`-g` and `-keyint_min`).
    pub gop_frames: u32,
    /// Output frame rate as ffmpeg reads it (`-r`).
    pub fps: &'a str,
    /// Map and encode the source's first audio stream.
    pub audio: bool,
    /// Fragment (part) duration in microseconds (`-frag_duration`).
    pub frag_us: u64,
    /// `-flush_packets 1` (live): hand every fragment to the FIFO at once instead of filling
    /// the I/O buffer.
    pub flush_packets: bool,
}

/// Append rung `index`'s output (it reads the filter graph's `[v{index}]`) writing to `out`.
pub fn push_rung_args(
    a: &mut Vec<OsString>,
    index: usize,
    rung: &Rung,
    out: &Path,
    enc: &RungEncoding<'_>,
) {
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    let b = rung.video_bitrate;
    let gop = enc.gop_frames.to_string();
    push(&["-map", &format!("[v{index}]")]);
    if enc.audio {
        // `?`: tolerate a source whose audio stream vanishes (probe said yes, decoder no).
        push(&["-map", "0:a:0?"]);
    }
    push(&OUTPUT_HYGIENE);
    push(&["-c:v", "libx264", "-preset", enc.preset]);
    if enc.zerolatency {
        push(&["-tune", "zerolatency"]);
    }
    push(&[
        "-profile:v",
        rung.profile,
        "-b:v",
        &b.to_string(),
        "-maxrate",
        &(b * 107 / 100).to_string(),
        "-bufsize",
        &(b * 3 / 2).to_string(),
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-r",
        enc.fps,
    ]);
    if enc.audio {
        let bitrate = AUDIO_BITRATE.to_string();
        push(&["-c:a", "aac", "-b:a", &bitrate, "-ac", "2", "-ar", "48000"]);
    }
    push(&[
        "-f",
        "mp4",
        "-movflags",
        CMAF_MOVFLAGS,
        "-frag_duration",
        &enc.frag_us.to_string(),
    ]);
    if enc.flush_packets {
        push(&["-flush_packets", "1"]);
    }
    a.push(out.as_os_str().to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gop_is_one_segment() {
        assert_eq!(gop_frames(2.0, 30.0), 60);
        assert_eq!(gop_frames(2.0, 30000.0 / 1001.0), 60);
        assert_eq!(gop_frames(2.0, 25.0), 50);
        assert_eq!(gop_frames(1.0, 23.976), 24);
        assert_eq!(gop_frames(0.0, 30.0), 1);
        assert_eq!(gop_frames(2.0, f64::NAN), 1);
    }
}
