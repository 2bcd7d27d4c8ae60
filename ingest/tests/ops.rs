//! Operational endpoints, the S3 backend, and behaviour when a dependency fails.

mod support;

use std::time::Duration;

use ringcast_infra::store::ObjectStore;
use ringcast_proto::keys;
use ringcast_testkit::http::get;
use ringcast_testkit::{RedisServer, Stack, StoreBackend};
use support::*;

#[test]
fn health_ready_and_metrics() {
    // Its own Redis, to stop it under the running ingest.
    let redis = RedisServer::start();
    let mut stack = Stack::builder()
        .redis_at(&redis.url)
        .ingest(options())
        .start();
    let ingest = stack.ingest_mut();
    let r = get(ingest.addr, "/healthz").expect("healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = get(ingest.addr, "/readyz").expect("readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    let metrics = ingest.metrics();
    for name in [
        "ringcast_ingest_requests_total",
        "ringcast_ingest_uploads_created_total",
        "ringcast_ingest_uploads_completed_total",
        "ringcast_ingest_bytes_received_total",
        "ringcast_ingest_upload_errors_total",
        "ringcast_ingest_driver_info{driver=",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    assert!(ingest.counter("ringcast_ingest_requests_total") >= 3);

    // Redis gone → not ready, still alive.
    drop(redis);
    let r = get(ingest.addr, "/readyz").expect("readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(get(ingest.addr, "/healthz").expect("healthz").status, 200);

    let status = ingest
        .process
        .terminate(Duration::from_secs(15))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", ingest.log_text());
}

#[test]
fn metrics_need_the_metrics_key_when_one_is_set() {
    const KEY: &str = "ingest-metrics-key-01";
    let stack = start(options().toml(format!("metrics_key = \"{KEY}\"")));
    let ingest = stack.ingest();
    let scrape = |auth: &[(&str, &str)]| {
        ringcast_testkit::http::Conn::connect(ingest.addr)
            .expect("connect")
            .request("GET", "/metrics", auth, b"")
            .expect("GET /metrics")
    };
    assert_eq!(scrape(&[]).status, 401);
    assert_eq!(
        scrape(&[("Authorization", "Bearer ingest-metrics-key-02")]).status,
        403
    );
    let ok = scrape(&[("Authorization", &format!("Bearer {KEY}"))]);
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("ringcast_ingest_requests_total"));
    assert_eq!(get(ingest.addr, "/healthz").expect("healthz").status, 200);
}

#[test]
fn finish_failure_is_503_and_the_final_patch_can_be_retried() {
    let stack = start(options());
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);

    // Make the store fail: its target directory for this upload is a file.
    let blocker = stack.object_path(&format!("sources/{id}"));
    std::fs::create_dir_all(blocker.parent().expect("parent")).expect("mkdir");
    std::fs::write(&blocker, b"in the way").expect("blocker");

    let r = ingest.patch(&loc, 0, &video);
    assert_eq!(r.status, 503, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["error"]["code"], "store_unavailable");
    assert_eq!(ingest.offset(&loc), video.len() as u64, "bytes kept");
    assert!(next_job(&queue(stack.redis_url()), Duration::from_millis(10)).is_none());

    // Store back: an empty PATCH at offset == length finishes the upload.
    std::fs::remove_file(&blocker).expect("unblock");
    let r = ingest.patch(&loc, video.len() as u64, b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert_eq!(sha256(&stored), sha256(&video));
    let delivery = next_job(&queue(stack.redis_url()), Duration::from_secs(5)).expect("job");
    assert_eq!(
        delivery.job.expect("job").version,
        1,
        "the retry reused version 1"
    );
}

#[test]
fn full_upload_into_a_real_s3_server() {
    let stack = Stack::builder()
        .store(StoreBackend::S3)
        .ingest(options())
        .start();
    let ingest = stack.ingest();
    assert_eq!(get(ingest.addr, "/readyz").expect("readyz").status, 200);
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, Some("filetype dmlkZW8vbXA0"));
    let split = video.len() / 2;
    assert_eq!(ingest.patch(&loc, 0, &video[..split]).status, 204);
    let r = ingest.patch(&loc, split as u64, &video[split..]);
    assert_eq!(r.status, 204, "{}", r.text());

    let id = upload_id(&loc);
    let store = block_on(ObjectStore::open(stack.store())).expect("open s3");
    let object = block_on(store.get(&keys::source(&id, 1)))
        .expect("get")
        .expect("source object exists in S3");
    assert_eq!(sha256(&object), sha256(&video));
    let delivery = next_job(&queue(stack.redis_url()), Duration::from_secs(5)).expect("job");
    assert_eq!(delivery.stream, "rc:jobs:normal");
}
