//! `/readyz` of the edge, in the shape every service shares (`ringcast_proto::health`): ready
//! with its origin and Redis answering; 503 `unavailable` naming Redis when it is gone (while
//! `/healthz` stays 200); 503 `draining` during the drain delay after SIGTERM while objects are
//! still served. Both drivers.

mod support;

use std::time::Duration;

use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, Stack};
use support::options;

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn ready_then_draining_then_redis_down(legacy: bool) {
    let mut stack = Stack::builder()
        .redis()
        .edge(options(legacy).toml("drain_delay_ms = 30000"))
        .start();
    stack.put("v/a/1/seg1.m4s", b"media");
    let edge = stack.edge_mut();

    let r = edge.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        json(&r),
        serde_json::json!({"service": "edge", "status": "ready",
            "checks": {"origin": "ok", "redis": "ok"}})
    );
    let head = edge
        .conn()
        .request("HEAD", "/readyz", &[], b"")
        .expect("HEAD /readyz");
    assert_eq!(head.status, 200);
    let post = edge
        .conn()
        .request("POST", "/readyz", &[], b"")
        .expect("POST /readyz");
    assert_eq!(post.status, 405);

    // SIGTERM: draining for the delay — not ready, but still alive and serving.
    assert!(edge.process.terminate(Duration::ZERO).is_none());
    let addr = edge.addr;
    wait_until(Duration::from_secs(10), "edge /readyz draining", || {
        ringcast_testkit::http::get(addr, "/readyz").is_ok_and(|r| r.status == 503)
    });
    let r = edge.get("/readyz");
    assert_eq!(json(&r)["status"], "draining", "{}", r.text());
    assert_eq!(edge.get("/healthz").status, 200);
    assert_eq!(edge.get("/v/a/1/seg1.m4s").status, 200);

    // A second edge on the same stack: Redis gone → unavailable, naming Redis; still alive.
    let other = stack.spawn(options(legacy).name("edge-b"));
    assert_eq!(other.get("/readyz").status, 200);
    stack.stop_redis();
    let r = other.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["checks"]["origin"], "ok");
    assert_ne!(v["checks"]["redis"], "ok", "{v}");
    assert_eq!(other.get("/healthz").status, 200);
}

both_drivers!(ready_then_draining_then_redis_down);
