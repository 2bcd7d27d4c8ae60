//! The ffmpeg argument list of one job: one decode, `split` into N scalers, N H.264/AAC
//! encodes, N fragmented-CMAF outputs (one per FIFO). Pure, so the exact command is unit-tested.
//!
//! Shape (DESIGN.md / RECIPES.md "ffmpeg → CMAF ladder on FIFOs"):
//! ```text
//! -hide_banner -y -f DEMUXER -protocol_whitelist file [-enable_drefs 0] -i file:SRC
//! -filter_complex [0:v:0]split=N[s0]..;[s0]scale=-2:H0,format=yuv420p[v0];..
//! per rung: -map [vI] -map 0:a:0? -c:v libx264 -preset P -profile:v high|main
//!           -b:v B -maxrate 1.07B -bufsize 1.5B -g G -keyint_min G -sc_threshold 0 -r FPS
//!           -c:a aac -b:a 128k -ac 2 -ar 48000
//!           -f mp4 -movflags cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer
//!           -frag_duration PART_US OUT_I
//! ```
//! The fixed GOP with scene-cut keyframes off puts a keyframe exactly every segment, in every
//! rendition at the same instant, so segments line up across the ladder and players can switch
//! at any segment boundary.
//!
//! Sources are hostile input: every run forces the demuxer of the container the ingest detected
//! and allows only the `file` protocol ([`source_input_args`]), and a live pull is read as
//! MPEG-TS over `http`/`tcp` only ([`live_input_args`]). Left to probe by content, ffmpeg reads a
//! text file as a DASH manifest, HLS playlist or ffconcat list and opens whatever it names.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ringcast_proto::container::Container;

use crate::ladder::{Rung, AUDIO_BITRATE};
use crate::probe::ProbeInfo;

/// A source file on local disk and the container it must be read as.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub container: Container,
}

/// Input options (up to and including `-i`) for ffmpeg or ffprobe reading `source`: its
/// container's demuxer forced (`-f`), only the `file` protocol allowed, and for MP4/MOV no
/// external data references (`-enable_drefs 0`, also the default, stated so it stays off). The
/// path goes in as a `file:` URL so a `:` in it is never taken for a protocol name.
pub fn source_input_args(source: SourceFile<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-f", source.container.ffmpeg_format()]
        .into_iter()
        .chain(["-protocol_whitelist", "file"])
        .map(OsString::from)
        .collect();
    if source.container == Container::IsoBmff {
        a.extend(["-enable_drefs", "0"].map(OsString::from));
    }
    a.push("-i".into());
    let mut url = OsString::from("file:");
    url.push(source.path.as_os_str());
    a.push(url);
    a
}

/// Input options for a live pull: MPEG-TS (what publishers push) over `http`/`tcp` only, so a
/// publisher that sends a playlist or manifest instead cannot make ffmpeg fetch anything else.
pub fn live_input_args(pull_url: &str) -> [&str; 6] {
    [
        "-f",
        Container::MpegTs.ffmpeg_format(),
        "-protocol_whitelist",
        "http,tcp",
        "-i",
        pull_url,
    ]
}

/// Flags that make ffmpeg's mp4 muxer write CMAF: `ftyp`+`moov` up front with no samples
/// (`empty_moov`), then self-contained `moof`+`mdat` fragments (`default_base_moof`), a new
/// fragment at every keyframe (`frag_keyframe`) and no index at the end (`skip_trailer`:
/// a FIFO cannot seek back, and the packager does not need it).
pub const CMAF_MOVFLAGS: &str = "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer";

/// Encoder settings shared by every rung of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    /// x264 preset.
    pub preset: String,
    pub segment_seconds: f64,
    pub part_seconds: f64,
}

/// GOP length in frames: one keyframe per segment.
pub fn gop_frames(segment_seconds: f64, fps: f64) -> u32 {
    let g = (segment_seconds * fps).round();
    if g.is_finite() && g >= 1.0 {
        g.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

/// The `-filter_complex` graph: decode once, split, scale each branch.
pub fn filter_graph(rungs: &[Rung]) -> String {
    let mut g = format!("[0:v:0]split={}", rungs.len());
    for i in 0..rungs.len() {
        g.push_str(&format!("[s{i}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        // format=yuv420p: a 10-bit or 4:4:4 source would otherwise make libx264 pick a profile
        // (High 10, High 4:4:4) that contradicts -profile:v and most players.
        g.push_str(&format!(
            ";[s{i}]scale=-2:{},format=yuv420p[v{i}]",
            r.height
        ));
    }
    g
}

/// The audio encode of every rung, VOD and live: AAC stereo 48 kHz at `bitrate` (the caller's
/// `AUDIO_BITRATE.to_string()`, kept alive for the borrowed array).
pub fn audio_args(bitrate: &str) -> [&str; 8] {
    ["-c:a", "aac", "-b:a", bitrate, "-ac", "2", "-ar", "48000"]
}

/// The full argument list (after the `-loglevel level+info` that ffmpeg-sidecar adds itself).
/// `outputs[i]` receives rung `i`.
pub fn build_args(
    input: SourceFile<'_>,
    rungs: &[Rung],
    outputs: &[PathBuf],
    probe: &ProbeInfo,
    settings: &EncodeSettings,
) -> Vec<OsString> {
    let gop = gop_frames(settings.segment_seconds, probe.fps.as_f64()).to_string();
    let frag_us = ((settings.part_seconds * 1e6).round() as u64).to_string();
    let audio_bitrate = AUDIO_BITRATE.to_string();
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    // -y: the FIFOs already exist; without it ffmpeg-sidecar adds -n and ffmpeg refuses them.
    push(&["-hide_banner", "-y"]);
    a.extend(source_input_args(input));
    a.push("-filter_complex".into());
    a.push(filter_graph(rungs).into());
    for (i, (rung, out)) in rungs.iter().zip(outputs).enumerate() {
        let b = rung.video_bitrate;
        let maxrate = (b * 107 / 100).to_string();
        let bufsize = (b * 3 / 2).to_string();
        let label = format!("[v{i}]");
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&["-map", &label]);
        if probe.has_audio {
            // `?`: tolerate a source whose audio stream vanishes (probe said yes, decoder no).
            push(&["-map", "0:a:0?"]);
        }
        push(&[
            "-c:v",
            "libx264",
            "-preset",
            &settings.preset,
            "-profile:v",
            rung.profile,
            "-b:v",
            &b.to_string(),
            "-maxrate",
            &maxrate,
            "-bufsize",
            &bufsize,
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-r",
            &probe.fps.to_arg(),
        ]);
        if probe.has_audio {
            push(&audio_args(&audio_bitrate));
        }
        push(&[
            "-f",
            "mp4",
            "-movflags",
            CMAF_MOVFLAGS,
            "-frag_duration",
            &frag_us,
        ]);
        a.push(out.as_os_str().to_owned());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder;
    use crate::probe::FrameRate;

    fn probe(has_audio: bool, num: u32, den: u32) -> ProbeInfo {
        ProbeInfo {
            width: 1280,
            height: 720,
            fps: FrameRate { num, den },
            duration: Some(4.0),
            has_audio,
        }
    }

    fn settings() -> EncodeSettings {
        EncodeSettings {
            preset: "veryfast".into(),
            segment_seconds: 2.0,
            part_seconds: 0.5,
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn gop_is_one_segment() {
        assert_eq!(gop_frames(2.0, 30.0), 60);
        assert_eq!(gop_frames(2.0, 30000.0 / 1001.0), 60);
        assert_eq!(gop_frames(2.0, 25.0), 50);
        assert_eq!(gop_frames(1.0, 23.976), 24);
        assert_eq!(gop_frames(0.0, 30.0), 1);
        assert_eq!(gop_frames(2.0, f64::NAN), 1);
    }

    #[test]
    fn filter_graph_splits_once_and_scales_each_rung() {
        let rungs = ladder::select(1280, 720);
        assert_eq!(
            filter_graph(&rungs),
            "[0:v:0]split=3[s0][s1][s2];[s0]scale=-2:720,format=yuv420p[v0];\
             [s1]scale=-2:480,format=yuv420p[v1];[s2]scale=-2:360,format=yuv420p[v2]"
        );
    }

    #[test]
    fn full_command_for_a_720p_source_with_audio() {
        let rungs = ladder::select(1280, 720);
        let outs: Vec<PathBuf> = (0..3)
            .map(|i| PathBuf::from(format!("/w/r{i}.fifo")))
            .collect();
        let args = strings(&build_args(
            SourceFile {
                path: Path::new("/w/source"),
                container: Container::IsoBmff,
            },
            &rungs,
            &outs,
            &probe(true, 30, 1),
            &settings(),
        ));
        let head = [
            "-hide_banner",
            "-y",
            "-f",
            "mov",
            "-protocol_whitelist",
            "file",
            "-enable_drefs",
            "0",
            "-i",
            "file:/w/source",
            "-filter_complex",
        ];
        assert_eq!(&args[..head.len()], head);
        let per_output = |i: usize, profile: &str, b: &str, max: &str, buf: &str| -> Vec<String> {
            let label = format!("[v{i}]");
            let out = format!("/w/r{i}.fifo");
            [
                "-map",
                &label,
                "-map",
                "0:a:0?",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                profile,
                "-b:v",
                b,
                "-maxrate",
                max,
                "-bufsize",
                buf,
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-sc_threshold",
                "0",
                "-r",
                "30/1",
                "-c:a",
                "aac",
                "-b:a",
                "128000",
                "-ac",
                "2",
                "-ar",
                "48000",
                "-f",
                "mp4",
                "-movflags",
                "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer",
                "-frag_duration",
                "500000",
                &out,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let mut expected: Vec<String> = Vec::new();
        expected.extend(per_output(0, "high", "2800000", "2996000", "4200000"));
        expected.extend(per_output(1, "main", "1400000", "1498000", "2100000"));
        expected.extend(per_output(2, "main", "800000", "856000", "1200000"));
        assert_eq!(args[head.len() + 1..], expected[..]);
    }

    #[test]
    fn silent_source_maps_no_audio_and_keeps_exact_rate() {
        let rungs = ladder::select(426, 240);
        let args = strings(&build_args(
            SourceFile {
                path: Path::new("in.mp4"),
                container: Container::Matroska,
            },
            &rungs,
            &[PathBuf::from("o.fifo")],
            &probe(false, 30000, 1001),
            &EncodeSettings {
                preset: "ultrafast".into(),
                segment_seconds: 1.0,
                part_seconds: 0.25,
            },
        ));
        assert!(!args.iter().any(|a| a == "0:a:0?" || a == "-c:a"));
        let pos = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
        assert_eq!(args[pos("-r") + 1], "30000/1001");
        assert_eq!(args[pos("-g") + 1], "30");
        assert_eq!(args[pos("-frag_duration") + 1], "250000");
        assert_eq!(args[pos("-preset") + 1], "ultrafast");
        assert_eq!(args.last().map(String::as_str), Some("o.fifo"));
        // No `-enable_drefs` for a demuxer that does not have the option (ffmpeg would refuse it).
        let input = ["-f", "matroska", "-protocol_whitelist", "file", "-i"];
        assert_eq!(&args[2..7], input);
        assert_eq!(args[7], "file:in.mp4");
    }

    #[test]
    fn every_container_forces_its_demuxer_and_the_file_protocol() {
        for (container, demuxer) in [
            (Container::IsoBmff, "mov"),
            (Container::Matroska, "matroska"),
            (Container::MpegTs, "mpegts"),
            (Container::Avi, "avi"),
        ] {
            let args = strings(&source_input_args(SourceFile {
                path: Path::new("/w/a:b"),
                container,
            }));
            assert_eq!(args[..4], ["-f", demuxer, "-protocol_whitelist", "file"]);
            assert_eq!(args[args.len() - 2..], ["-i", "file:/w/a:b"]);
        }
        assert_eq!(
            live_input_args("http://i/live/k/pull"),
            [
                "-f",
                "mpegts",
                "-protocol_whitelist",
                "http,tcp",
                "-i",
                "http://i/live/k/pull"
            ]
        );
    }
}
