//! `GET /v1/live` on a real ingest and redis-server: which configured live videos are listed
//! (latest job queued or running and not an upload), who sees a private one, when a stream
//! is playable (its version's master is in the store), and the route's errors. The video and job hashes are written as the live push and the queue write
//! them; the browser test (`edge/tests/web.rs`) lists a stream pushed for real.

mod support;

use redis::Commands;
use ringcast_proto::keys;
use ringcast_testkit::{Service, Stack};
use serde_json::Value;
use support::*;

/// Configured live videos: `cam1`…`cam5` (one key each).
fn stack() -> Stack {
    let mut opts = options().require_keys();
    for i in 1..=5 {
        opts = opts.live_key(&format!("cam{i}-publish-key-00001"), &format!("cam{i}"));
    }
    start(opts)
}

/// A video hash whose latest job `job` is in `state`, as the queue writes them.
fn seed(stack: &Stack, video: &str, job: &str, state: &str, extra: &[(&str, &str)]) {
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("redis");
    let mut fields = vec![
        ("latest_job", job.to_string()),
        ("latest_version", "1".to_string()),
    ];
    fields.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let () = conn
        .hset_multiple(keys::video(video), &fields)
        .expect("video hash");
    let () = conn
        .hset_multiple(
            keys::job_state(job),
            &[
                ("job_id", job),
                ("video_id", video),
                ("version", "1"),
                ("state", state),
                ("progress", "0"),
                ("updated_ms", "1767225600000"),
            ],
        )
        .expect("job hash");
}

fn listed(ingest: &Service, token: &str) -> Vec<String> {
    streams(ingest, token)
        .iter()
        .map(|s| s["video_id"].as_str().expect("id").to_string())
        .collect()
}

/// The `playable` flag of each listed stream, by video id.
fn playable(ingest: &Service, token: &str) -> Vec<(String, bool)> {
    streams(ingest, token)
        .iter()
        .map(|s| {
            (
                s["video_id"].as_str().expect("id").to_string(),
                s["playable"].as_bool().expect("playable is a boolean"),
            )
        })
        .collect()
}

fn streams(ingest: &Service, token: &str) -> Vec<Value> {
    let auth = format!("Bearer {token}");
    let r = ingest
        .conn()
        .request("GET", "/v1/live", &[("Authorization", &auth)], b"")
        .expect("GET /v1/live");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v: Value = serde_json::from_slice(&r.body).expect("JSON");
    let streams = v["streams"].as_array().expect("streams").clone();
    for s in &streams {
        assert_eq!(
            s["playback_url"],
            format!("/v/{}/master.m3u8", s["video_id"].as_str().expect("id"))
        );
    }
    streams
}

#[test]
fn running_live_streams_are_listed() {
    let stack = stack();
    let ingest = stack.ingest();
    let bob = stack.create_key("bob", "uploader");
    let alice = stack.create_key("alice", "viewer");
    let admin = stack.create_key("root", "admin");
    assert!(listed(ingest, &bob).is_empty(), "nothing runs yet");

    seed(&stack, "cam1", "j1", "running", &[]);
    seed(&stack, "cam2", "j2", "queued", &[("title", "Front door")]);
    // Ended: not live any more.
    seed(&stack, "cam3", "j3", "done", &[]);
    // A running upload (it recorded its source's duration) to a live video's id.
    seed(
        &stack,
        "cam4",
        "j4",
        "running",
        &[("duration_ms:1", "8000")],
    );
    // Private, alice's.
    seed(
        &stack,
        "cam5",
        "j5",
        "running",
        &[("owner", "alice"), ("visibility", "private")],
    );
    // Running, but no stream key names it.
    seed(&stack, "elsewhere", "j6", "running", &[]);

    assert_eq!(listed(ingest, &bob), ["cam1", "cam2"]);
    assert_eq!(listed(ingest, &alice), ["cam1", "cam2", "cam5"]);
    assert_eq!(listed(ingest, &admin), ["cam1", "cam2", "cam5"]);

    let auth = format!("Bearer {bob}");
    let r = ingest
        .conn()
        .request("GET", "/v1/live", &[], b"")
        .expect("no key");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = ingest
        .conn()
        .request("POST", "/v1/live", &[("Authorization", &auth)], b"")
        .expect("POST");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn a_stream_is_playable_once_its_version_master_is_stored() {
    let stack = stack();
    let ingest = stack.ingest();
    let bob = stack.create_key("bob", "uploader");
    seed(&stack, "cam1", "j1", "running", &[]);
    seed(&stack, "cam2", "j2", "running", &[]);
    // The current pointer of an earlier version does not make the new one playable.
    stack.put(&keys::current_master("cam1"), b"#EXTM3U\n");
    stack.put(&keys::version_master("cam1", 0), b"#EXTM3U\n");
    assert_eq!(
        playable(ingest, &bob),
        [("cam1".to_string(), false), ("cam2".to_string(), false)]
    );
    stack.put(&keys::version_master("cam1", 1), b"#EXTM3U\n");
    assert_eq!(
        playable(ingest, &bob),
        [("cam1".to_string(), true), ("cam2".to_string(), false)]
    );
}
