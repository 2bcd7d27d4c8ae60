//! The object store failing under a serving edge, against a real S3 server (s3s-fs) that the
//! test freezes (SIGSTOP: connections accepted, never answered — a hung store) and kills
//! (SIGKILL: connections refused — a crashed one): cached objects keep being served, misses get
//! a 504 within `origin_timeout_ms` or a fast 502, nothing of the failure is cached, and service
//! comes back by itself once the store does. Both drivers.

mod support;

use std::time::{Duration, Instant};

use ringcast_infra::config::StoreBackend;
use ringcast_infra::store::ObjectStore;
use ringcast_testkit::Stack;
use support::{error_code, options, pattern, Edge};

/// `origin_timeout_ms` of the edge under test.
const ORIGIN_TIMEOUT: Duration = Duration::from_millis(1500);

fn put_all(edge: &Edge, objects: &[(&str, &[u8])]) {
    let cfg = edge.stack().store().clone();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = ObjectStore::open(&cfg).await.expect("open S3 store");
            for (key, body) in objects {
                store
                    .put(key, body.to_vec().into(), "video/iso.segment")
                    .await
                    .expect("put");
            }
        });
}

fn store_outage_spares_hits_and_recovers(legacy: bool) {
    let mut edge = Edge::start_on(
        Stack::builder().store(StoreBackend::S3),
        options(legacy).toml(format!(
            "origin_timeout_ms = {}",
            ORIGIN_TIMEOUT.as_millis()
        )),
    );
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| pattern(50_000, i)).collect();
    let keys = [
        "v/f/1/720p/seg0.m4s",
        "v/f/1/720p/seg1.m4s",
        "v/f/1/720p/seg2.m4s",
    ];
    put_all(
        &edge,
        &[
            (keys[0], &bodies[0]),
            (keys[1], &bodies[1]),
            (keys[2], &bodies[2]),
        ],
    );
    let get = |edge: &Edge, i: usize| edge.get(&format!("/{}", keys[i]));
    assert_eq!(get(&edge, 0).header("x-cache"), Some("MISS"));
    assert_eq!(get(&edge, 0).header("x-cache"), Some("HIT"));

    // A hung store: the hit is unaffected, a miss ends in 504 within the timeout.
    edge.stack_mut().s3().pause(true);
    let r = get(&edge, 0);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
    assert!(r.body == bodies[0]);
    let started = Instant::now();
    let r = get(&edge, 1);
    let waited = started.elapsed();
    assert_eq!((r.status, error_code(&r).as_str()), (504, "origin_timeout"));
    assert!(
        waited >= ORIGIN_TIMEOUT && waited < ORIGIN_TIMEOUT + Duration::from_secs(3),
        "504 after {waited:?}"
    );
    // Back: the failure was not cached, the object is whole.
    edge.stack_mut().s3().pause(false);
    let r = get(&edge, 1);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == bodies[1]);

    // A crashed store: hits unaffected, misses a quick 502.
    edge.stack_mut().s3().stop();
    assert_eq!(get(&edge, 0).status, 200);
    assert_eq!(get(&edge, 1).header("x-cache"), Some("HIT"));
    let started = Instant::now();
    let r = get(&edge, 2);
    assert_eq!((r.status, error_code(&r).as_str()), (502, "origin_error"));
    assert!(started.elapsed() < ORIGIN_TIMEOUT + Duration::from_secs(3));
    // Restarted on the same port with its data: the edge reconnects by itself.
    edge.stack_mut().s3().restart();
    let r = get(&edge, 2);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == bodies[2]);
    assert!(edge.counter("ringcast_edge_origin_errors_total") >= 2);
}

both_drivers!(store_outage_spares_hits_and_recovers);
