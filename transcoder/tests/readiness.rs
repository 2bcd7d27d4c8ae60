//! `/readyz` of the transcoder, in the shape every service shares (`ringcast_proto::health`):
//! ready with Redis, the store, `work_dir` and every job worker; 503 `draining` after SIGTERM
//! while a job still runs (the metrics endpoint keeps answering); 503 `unavailable` naming Redis
//! when it is gone.

mod support;

use std::time::Duration;

use ringcast_proto::job::JobState;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::http::{get, Response};
use ringcast_testkit::{wait_until, Stack, TranscoderOptions};
use support::*;

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn ready_draining_and_redis_down() {
    let mut stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let mut t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-ready")
            .workers(1)
            .ffmpeg_path(&realtime_ffmpeg(stack.dir()))
            .toml("live_slots = 1\nshutdown_grace_ms = 60000"),
    );
    let r = t.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        json(&r),
        serde_json::json!({"service": "transcoder", "status": "ready",
            "checks": {"redis": "ok", "store": "ok", "work_dir": "ok", "workers": "ok"}})
    );

    // A job running in real time keeps the process up after SIGTERM: it drains.
    let clip = Clip::new(320, 240)
        .seconds(20)
        .write(stack.dir(), "ready.mp4");
    let job = submit(&rt, &store, &queue, "ready", &clip);
    wait_for_job(&rt, &queue, &t, &job.job_id, Duration::from_secs(60), |s| {
        s.state == JobState::Running
    });
    assert!(t.process.terminate(Duration::ZERO).is_none());
    let addr = t.addr;
    wait_until(
        Duration::from_secs(10),
        "transcoder /readyz draining",
        || get(addr, "/readyz").is_ok_and(|r| r.status == 503),
    );
    let v = json(&t.get("/readyz"));
    assert_eq!(v["status"], "draining", "{v}");
    assert_eq!(t.get("/healthz").status, 200);
    drop(t);

    // Another transcoder: Redis gone → unavailable, naming Redis.
    let other = stack.spawn(
        TranscoderOptions::new()
            .name("tc-other")
            .toml("live_slots = 0"),
    );
    assert_eq!(other.get("/readyz").status, 200);
    stack.stop_redis();
    let r = other.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["status"], "unavailable");
    assert_ne!(v["checks"]["redis"], "ok", "{v}");
    assert_eq!(v["checks"]["work_dir"], "ok");
    assert_eq!(other.get("/healthz").status, 200);
}
