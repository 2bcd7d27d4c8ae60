//! End to end, the way a user meets the stack: real redis-server, real object store (s3s-fs or
//! the filesystem backend), the three release-shaped binaries, a generated 1080p clip with
//! audio uploaded through tus, transcoded by ffmpeg, and played back through the edge by real
//! clients: ffmpeg decodes every rendition to the end, ffprobe reports the ladder's resolutions,
//! npm `hls-parser` accepts every playlist in strict mode, and the edge fetches a segment from
//! the origin exactly once for two requests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ringcast_loadtest::{tus_client, video_status};
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{http, EdgeOptions, IngestOptions, Stack, StoreBackend, TranscoderOptions};

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn vod_end_to_end(backend: StoreBackend) {
    let stack = Stack::builder()
        .store(backend)
        .ingest(IngestOptions::new())
        .transcoder(TranscoderOptions::new())
        .edge(EdgeOptions::new())
        .start();
    let edge = stack.edge().addr;
    // A 1080p30 clip with a sine tone: long enough for several 2 s segments, short for CI.
    let clip = Clip::new(1920, 1080)
        .seconds(5)
        .audio(true)
        .write(stack.dir(), "clip.mp4");
    let ingest_url = stack.ingest().url();
    let opts = tus_client::UploadOptions {
        chunk_size: 256 * 1024, // several PATCHes, like a real client on a slow link
        ..Default::default()
    };
    let up = tus_client::upload_file(&format!("{ingest_url}/files/"), &clip, &opts, |_, _| {})
        .expect("tus upload");
    assert!(!up.video_id.is_empty(), "final PATCH carried no video id");
    let done = video_status::wait_done(
        &ingest_url,
        &up.video_id,
        None,
        Duration::from_secs(600),
        |_| {},
    );
    if let Err(e) = &done {
        panic!("transcode did not finish: {e:#}");
    }

    let master = format!("http://{}/v/{}/master.m3u8", edge, up.video_id);

    // npm hls-parser, strict mode, master + every media playlist.
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/js/validate_hls.mjs");
    let o = run(Command::new("node").arg(js).arg(&master));
    assert!(
        o.status.success(),
        "hls-parser rejected a playlist: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("validator JSON");
    let uris: Vec<String> = report["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["uri"].as_str().expect("uri").to_string())
        .collect();
    assert_eq!(uris.len(), 4, "1080p source → 4 renditions: {report}");

    // Two GETs of a segment nobody asked for yet (only playlists were read so far; ffprobe and
    // ffmpeg below fetch segments) → exactly one origin fetch.
    let seg = format!(
        "/v/{}/{}",
        up.video_id,
        uris[3].replace("index.m3u8", "seg2.m4s")
    );
    let before = stack.edge().value("ringcast_edge_origin_fetches_total");
    let a = http::get(edge, &seg).expect("segment GET");
    let b = http::get(edge, &seg).expect("segment GET again");
    assert_eq!((a.status, b.status), (200, 200));
    assert!(!a.body.is_empty() && a.body == b.body);
    assert_eq!(a.header("content-type"), Some("video/iso.segment"));
    let after = stack.edge().value("ringcast_edge_origin_fetches_total");
    assert_eq!(
        after - before,
        1.0,
        "two GETs of {seg} must cause one origin fetch"
    );

    // ffprobe: the renditions have the ladder's heights, highest first.
    let mut heights = Vec::new();
    for uri in &uris {
        let url = format!("http://{}/v/{}/{uri}", edge, up.video_id);
        let o = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height",
                "-of",
                "json",
            ])
            .arg(&url));
        assert!(
            o.status.success(),
            "ffprobe {url}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let probe: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ffprobe JSON");
        // An HLS input may list the stream once per program; every entry must agree.
        let streams = probe["streams"].as_array().expect("streams");
        assert!(!streams.is_empty(), "ffprobe found no video in {url}");
        let h = streams[0]["height"].as_u64().expect("height");
        assert!(
            streams.iter().all(|s| s["height"].as_u64() == Some(h)),
            "{probe}"
        );
        heights.push(h as u32);
    }
    assert_eq!(heights, [1080, 720, 480, 360]);

    // ffmpeg decodes every rendition (all programs' streams) to the end without an error.
    let o = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&master)
        .args(["-map", "0", "-f", "null", "-"]));
    assert!(
        o.status.success(),
        "ffmpeg playback failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "ffmpeg reported errors while decoding: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn vod_upload_transcode_play_with_filesystem_store() {
    vod_end_to_end(StoreBackend::Fs);
}

#[test]
fn vod_upload_transcode_play_with_s3_store() {
    vod_end_to_end(StoreBackend::S3);
}
