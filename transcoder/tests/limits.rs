//! Media limits and the output frame-rate cap through the real transcoder. Jobs are enqueued
//! directly (the ingest refuses such uploads earlier; these are jobs queued by anything else):
//! a source over a limit fails at once, is dead-lettered once with a short reason that the
//! video API shows, and publishes nothing; a 120 fps source is published at 60 fps with one
//! keyframe per segment.

mod support;

use std::process::Command;

use redis::Commands;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{IngestOptions, Stack, TranscoderOptions};

use support::*;

#[test]
fn a_source_over_a_limit_is_dead_lettered_once_with_its_reason() {
    // The ingest only serves the video API here; the jobs bypass it.
    let stack = Stack::builder()
        .redis()
        .ingest(IngestOptions::new())
        .start();
    let (rt, store, queue) = clients(&stack);
    let big = Clip::new(320, 240).seconds(1).write(stack.dir(), "big.mp4");
    let long = Clip::new(160, 120)
        .seconds(3)
        .write(stack.dir(), "long.mp4");
    let t = stack.spawn(TranscoderOptions::new().name("tc-limits").toml(
        "max_attempts = 3\n[limits]\nmax_width = 240\nmax_height = 180\nmax_duration_secs = 2",
    ));
    let cases = [
        ("big", &big, "video is 320x240; the limit is 240x180"),
        ("long", &long, "video is 3 s long; the limit is 2 s"),
    ];
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    for (i, (video, source, want)) in cases.into_iter().enumerate() {
        let job = submit(&rt, &store, &queue, video, source);
        let status = wait_finished(&rt, &queue, &t, &job.job_id);
        assert_eq!(status.state, JobState::Failed, "{video}: {status:?}");
        assert_eq!(status.error.as_deref(), Some(want), "{video}");

        let dlq: redis::streams::StreamRangeReply = conn.xrange_all(keys::JOB_DLQ).expect("XRANGE");
        assert_eq!(dlq.ids.len(), i + 1, "one dead letter per job");
        let reason: String = dlq.ids[i].get("reason").expect("reason");
        assert_eq!(reason, want);
        assert!(rt
            .block_on(store.list(&format!("v/{video}/")))
            .expect("list")
            .is_empty());

        // What the uploader sees.
        let r = stack.ingest().get(&format!("/v1/videos/{video}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["job"]["state"], "failed", "{v}");
        assert_eq!(v["job"]["error"], want, "{v}");
    }
    // Over a limit is permanent: no retries.
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 2.0);
    assert!(t.leftover_job_dirs().is_empty());
}

/// ffprobe's `r_frame_rate` and decoded frame count of the first video stream of `file`.
fn rate_and_frames(file: &std::path::Path) -> (String, u64) {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=r_frame_rate,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let (rate, n) = text.trim().split_once(',').expect("rate,frames");
    (rate.to_string(), n.parse().expect("frames"))
}

#[test]
fn a_120_fps_source_is_published_at_60_fps() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let source = Clip::new(320, 240)
        .fps(120)
        .seconds(4)
        .write(stack.dir(), "fast.mp4");
    assert_eq!(rate_and_frames(&source), ("120/1".to_string(), 480));
    let t = stack.spawn(TranscoderOptions::new().name("tc-fps"));
    let job = submit(&rt, &store, &queue, "fast", &source);
    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", t.log_text());

    let master = get_text(&rt, &store, &keys::version_master("fast", 1));
    for variant in parse_master(&master) {
        let name = variant.attrs["NAME"].clone();
        if let Some(rate) = variant.attrs.get("FRAME-RATE") {
            let rate: f64 = rate.parse().expect("FRAME-RATE");
            assert!(rate <= 60.0, "{name}: FRAME-RATE {rate}");
        }
        let key = |f: &str| keys::rendition_file("fast", 1, &name, f);
        let playlist = parse_and_validate_media(&get_text(&rt, &store, &key("index.m3u8")));
        let init = rt
            .block_on(store.get(&key("init.mp4")))
            .expect("get")
            .expect("init");
        // The whole rendition as a player decodes it: 60 fps, 4 s → 240 frames (give or take
        // the one or two ffmpeg's rate conversion repeats at the end; 480 before the cap).
        let mut whole = init.to_vec();
        for seg in &playlist.segments {
            let bytes = rt
                .block_on(store.get(&key(&seg.uri)))
                .expect("get")
                .expect("segment");
            whole.extend_from_slice(&bytes);
        }
        let path = stack.dir().join(format!("{name}.mp4"));
        std::fs::write(&path, &whole).expect("write");
        let (rate, frames) = rate_and_frames(&path);
        assert_eq!(rate, "60/1", "{name}");
        assert!((236..=244).contains(&frames), "{name}: {frames} frames");
        // GOP = one 2 s segment at the output rate: two segments of 2 s, each a keyframe start.
        let durations: Vec<f64> = playlist.segments.iter().map(|s| s.duration).collect();
        assert_eq!(durations.len(), 2, "{name}: {durations:?}");
        assert!(
            durations.iter().all(|d| (d - 2.0).abs() < 0.05),
            "{name}: {durations:?}"
        );
    }
}
