//! A complete upload is read with ffprobe (its sniffed container forced, file protocol only)
//! and held to the media limits before a job is queued: non-media with a video-like prefix gets
//! 415, a video over a limit 422, and neither leaves a job, a source object or a spool file.
//! High priority is refused to uploads unless the config allows it.

mod support;

use std::time::Duration;

use ringcast_proto::job::Priority;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{wait_until, Service, Stack};
use support::*;

/// Upload `body` in one PATCH; the final PATCH's answer.
fn upload(
    ingest: &Service,
    body: &[u8],
    metadata: Option<&str>,
) -> (String, ringcast_testkit::http::Response) {
    let loc = ingest.create(body.len() as u64, metadata);
    let r = ingest.patch(&loc, 0, body);
    (loc, r)
}

/// The error body's code and message.
fn error_of(r: &ringcast_testkit::http::Response) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json error body");
    (
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Nothing of a refused upload remains: no job, no video, no source, no spool, 410 after.
fn assert_refused_without_a_trace(stack: &Stack, loc: &str, len: usize, reason: &str) {
    let ingest = stack.ingest();
    let id = upload_id(loc);
    let queue = queue(stack.redis_url());
    // The job would have been queued before the final PATCH was answered.
    assert!(
        next_job(&queue, Duration::from_millis(10)).is_none(),
        "{loc}: no job"
    );
    assert!(block_on(queue.video(&id)).expect("video hash").is_empty());
    assert!(
        !stack.object_path(&keys::source(&id, 1)).exists(),
        "no source object"
    );
    assert!(
        !ingest.state_dir.join(format!("uploads/{id}.bin")).exists(),
        "spool removed"
    );
    let r = ingest
        .conn()
        .request("HEAD", loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 410, "HEAD after a refusal claims nothing");
    let r = ingest.patch(loc, len as u64, b"");
    assert_eq!(r.status, 410);
    assert!(error_of(&r).1.contains(reason), "{} / {reason}", r.text());
}

/// Files whose first bytes pass the container sniffing but that are no video: the DASH
/// manifest of the original report, a bare `free` box followed by an HLS playlist, an ffconcat
/// list behind an EBML magic, text behind a RIFF AVI header.
fn polyglots() -> Vec<(&'static str, Vec<u8>)> {
    let dash = b"<!--free--><?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
        type=\"static\" mediaPresentationDuration=\"PT1S\"><Period><AdaptationSet>\
        <Representation id=\"1\" bandwidth=\"1\"><BaseURL>file:///etc/passwd</BaseURL>\
        </Representation></AdaptationSet></Period></MPD>\n"
        .to_vec();
    let mut free = b"\0\0\0\x08free".to_vec();
    free.extend_from_slice(
        b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
    );
    free.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    let mut ebml = vec![0x1A, 0x45, 0xDF, 0xA3];
    ebml.extend_from_slice(b"ffconcat version 1.0\nfile '/etc/passwd'\n");
    let mut avi = b"RIFF\x10\x00\x00\x00AVI ".to_vec();
    avi.extend_from_slice(&[b'x'; 2000]);
    vec![
        ("dash", dash),
        ("free+hls", free),
        ("ebml+ffconcat", ebml),
        ("riff", avi),
    ]
}

#[test]
fn non_media_with_a_video_prefix_gets_415_and_no_job() {
    let stack = start(options());
    let ingest = stack.ingest();
    for (name, body) in polyglots() {
        let (loc, r) = upload(ingest, &body, None);
        assert_eq!(r.status, 415, "{name}: {}", r.text());
        let (code, message) = error_of(&r);
        assert_eq!(code, "not_a_video", "{name}");
        // AVI's demuxer opens the RIFF header and finds no stream; the others fail to parse.
        assert!(
            message.contains("not a readable") || message.ends_with("the file has no video stream"),
            "{name}: {message}"
        );
        // Our words only: nothing of the spool path or of ffprobe's own lines.
        assert!(
            !message.contains("uploads/") && !message.contains(" @ 0x"),
            "{message}"
        );
        let reason = message.trim_start_matches("not a video: ");
        assert_refused_without_a_trace(&stack, &loc, body.len(), reason);
    }
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"rejected\"}"),
        polyglots().len() as u64
    );
}

#[test]
fn a_video_over_a_limit_gets_422_and_one_within_passes() {
    let stack =
        start(options().toml("[limits]\nmax_width = 240\nmax_height = 180\nmax_fps = 30.0"));
    let ingest = stack.ingest();

    let big = std::fs::read(
        Clip::new(320, 240)
            .fps(25)
            .seconds(1)
            .write(stack.dir(), "big.mp4"),
    )
    .expect("clip");
    let (loc, r) = upload(ingest, &big, None);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        error_of(&r),
        (
            "media_limit".to_string(),
            "video is 320x240; the limit is 240x180".to_string()
        )
    );
    assert_refused_without_a_trace(&stack, &loc, big.len(), "the limit is 240x180");

    let fast = std::fs::read(
        Clip::new(160, 120)
            .fps(60)
            .seconds(1)
            .write(stack.dir(), "fast.mp4"),
    )
    .expect("clip");
    let (loc, r) = upload(ingest, &fast, None);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(error_of(&r).1, "video is 60 fps; the limit is 30 fps");
    assert_refused_without_a_trace(&stack, &loc, fast.len(), "60 fps");

    let fine = std::fs::read(
        Clip::new(240, 180)
            .fps(25)
            .seconds(1)
            .write(stack.dir(), "ok.mp4"),
    )
    .expect("clip");
    let (loc, r) = upload(ingest, &fine, None);
    assert_eq!(r.status, 204, "{}", r.text());
    let job = next_job(&queue(stack.redis_url()), Duration::from_secs(5))
        .expect("a job for the clip within the limits")
        .job
        .expect("decodable");
    assert_eq!(job.video_id, upload_id(&loc));
    assert_eq!(job.priority, Priority::Normal);
}

/// A one-second black clip (cheap at any size or rate), as uploaded bytes.
fn black_clip(dir: &std::path::Path, name: &str, width: u32, height: u32, fps: u32) -> Vec<u8> {
    let path = Clip::new(width, height)
        .fps(fps)
        .seconds(1)
        .black()
        .write(dir, name);
    std::fs::read(path).expect("clip")
}

#[test]
fn the_default_limits_refuse_an_8k_square_and_240_fps() {
    let stack = start(options());
    let ingest = stack.ingest();
    let cases = [
        (
            black_clip(stack.dir(), "square.mp4", 8192, 8192, 1),
            "video is 8192x8192; the limit is 7680x4320",
        ),
        (
            black_clip(stack.dir(), "fast.mp4", 320, 240, 240),
            "video is 240 fps; the limit is 120 fps",
        ),
    ];
    for (body, want) in cases {
        let (loc, r) = upload(ingest, &body, None);
        assert_eq!(r.status, 422, "{want}: {}", r.text());
        assert_eq!(error_of(&r), ("media_limit".to_string(), want.to_string()));
        assert_refused_without_a_trace(&stack, &loc, body.len(), want);
    }
}

#[test]
fn a_probe_that_hangs_is_killed_and_gets_422() {
    // A stand-in ffprobe that never answers: the only way to make the real one hang on demand.
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let script = dir.path().join("ffprobe");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pid_file.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let stack = start(options().toml(format!(
        "[uploads]\nffprobe_path = \"{}\"\nprobe_timeout_secs = 1",
        script.display()
    )));
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let started = std::time::Instant::now();
    let (loc, r) = upload(ingest, &video, None);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        error_of(&r),
        (
            "probe_timeout".to_string(),
            "could not read the file in time".to_string()
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_refused_without_a_trace(&stack, &loc, video.len(), "in time");
    // The hung process was killed, not left behind.
    let pid = std::fs::read_to_string(&pid_file).expect("the stand-in ran");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
    wait_until(
        Duration::from_secs(5),
        "the timed-out ffprobe to be killed",
        || {
            std::fs::read_to_string(proc_dir.join("stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        },
    );
}
