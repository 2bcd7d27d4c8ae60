//! `/readyz` of the ingest, in the shape every service shares (`ringcast_proto::health`):
//! ready with Redis and the store answering; 503 `unavailable` naming Redis when it is gone
//! (`/healthz` stays 200); 503 `draining` during the drain delay after SIGTERM.

mod support;

use std::time::Duration;

use ringcast_testkit::http::{get, Response};
use ringcast_testkit::{wait_until, RedisServer, Stack};
use support::options;

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn ready_redis_down_and_draining() {
    let redis = RedisServer::start();
    let mut stack = Stack::builder()
        .redis_at(&redis.url)
        .ingest(options().toml("drain_delay_ms = 30000"))
        .start();
    let ingest = stack.ingest_mut();
    let r = get(ingest.addr, "/readyz").expect("readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r),
        serde_json::json!({"service": "ingest", "status": "ready",
            "checks": {"redis": "ok", "store": "ok"}})
    );

    drop(redis);
    let r = get(ingest.addr, "/readyz").expect("readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["checks"]["store"], "ok");
    assert_ne!(v["checks"]["redis"], "ok", "{v}");
    assert_eq!(get(ingest.addr, "/healthz").expect("healthz").status, 200);

    // SIGTERM: draining for the delay; still alive.
    assert!(ingest.process.terminate(Duration::ZERO).is_none());
    let addr = ingest.addr;
    wait_until(Duration::from_secs(10), "ingest /readyz draining", || {
        get(addr, "/readyz").is_ok_and(|r| json(&r)["status"] == "draining")
    });
    assert_eq!(get(addr, "/readyz").expect("readyz").status, 503);
    assert_eq!(get(addr, "/healthz").expect("healthz").status, 200);
}
