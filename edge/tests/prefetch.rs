//! CMCD next-object hints (CTA-5004 `nor`): an object request that names the next object in a
//! `CMCD-Request` header or a `CMCD` query parameter makes the edge warm that object, so the
//! player's next request is a hit; a hint outside the current video is ignored. Both drivers.

mod support;

use std::time::Duration;

use ringcast_testkit::wait_until;
use support::{pattern, Edge};

fn warmed(edge: &Edge) -> u64 {
    edge.metric("ringcast_edge_cmcd_prefetches_total{outcome=\"warmed\"}")
        .unwrap_or(0)
}

fn hinted_objects_are_warmed(legacy: bool) {
    let edge = Edge::start(legacy);
    for i in 0..4u8 {
        edge.put(&format!("v/c/1/720p/seg{i}.m4s"), &pattern(20_000, i));
    }
    edge.put("v/other/1/720p/seg0.m4s", &pattern(20_000, 9));

    // Without a hint the next segment is a miss.
    assert_eq!(
        edge.get("/v/c/1/720p/seg0.m4s").header("x-cache"),
        Some("MISS")
    );
    assert_eq!(
        edge.get("/v/c/1/720p/seg1.m4s").header("x-cache"),
        Some("MISS")
    );

    // Header form.
    let r = edge
        .conn()
        .request(
            "GET",
            "/v/c/1/720p/seg1.m4s",
            &[("CMCD-Request", "bl=21300,nor=\"seg2.m4s\",nrr=\"0-\"")],
            b"",
        )
        .expect("request");
    assert_eq!(r.status, 200);
    wait_until(
        Duration::from_secs(10),
        "the hinted segment to be warmed",
        || warmed(&edge) == 1,
    );
    let r = edge.get("/v/c/1/720p/seg2.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
    assert!(r.body == pattern(20_000, 2));

    // Query form (the list URL-encoded, `nor` itself URL-encoded inside it).
    let r = edge.get("/v/c/1/720p/seg2.m4s?CMCD=bl%3D100%2Cnor%3D%22..%252F720p%252Fseg3.m4s%22");
    assert_eq!(r.status, 200);
    wait_until(Duration::from_secs(10), "the second warm-up", || {
        warmed(&edge) == 2
    });
    assert_eq!(
        edge.get("/v/c/1/720p/seg3.m4s").header("x-cache"),
        Some("HIT")
    );

    // A hint for another video, or for an object already cached, is not followed.
    let before = edge.metric("ringcast_edge_origin_fetches_total");
    for hint in ["nor=\"../../../other/1/720p/seg0.m4s\"", "nor=\"seg0.m4s\""] {
        let r = edge
            .conn()
            .request(
                "GET",
                "/v/c/1/720p/seg3.m4s",
                &[("CMCD-Request", hint)],
                b"",
            )
            .expect("request");
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        edge.metric("ringcast_edge_cmcd_prefetches_total{outcome=\"ignored\"}"),
        Some(2)
    );
    assert_eq!(edge.metric("ringcast_edge_origin_fetches_total"), before);
    assert_eq!(
        edge.get("/v/other/1/720p/seg0.m4s").header("x-cache"),
        Some("MISS")
    );
    assert_eq!(warmed(&edge), 2);
}

both_drivers!(hinted_objects_are_warmed);
