//! Poster and seek thumbnails through the real transcoder, store, Redis, edge and ffmpeg: a
//! source that is black for its first 20 % gets a poster from the picture after it (not black,
//! the top rung's size), a thumbnail track whose cues cover the media without gaps and point
//! inside the sprite sheets ffmpeg really wrote, all served by the edge as immutable files and
//! recorded in the video hash before the version became current. A job whose poster is missing
//! fails and publishes nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ringcast_proto::assets::{self, VersionAssets};
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::{EdgeOptions, Stack, TranscoderOptions};

use support::*;

/// `seconds` of 1280x720 30 fps: black for the first `black` seconds, then `testsrc2`, with a
/// tone, as an MP4.
fn black_then_pattern(dir: &Path, name: &str, black: u32, seconds: u32) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "color=black:size=1280x720:rate=30:duration={black}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size=1280x720:rate=30:duration={}",
            seconds - black
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ])
        .arg(&out)
        .output()
        .expect("ffmpeg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Width and height of an image, by ffprobe.
fn image_size(path: &Path) -> (u32, u32) {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "stream=codec_name,width,height"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let fields: Vec<&str> = text.split(',').collect();
    assert_eq!(fields[0], "mjpeg", "{} is a JPEG: {text}", path.display());
    (
        fields[1].parse().expect("width"),
        fields[2].parse().expect("height"),
    )
}

/// Mean luma (signalstats YAVG, 16 = black in limited range) of an image.
fn mean_luma(path: &Path) -> f64 {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("lavfi.signalstats.YAVG="))
        .and_then(|v| v.parse().ok())
        .expect("YAVG")
}

/// One parsed cue: start and end in ms, sheet name, x, y, w, h.
#[derive(Debug)]
struct Cue {
    start: u64,
    end: u64,
    sheet: String,
    xywh: [u32; 4],
}

fn parse_ts(ts: &str) -> u64 {
    let (hms, ms) = ts.split_once('.').expect("ms");
    let mut total = 0u64;
    for part in hms.split(':') {
        total = total * 60 + part.parse::<u64>().expect("number");
    }
    total * 1000 + ms.parse::<u64>().expect("ms")
}

/// A WebVTT thumbnail track: header, then blank-line-separated cues of a timing line and a
/// `sheet#xywh=x,y,w,h` payload.
fn parse_vtt(text: &str) -> Vec<Cue> {
    let mut blocks = text.split("\n\n");
    assert_eq!(blocks.next(), Some("WEBVTT"), "{text}");
    assert!(text.ends_with('\n'));
    blocks
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines = b.trim_end().lines();
            let timing = lines.next().expect("timing line");
            let (start, end) = timing.split_once(" --> ").expect("-->");
            let payload = lines.next().expect("payload");
            assert!(lines.next().is_none(), "one payload line: {b}");
            let (sheet, frag) = payload.split_once("#xywh=").expect("#xywh=");
            let v: Vec<u32> = frag.split(',').map(|n| n.parse().expect("xywh")).collect();
            Cue {
                start: parse_ts(start),
                end: parse_ts(end),
                sheet: sheet.to_string(),
                xywh: v.try_into().expect("four numbers"),
            }
        })
        .collect()
}

/// Duration of a published rendition, from its VOD playlist, in ms.
fn published_ms(
    rt: &tokio::runtime::Runtime,
    store: &ringcast_infra::store::ObjectStore,
    video: &str,
) -> u64 {
    let playlist = parse_and_validate_media(&get_text(
        rt,
        store,
        &keys::rendition_file(video, 1, "720p", "index.m3u8"),
    ));
    (playlist.segments.iter().map(|s| s.duration).sum::<f64>() * 1000.0).round() as u64
}

#[test]
fn poster_skips_the_black_start_and_thumbnails_cover_the_media() {
    let stack = Stack::builder().redis().edge(EdgeOptions::new()).start();
    let (rt, store, queue) = clients(&stack);
    // 10 s, black for the first 2 (20 %): the poster search starts at 1 s, in the black.
    let source = black_then_pattern(stack.dir(), "dark-start.mp4", 2, 10);
    assert!(mean_luma(&source) < 20.0, "the source starts black");
    let t = stack.spawn(TranscoderOptions::new().name("tc-previews"));
    let job = submit(&rt, &store, &queue, "dark", &source);
    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", t.log_text());

    let fetch = |key: &str| -> PathBuf {
        let bytes = rt
            .block_on(store.get(key))
            .expect("get")
            .unwrap_or_else(|| panic!("{key} missing"));
        let path = stack.dir().join(key.replace('/', "_"));
        std::fs::write(&path, &bytes).expect("write");
        path
    };

    // The poster: a JPEG of the top rung's size, from the picture, not the black start.
    let poster = fetch(&keys::version_file("dark", 1, assets::POSTER));
    assert_eq!(image_size(&poster), (1280, 720));
    let luma = mean_luma(&poster);
    assert!(luma > 60.0, "poster is not black: YAVG {luma}");

    // The track: contiguous cues from 0 to the published duration, 2 s apart.
    let vtt = get_text(
        &rt,
        &store,
        &keys::version_file("dark", 1, assets::THUMBNAILS_VTT),
    );
    let cues = parse_vtt(&vtt);
    let duration = published_ms(&rt, &store, "dark");
    assert!((9_900..=10_100).contains(&duration), "{duration}");
    assert_eq!(cues.len(), 5, "{vtt}");
    assert_eq!(cues[0].start, 0);
    assert_eq!(cues.last().map(|c| c.end), Some(duration), "{vtt}");
    for w in cues.windows(2) {
        assert_eq!(w[0].end, w[1].start, "contiguous: {vtt}");
        assert_eq!(w[0].end - w[0].start, 2_000, "{vtt}");
    }
    // Every tile inside its sheet's real size; tiles 160 wide, 16:9.
    let mut sizes = std::collections::HashMap::new();
    for cue in &cues {
        let size = *sizes
            .entry(cue.sheet.clone())
            .or_insert_with(|| image_size(&fetch(&keys::version_file("dark", 1, &cue.sheet))));
        let [x, y, w, h] = cue.xywh;
        assert_eq!((w, h), (160, 90), "{cue:?}");
        assert!(
            x + w <= size.0 && y + h <= size.1,
            "{cue:?} outside {size:?}"
        );
    }
    assert_eq!(sizes.keys().collect::<Vec<_>>(), ["thumbs-0.jpg"]);
    assert_eq!(sizes["thumbs-0.jpg"], (800, 90), "5 tiles in one row");

    // Recorded in the video hash, which the ingest's video API lists.
    let video = rt.block_on(queue.video("dark")).expect("video hash");
    let record = VersionAssets::from_json(&video[&assets::field(1)]).expect("record");
    assert_eq!(
        record,
        VersionAssets {
            poster: Some("poster.jpg".into()),
            thumbnails: Some("thumbnails.vtt".into()),
            sheets: vec!["thumbs-0.jpg".into()],
        }
    );

    // Served by the edge like segments: right type, immutable.
    for (file, content_type) in [
        ("poster.jpg", "image/jpeg"),
        ("thumbnails.vtt", "text/vtt"),
        ("thumbs-0.jpg", "image/jpeg"),
    ] {
        let r = stack.edge().get(&format!("/v/dark/1/{file}"));
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.header("content-type"), Some(content_type), "{file}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{file}"
        );
    }
    assert_eq!(
        stack.edge().get("/v/dark/1/thumbnails.vtt").body,
        vtt.as_bytes()
    );
}

/// Media dark through the whole search window still gets a poster (its first frame there),
/// and a job whose ffmpeg leaves no poster fails without publishing the version.
#[test]
fn dark_media_gets_a_fallback_poster_and_a_missing_poster_fails_the_job() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let dark = black_then_pattern(stack.dir(), "dark.mp4", 4, 5);
    let t = stack.spawn(TranscoderOptions::new().name("tc-dark"));
    let job = submit(&rt, &store, &queue, "night", &dark);
    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", t.log_text());
    let poster = stack.object_path(&keys::version_file("night", 1, assets::POSTER));
    assert_eq!(image_size(&poster), (1280, 720));
    assert!(mean_luma(&poster) < 20.0, "the fallback is the dark frame");
    // Only one transcoder may take the next job.
    let mut t = t;
    assert!(t
        .process
        .terminate(std::time::Duration::from_secs(10))
        .is_some_and(|s| s.success()));

    // An ffmpeg that writes everything but then loses the posters.
    let wrapper = stack.dir().join("ffmpeg-no-poster");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nffmpeg \"$@\"; rc=$?\nfor a in \"$@\"; do case $a in *poster*.jpg) rm -f \"$a\";; esac; done\nexit $rc\n",
    )
    .expect("wrapper");
    let mut perms = std::fs::metadata(&wrapper).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).expect("chmod");
    let broken = stack.spawn(
        TranscoderOptions::new()
            .name("tc-no-poster")
            .ffmpeg_path(&wrapper),
    );
    let source = black_then_pattern(stack.dir(), "pattern.mp4", 0, 2);
    let job = submit(&rt, &store, &queue, "noposter", &source);
    let status = wait_finished(&rt, &queue, &broken, &job.job_id);
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    assert_eq!(
        status.error.as_deref(),
        Some("the poster or thumbnails could not be made")
    );
    // Segments and the early versioned master were published progressively, but neither the
    // VOD playlists nor the current pointer nor a thumbnail track.
    let published = rt.block_on(store.list("v/noposter/")).expect("list");
    assert!(
        published.iter().any(|k| k.ends_with(".m4s")),
        "the ladder ran: {published:?}"
    );
    assert!(
        !published.iter().any(|k| k == "v/noposter/master.m3u8"
            || k.ends_with("index.m3u8")
            || k.ends_with(".vtt")
            || k.ends_with(".jpg")),
        "nothing presented as done: {published:?}"
    );
    let video = rt.block_on(queue.video("noposter")).expect("video hash");
    assert!(!video.contains_key("current_version") && !video.contains_key(&assets::field(1)));
}
