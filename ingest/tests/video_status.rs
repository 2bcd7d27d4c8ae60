//! `GET /v1/videos/{id}` lists the poster and the thumbnail track of the current version: an
//! upload through the real ingest, transcoded by the real transcoder (Redis, fs store, ffmpeg),
//! shows none while it is queued and both, as files that exist, once it is ready.

mod support;

use std::time::Duration;

use ringcast_proto::keys;
use ringcast_testkit::{wait_until, Stack, TranscoderOptions};
use serde_json::Value;
use support::*;

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
