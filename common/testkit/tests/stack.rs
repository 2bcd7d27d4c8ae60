//! The kit against the real binaries: every typed option ends up in a config file the service
//! accepts (they refuse unknown keys, so a key that drifts from its struct fails here first),
//! options reach the service, a restart keeps the state dir, and a start that fails stops the
//! test with the service's own complaint instead of a time-out.

use ringcast_testkit::{EdgeOptions, IngestOptions, Stack, StoreBackend, TranscoderOptions};

#[test]
fn every_option_is_accepted_and_reaches_its_service() {
    let cache = std::env::temp_dir().join(format!("ringcast-kit-cache-{}", std::process::id()));
    let mut stack = Stack::builder()
        .ingest(
            IngestOptions::new()
                .workers(1)
                .max_upload_bytes(1000)
                .live_key("stack-test-publish-key", "video")
                .live_grace_secs(1)
                .live_publisher_timeout_secs(3)
                .live_buffer_bytes(1 << 20)
                .legacy_driver(true)
                .toml("header_timeout_secs = 5"),
        )
        .transcoder(
            TranscoderOptions::new()
                .name("tc")
                .workers(2)
                .ffmpeg_path(std::path::Path::new("ffmpeg"))
                .toml("[live]\npreset = \"ultrafast\""),
        )
        .edge(
            EdgeOptions::new()
                .workers(1)
                .admin_key("stack-test-admin-key")
                .signing_key("0123456789abcdef")
                .disk_cache(&cache, 1 << 20, 4096)
                .toml("[live]\nread_block_ms = 100"),
        )
        .start();
    for service in [stack.ingest(), stack.edge(), stack.transcoder()] {
        assert_eq!(service.get("/healthz").status, 200, "{}", service.name);
    }
    let r = stack
        .ingest()
        .conn()
        .request("OPTIONS", "/files/", &[], b"")
        .expect("OPTIONS");
    assert_eq!(r.header("tus-max-size"), Some("1000"));
    assert_eq!(
        stack
            .ingest()
            .counter("ringcast_ingest_driver_info{driver=\"legacy\"}"),
        1
    );
    assert!(stack.transcoder().log_text().contains("consumer=tc"));
    // Signing on: an unsigned playback URL is refused. The purge API takes the admin key.
    stack.put("v/a/1/seg.m4s", b"x");
    assert_eq!(stack.edge().get("/v/a/1/seg.m4s").status, 403);
    let purge = stack
        .edge()
        .conn()
        .request(
            "POST",
            "/purge",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer stack-test-admin-key"),
            ],
            br#"{"prefixes":["v/a/"]}"#,
        )
        .expect("purge");
    assert_eq!(purge.status, 200, "{}", purge.text());
    assert!(cache.is_dir(), "disk tier created in the given dir");

    let before = (stack.ingest().addr, stack.ingest().state_dir.clone());
    let ingest = stack.restart("ingest");
    assert_ne!(ingest.addr, before.0, "a new port");
    assert_eq!(ingest.state_dir, before.1, "the same spool");
    assert_eq!(ingest.get("/healthz").status, 200);
    drop(stack);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn s3_store_and_a_spawned_service_share_the_stack() {
    let stack = Stack::builder()
        .store(StoreBackend::S3)
        .ingest(IngestOptions::new())
        .start();
    assert_eq!(stack.ingest().get("/readyz").status, 200);
    let edge = stack.spawn(EdgeOptions::new().name("edge-2"));
    assert_eq!(edge.get("/v/none/1/seg.m4s").status, 404);
    assert!(edge.config_path.ends_with("edge-2.toml"));
}

#[test]
#[should_panic(expected = "no_such_key")]
fn an_unknown_key_stops_the_start_with_the_service_complaint() {
    let _stack = Stack::builder()
        .edge(EdgeOptions::new().toml("no_such_key = 1"))
        .start();
}
