//! Vertical sources through the real transcoder: the ladder follows the short side, so a
//! 480x854 phone video keeps its width (480x854 and 360x640), and a 854x480 recording tagged
//! `rotate=90` (what phones write) is laddered as the 480x854 video it displays as. Checked the
//! way a player sees it: the master's RESOLUTION and ffprobe on the published segments. The
//! poster has the top rung's upright size and the thumbnail tiles keep the portrait aspect.

mod support;

use std::path::Path;
use std::process::Command;

use ringcast_proto::assets;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{Stack, TranscoderOptions};

use support::*;

/// Expected ladder of a 480x854 display, highest first: name, width, height. (Before the
/// short-side ladder it was 720p at 404x720, 480p at 270x480, 360p at 202x360.)
const LADDER_VERTICAL: [(&str, u32, u32); 2] = [("480p", 480, 854), ("360p", 360, 640)];

/// ffprobe's width, height and display rotation (0 when none) of `init.mp4` + one segment.
fn probe_size_and_rotation(dir: &Path, init: &[u8], segment: &[u8]) -> (u32, u32, i64) {
    let path = dir.join(format!("probe-{}.mp4", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, [init, segment].concat()).expect("write");
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "json"])
        .args([
            "-show_entries",
            "stream=width,height:stream_tags=rotate:stream_side_data=rotation",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ffprobe json");
    let s = &json["streams"][0];
    let dim = |k: &str| u32::try_from(s[k].as_u64().expect(k)).expect(k);
    let rotation = s["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()))
        .or_else(|| s["tags"]["rotate"].as_str().and_then(|r| r.parse().ok()))
        .unwrap_or(0);
    (dim("width"), dim("height"), rotation)
}

/// Width and height of a stored JPEG, by ffprobe.
fn jpeg_size(dir: &Path, bytes: &[u8]) -> (u32, u32) {
    let path = dir.join(format!("img-{}.jpg", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, bytes).expect("write");
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "stream=width,height"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let (w, h) = text.trim().split_once(',').expect("w,h");
    (w.parse().expect("width"), h.parse().expect("height"))
}

/// `src` with a `rotate=90` display matrix added (stream copied, so the coded frames stay as
/// they are), as a phone held upright records.
fn rotate_90(src: &Path, out: &Path) {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(src)
        .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(out)
        .output()
        .expect("ffmpeg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn vertical_and_rotated_sources_keep_their_short_side() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let upright = Clip::new(480, 854)
        .seconds(2)
        .audio(true)
        .write(stack.dir(), "upright.mp4");
    let landscape = Clip::new(854, 480)
        .seconds(2)
        .audio(true)
        .write(stack.dir(), "landscape.mp4");
    let rotated = stack.dir().join("rotated.mp4");
    rotate_90(&landscape, &rotated);
    let t = stack.spawn(TranscoderOptions::new().name("tc-vertical"));

    for (video, source) in [("upright", &upright), ("rotated", &rotated)] {
        let job = submit(&rt, &store, &queue, video, source);
        let status = wait_finished(&rt, &queue, &t, &job.job_id);
        assert_eq!(
            status.state,
            JobState::Done,
            "{video}: {status:?}\n{}",
            t.log_text()
        );

        let master = get_text(&rt, &store, &keys::version_master(video, 1));
        let variants = parse_master(&master);
        let got: Vec<(&str, &str)> = variants
            .iter()
            .map(|v| (v.attrs["NAME"].as_str(), v.attrs["RESOLUTION"].as_str()))
            .collect();
        let want: Vec<(&str, String)> = LADDER_VERTICAL
            .iter()
            .map(|(n, w, h)| (*n, format!("{w}x{h}")))
            .collect();
        let want: Vec<(&str, &str)> = want.iter().map(|(n, r)| (*n, r.as_str())).collect();
        assert_eq!(got, want, "{video}: {master}");

        // What a player decodes: the rung's size, upright, with no rotation left to apply
        // (ffmpeg autorotated while decoding; a leftover matrix would turn it sideways again).
        for (name, w, h) in LADDER_VERTICAL {
            let key = |f: &str| keys::rendition_file(video, 1, name, f);
            let playlist = parse_and_validate_media(&get_text(&rt, &store, &key("index.m3u8")));
            let init = rt
                .block_on(store.get(&key("init.mp4")))
                .expect("get")
                .expect("init");
            let first = &playlist.segments[0];
            let seg = rt
                .block_on(store.get(&key(&first.uri)))
                .expect("get")
                .expect("segment");
            assert_eq!(
                probe_size_and_rotation(stack.dir(), &init, &seg),
                (w, h, 0),
                "{video} {name}"
            );
        }

        // Poster: the top rung, upright. Thumbnails: 160 wide, portrait (160x284), inside the
        // sheet (2 s at one tile per 2 s: a single tile).
        let object = |file: &str| {
            rt.block_on(store.get(&keys::version_file(video, 1, file)))
                .expect("get")
                .unwrap_or_else(|| panic!("{video}/{file} missing"))
        };
        assert_eq!(
            jpeg_size(stack.dir(), &object(assets::POSTER)),
            (480, 854),
            "{video} poster"
        );
        let vtt = String::from_utf8(object(assets::THUMBNAILS_VTT).to_vec()).expect("utf-8");
        assert!(
            vtt.ends_with("\nthumbs-0.jpg#xywh=0,0,160,284\n"),
            "{video}: {vtt}"
        );
        assert_eq!(
            jpeg_size(stack.dir(), &object("thumbs-0.jpg")),
            (160, 284),
            "{video} sheet"
        );
    }
}
