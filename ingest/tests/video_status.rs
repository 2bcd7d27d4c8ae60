//! `GET /v1/videos/{id}` against the real services: the poster and the thumbnail track of the
//! current version (an upload transcoded by the real transcoder shows none while it is queued
//! and both, as files that exist, once it is ready), and the job's outcome after the job hash
//! expired (the transcoder gives job hashes a TTL when they end; the video hash keeps a copy).

mod support;

use std::time::Duration;

use ringcast_infra::queue::RetentionConfig;
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_testkit::{wait_until, Stack, TranscoderOptions};
use serde_json::Value;
use support::*;

#[test]
fn a_video_keeps_its_job_outcome_after_the_job_hash_expires() {
    let stack = start(options());
    // As the transcoder would: its job hashes expire a second after the job ends.
    let q = queue(stack.redis_url()).with_retention(RetentionConfig {
        job_ttl_secs: 1,
        ..RetentionConfig::default()
    });
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: "job-expiring".into(),
        video_id: "expiring".into(),
        version: 1,
        source_key: "sources/expiring/1/source".into(),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    };
    block_on(async {
        q.enqueue(&job).await.expect("enqueue");
        q.set_state(&job, JobState::Failed, 0.0, Some("not a readable video"))
            .await
            .expect("failed");
    });
    let status = || -> serde_json::Value {
        let r = stack.ingest().get("/v1/videos/expiring");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).expect("json")
    };
    let before = status();
    assert_eq!(before["job"]["state"], "failed");
    wait_until(Duration::from_secs(10), "the job hash to expire", || {
        block_on(q.job_status("job-expiring"))
            .expect("status")
            .is_none()
    });
    let after = status();
    assert_eq!(
        after["job"], before["job"],
        "the job's status changed when its hash expired"
    );
    assert_eq!(after["job"]["error"], "not a readable video");
    assert_eq!(after["latest_version"], 1);
}

fn status(stack: &Stack, id: &str) -> Value {
    let r = stack
        .ingest()
        .conn()
        .request("GET", &format!("/v1/videos/{id}"), &[], b"")
        .expect("GET video");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

#[test]
fn ready_video_lists_its_poster_and_thumbnails() {
    let stack = Stack::builder()
        .ingest(options())
        .transcoder(TranscoderOptions::new())
        .start();
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);
    let r = ingest.patch(&loc, 0, &video);
    assert_eq!(r.status, 204, "{}", r.text());
    let id = upload_id(&loc);

    // Not ready yet (or just now): nothing is listed for a version that is not current.
    let early = status(&stack, &id);
    if early["current_version"].is_null() {
        assert_eq!(early["poster"], Value::Null, "{early}");
        assert_eq!(early["thumbnails"], Value::Null, "{early}");
    }

    let mut last = Value::Null;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(Duration::from_secs(120), "the video to be ready", || {
            last = status(&stack, &id);
            assert_ne!(last["job"]["state"], "failed", "{last}");
            last["current_version"] == 1
        })
    }));
    if result.is_err() {
        panic!(
            "not ready: {last}\ntranscoder log:\n{}",
            stack.transcoder().log_text()
        );
    }
    assert_eq!(last["job"]["state"], "done", "{last}");
    assert_eq!(last["poster"], format!("/v/{id}/1/poster.jpg"), "{last}");
    assert_eq!(
        last["thumbnails"],
        format!("/v/{id}/1/thumbnails.vtt"),
        "{last}"
    );
    // The listed paths are objects in the store (the edge serves `/v/…` from it).
    for field in ["poster", "thumbnails"] {
        let path = last[field].as_str().expect("path");
        let key = path.trim_start_matches('/');
        assert!(stack.object_path(key).is_file(), "{field}: {key} missing");
    }
    let vtt =
        std::fs::read_to_string(stack.object_path(&keys::version_file(&id, 1, "thumbnails.vtt")))
            .expect("vtt");
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nthumbs-0.jpg#xywh=0,0,160,120\n"),
        "{vtt}"
    );
}
