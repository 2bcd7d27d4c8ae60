//! The ffmpeg argument lists of a job: one decode, `split` into N scalers, N H.264/AAC
//! encodes, N fragmented-CMAF outputs (one per FIFO). Pure, so the exact commands are
//! unit-tested. VOD ([`build_args`]) and live ([`build_live_args`]) differ only in their input
//! options and the flags [`RungEncoding`] switches; every rung's output comes from
//! [`push_rung_args`].
//!
//! Shape (DESIGN.md / RECIPES.md "ffmpeg → CMAF ladder on FIFOs"):
//! ```text
//! -hide_banner -y -f DEMUXER -protocol_whitelist file [-enable_drefs 0] -i file:SRC
//! -filter_complex [0:v:0]split=N[s0]..;[s0]scale=-2:H0,format=yuv420p[v0];..  (W0:-2 if vertical)
//! per rung: -map [vI] -map 0:a:0? -map_metadata -1 -map_chapters -1 -sn -dn
//!           -c:v libx264 -preset P -profile:v high|main
//!           -b:v B -maxrate 1.07B -bufsize 1.5B -g G -keyint_min G -sc_threshold 0 -r FPS
//!           -c:a aac -b:a 128k -ac 2 -ar 48000
//!           -f mp4 -movflags cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer
//!           -frag_duration PART_US OUT_I
//! VOD also: split=N+3 …[pp][pf][pt], the poster and sprite branches and their JPEG outputs
//!           ([`crate::ffmpeg::previews`])
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

use ringcast_proto::media::limits::output_frame_rate;

use crate::cmaf::cutter::Targets;
use crate::config::live::LiveTranscodeConfig;
use crate::ffmpeg::input::{live_input_args, source_input_args, SourceFile};
use crate::ffmpeg::previews::{self, PreviewFiles, PreviewPlan};
use crate::ffmpeg::probe::ProbeInfo;
use crate::ffmpeg::rung::{gop_frames, push_rung_args, RungEncoding};
use crate::ladder::Rung;

/// Encoder settings shared by every rung of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    /// x264 preset.
    pub preset: String,
    pub segment_seconds: f64,
    pub part_seconds: f64,
}

/// The poster and thumbnail outputs of a VOD run: what they do and where they go.
#[derive(Debug, Clone, Copy)]
pub struct Previews<'a> {
    pub plan: &'a PreviewPlan,
    pub files: &'a PreviewFiles,
}

/// The `-filter_complex` graph: decode once, split, scale each branch; with `previews`, three
/// more branches of the same split for the poster and the thumbnail sprites.
pub fn filter_graph(rungs: &[Rung], previews: Option<&PreviewPlan>) -> String {
    filter_graph_at(rungs, None, previews)
}

/// [`filter_graph`] with the decoded frames first brought to `fps` (an ffmpeg rate such as
/// `60/1`) when given: for a source faster than the output cap. The `fps` filter drops frames
/// evenly and ends exactly at the source's end; `-r` alone repeats a frame or two at the end,
/// which became a stray last segment of 0.03 s.
pub fn filter_graph_at(
    rungs: &[Rung],
    fps: Option<&str>,
    previews: Option<&PreviewPlan>,
) -> String {
    let extra: &[&str] = if previews.is_some() {
        &previews::SPLIT_LABELS
    } else {
        &[]
    };
    let decimate = fps.map(|f| format!("fps={f},")).unwrap_or_default();
    let mut g = format!("[0:v:0]{decimate}split={}", rungs.len() + extra.len());
    for i in 0..rungs.len() {
        g.push_str(&format!("[s{i}]"));
    }
    for label in extra {
        g.push_str(&format!("[{label}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        // The short side is given and ffmpeg derives the long one (`-2`: aspect kept, even), so
        // a vertical rung is scaled by its width; the ladder computed the same long side.
        let scale = if r.is_vertical() {
            format!("{}:-2", r.width)
        } else {
            format!("-2:{}", r.height)
        };
        // format=yuv420p: a 10-bit or 4:4:4 source would otherwise make libx264 pick a profile
        // (High 10, High 4:4:4) that contradicts -profile:v and most players.
        g.push_str(&format!(";[s{i}]scale={scale},format=yuv420p[v{i}]"));
    }
    if let Some(plan) = previews {
        g.push_str(&previews::filter_branches(plan));
    }
    g
}

/// The full VOD argument list (after the `-loglevel level+info` that ffmpeg-sidecar adds
/// itself). `outputs[i]` receives rung `i`; `previews` adds the poster and sprite outputs.
pub fn build_args(
    input: SourceFile<'_>,
    rungs: &[Rung],
    outputs: &[PathBuf],
    probe: &ProbeInfo,
    settings: &EncodeSettings,
    previews: Option<Previews<'_>>,
) -> Vec<OsString> {
    // Capped at MAX_OUTPUT_FPS (a 120 fps source is encoded at 60); the GOP is counted in
    // output frames so a keyframe still starts every segment.
    let out_fps = output_frame_rate(probe.fps);
    let fps = out_fps.to_arg();
    let encoding = RungEncoding {
        preset: &settings.preset,
        zerolatency: false,
        gop_frames: gop_frames(settings.segment_seconds, out_fps.as_f64()),
        fps: &fps,
        audio: probe.has_audio,
        frag_us: (settings.part_seconds * 1e6).round() as u64,
        flush_packets: false,
    };
    // -y: the FIFOs already exist; without it ffmpeg-sidecar adds -n and ffmpeg refuses them.
    let mut a: Vec<OsString> = vec!["-hide_banner".into(), "-y".into()];
    a.extend(source_input_args(input));
    a.push("-filter_complex".into());
    let decimate = (out_fps != probe.fps).then(|| fps.clone());
    a.push(filter_graph_at(rungs, decimate.as_deref(), previews.map(|p| p.plan)).into());
    for (i, (rung, out)) in rungs.iter().zip(outputs).enumerate() {
        push_rung_args(&mut a, i, rung, out, &encoding);
    }
    if let Some(p) = previews {
        previews::push_output_args(&mut a, p.files);
    }
    a
}

/// The ffmpeg argument list of a live job.
pub fn build_live_args(
    pull_url: &str,
    rungs: &[Rung],
    outputs: &[PathBuf],
    targets: &Targets,
    live: &LiveTranscodeConfig,
) -> Vec<OsString> {
    let fps = format!("{}", live.fps);
    let encoding = RungEncoding {
        preset: &live.preset,
        zerolatency: true,
        gop_frames: targets.gop_frames,
        fps: &fps,
        // A live source's audio is not probed: map it optionally.
        audio: true,
        frag_us: targets.frag_duration_us,
        flush_packets: true,
    };
    let timeout_us = (live.input_timeout_secs * 1_000_000).to_string();
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    // -rw_timeout: a pull that stalls (ingest gone) ends the input instead of hanging.
    push(&[
        "-hide_banner",
        "-y",
        // Start after 0.5 s of probing instead of the default 5 s: latency a live viewer would
        // see. Not `-fflags nobuffer`: it drops the packets read while probing, so video (made
        // constant-rate from 0 by `-r`) and audio (kept at its input time) started ≈0.55 s
        // apart and the muxer carried every part's audio that late (docs/live-latency.md).
        "-probesize",
        "500000",
        "-analyzeduration",
        "500000",
        "-rw_timeout",
        &timeout_us,
        // The decoder's frame threads hold (threads − 1) frames back (≈2 frames, 66 ms at
        // 30 fps on two cores); slice threads hold none.
        "-thread_type",
        "slice",
    ]);
    push(&live_input_args(pull_url));
    // Live: no poster or sprites (DESIGN.md "Posters and thumbnails").
    push(&["-filter_complex", &filter_graph(rungs, None)]);
    for (i, (rung, out)) in rungs.iter().zip(outputs).enumerate() {
        push_rung_args(&mut a, i, rung, out, &encoding);
    }
    a
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ringcast_proto::container::Container;

    use super::*;
    use crate::ffmpeg::probe::FrameRate;
    use crate::ladder;

    fn probe(has_audio: bool, num: u32, den: u32) -> ProbeInfo {
        ProbeInfo {
            width: 1280,
            height: 720,
            fps: FrameRate { num, den },
            duration: Some(4.0),
            bit_rate: Some(3_000_000),
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
    fn filter_graph_splits_once_and_scales_each_rung() {
        let rungs = ladder::select(1280, 720);
        assert_eq!(
            filter_graph(&rungs, None),
            "[0:v:0]split=3[s0][s1][s2];[s0]scale=-2:720,format=yuv420p[v0];\
             [s1]scale=-2:480,format=yuv420p[v1];[s2]scale=-2:360,format=yuv420p[v2]"
        );
    }

    /// A 1080x1920 (or rotated 1920x1080) source: every branch scaled by its width, the short
    /// side, so the 1080p rung stays 1080 wide.
    #[test]
    fn filter_graph_scales_a_vertical_source_by_its_width() {
        let rungs = ladder::select(1080, 1920);
        assert_eq!(
            filter_graph(&rungs, None),
            "[0:v:0]split=4[s0][s1][s2][s3];[s0]scale=1080:-2,format=yuv420p[v0];\
             [s1]scale=720:-2,format=yuv420p[v1];[s2]scale=480:-2,format=yuv420p[v2];\
             [s3]scale=360:-2,format=yuv420p[v3]"
        );
        // Square: by height, as horizontal sources.
        assert_eq!(
            filter_graph(&ladder::select(720, 720), None),
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
            None,
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
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
                "-sn",
                "-dn",
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

    /// With previews the one split feeds the rungs and the poster/sprite branches, and their
    /// JPEG outputs follow the rung outputs.
    #[test]
    fn vod_command_with_previews_shares_the_decode() {
        let rungs = ladder::select(1280, 720);
        let outs: Vec<PathBuf> = (0..3)
            .map(|i| PathBuf::from(format!("/w/r{i}.fifo")))
            .collect();
        let info = probe(true, 30, 1);
        let plan = previews::plan(&rungs, &info, &Default::default());
        let files = PreviewFiles {
            dir: PathBuf::from("/w"),
        };
        let args = strings(&build_args(
            SourceFile {
                path: Path::new("/w/source"),
                container: Container::IsoBmff,
            },
            &rungs,
            &outs,
            &info,
            &settings(),
            Some(Previews {
                plan: &plan,
                files: &files,
            }),
        ));
        assert_eq!(args.iter().filter(|a| *a == "-i").count(), 1, "one input");
        let graph = &args[args
            .iter()
            .position(|a| a == "-filter_complex")
            .expect("graph")
            + 1];
        assert!(
            graph.starts_with("[0:v:0]split=6[s0][s1][s2][pp][pf][pt];"),
            "{graph}"
        );
        assert!(
            graph.ends_with(&previews::filter_branches(&plan)),
            "{graph}"
        );
        let tail: Vec<&str> = args.iter().rev().take(3).map(String::as_str).collect();
        assert_eq!(tail[0], "/w/thumbs-%d.jpg");
        let last_rung = args.iter().position(|a| a == "/w/r2.fifo").expect("rung 2");
        assert_eq!(args[last_rung + 1..last_rung + 3], ["-map", "[poster]"]);
        // The live graph has no preview branches.
        assert!(!filter_graph(&rungs, None).contains("[pp]"));
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
            None,
        ));
        assert!(!args.iter().any(|a| a == "0:a:0?" || a == "-c:a"));
        let pos = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
        assert_eq!(args[pos("-r") + 1], "30000/1001");
        assert_eq!(args[pos("-g") + 1], "30");
        assert_eq!(args[pos("-frag_duration") + 1], "250000");
        assert_eq!(args[pos("-preset") + 1], "ultrafast");
        assert_eq!(args.last().map(String::as_str), Some("o.fifo"));
        // Without audio the output still drops the source's metadata, chapters and streams.
        let map = pos("-map");
        assert_eq!(
            args[map..map + 8],
            [
                "-map",
                "[v0]",
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
                "-sn",
                "-dn"
            ]
        );
        // No `-enable_drefs` for a demuxer that does not have the option (ffmpeg would refuse it).
        let input = ["-f", "matroska", "-protocol_whitelist", "file", "-i"];
        assert_eq!(&args[2..7], input);
        assert_eq!(args[7], "file:in.mp4");
    }

    /// A 120 fps (or 119.88) source is encoded at half its rate, and the GOP counts output
    /// frames: still one keyframe per 2 s segment.
    #[test]
    fn high_frame_rate_sources_are_capped_at_60() {
        let rungs = ladder::select(1280, 720);
        for ((num, den), rate, gop) in [
            ((120, 1), "60/1", "120"),
            ((120000, 1001), "60000/1001", "120"),
        ] {
            let args = strings(&build_args(
                SourceFile {
                    path: Path::new("in.mp4"),
                    container: Container::IsoBmff,
                },
                &rungs[..1],
                &[PathBuf::from("o.fifo")],
                &probe(true, num, den),
                &settings(),
                None,
            ));
            let pos = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
            assert_eq!(
                args[pos("-filter_complex") + 1],
                format!("[0:v:0]fps={rate},split=1[s0];[s0]scale=-2:720,format=yuv420p[v0]")
            );
            assert_eq!(args[pos("-r") + 1], rate);
            assert_eq!(args[pos("-g") + 1], gop);
            assert_eq!(args[pos("-keyint_min") + 1], gop);
        }
    }

    #[test]
    fn live_args_have_the_latency_and_cadence_flags() {
        let live = LiveTranscodeConfig::default();
        let targets = Targets::live(
            live.part_seconds,
            live.keyframe_seconds,
            live.segment_seconds,
            live.fps,
        );
        let rungs = ladder::live_rungs(&live.heights);
        let outs = vec![PathBuf::from("a.fifo"), PathBuf::from("b.fifo")];
        let args: Vec<String> = build_live_args(
            "http://i/live/k/pull?token=t",
            &rungs,
            &outs,
            &targets,
            &live,
        )
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-hide_banner -y -probesize 500000 -analyzeduration 500000 -rw_timeout 30000000 -thread_type slice -f mpegts -protocol_whitelist http,tcp -i http://i/live/k/pull?token=t -filter_complex [0:v:0]split=2[s0][s1];[s0]scale=-2:720"), "{joined}");
        for want in [
            "-tune zerolatency",
            "-g 10 -keyint_min 10 -sc_threshold 0 -r 30",
            "-frag_duration 165667 -flush_packets 1 a.fifo",
            "-b:v 800000",
        ] {
            assert!(joined.contains(want), "{want} missing: {joined}");
        }
        assert_eq!(args.iter().filter(|a| *a == "-tune").count(), 2);
    }

    /// The whole live command, rung by rung: the same x264 and CMAF flags as VOD plus
    /// `-tune zerolatency` and `-flush_packets 1`, audio always mapped (optionally).
    #[test]
    fn live_command_is_exact() {
        let live = LiveTranscodeConfig::default();
        let targets = Targets::live(
            live.part_seconds,
            live.keyframe_seconds,
            live.segment_seconds,
            live.fps,
        );
        let rungs = ladder::live_rungs(&live.heights);
        let outs = vec![PathBuf::from("a.fifo"), PathBuf::from("b.fifo")];
        let args = strings(&build_live_args(
            "http://i/live/k/pull",
            &rungs,
            &outs,
            &targets,
            &live,
        ));
        let filter = args
            .iter()
            .position(|a| a == "-filter_complex")
            .expect("graph");
        let per_output = |i: usize, profile: &str, b: &str, max: &str, buf: &str, out: &str| {
            let label = format!("[v{i}]");
            [
                "-map",
                &label,
                "-map",
                "0:a:0?",
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
                "-sn",
                "-dn",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-profile:v",
                profile,
                "-b:v",
                b,
                "-maxrate",
                max,
                "-bufsize",
                buf,
                "-g",
                "10",
                "-keyint_min",
                "10",
                "-sc_threshold",
                "0",
                "-r",
                "30",
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
                "165667",
                "-flush_packets",
                "1",
                out,
            ]
            .map(String::from)
            .to_vec()
        };
        let mut expected = per_output(0, "high", "2800000", "2996000", "4200000", "a.fifo");
        expected.extend(per_output(
            1, "main", "800000", "856000", "1200000", "b.fifo",
        ));
        assert_eq!(args[filter + 2..], expected[..]);
    }
}
