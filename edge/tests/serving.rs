//! Serving objects: GET and HEAD of playlists and media with the right headers, 404s, and the
//! S3 backend. Real binary, real sockets, both drivers.

mod support;

use ringcast_infra::store::ObjectStore;
use ringcast_testkit::{Stack, StoreBackend};
use support::{error_code, options, pattern, Edge, LIVE_PLAYLIST, VOD_PLAYLIST};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=1";

/// Headers of every answer to a request without `Origin`: `Date`, and `Vary: Origin` instead
/// of the CORS pair (ADR 0012); [`assert_cors_pair`] checks the same request with `Origin`.
fn assert_common_headers(r: &ringcast_testkit::http::Response) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        None,
        "{:?}",
        r.headers
    );
    assert_varies_by_origin(r);
    assert!(
        r.header("date").is_some_and(|d| d.ends_with(" GMT")),
        "{:?}",
        r.headers
    );
}

fn assert_varies_by_origin(r: &ringcast_testkit::http::Response) {
    assert!(
        r.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("vary")
                && v.split(',').any(|f| f.trim() == "Origin")),
        "Vary: Origin missing: {:?}",
        r.headers
    );
}

/// `method target` with `Origin` (a player on another origin) gets the CORS pair with the
/// headers a player reads exposed, `Vary: Origin`, and the status `status`.
fn assert_cors_pair(edge: &Edge, method: &str, target: &str, status: u16) {
    let r = edge
        .conn()
        .request(method, target, &[("Origin", "https://player.example")], b"")
        .expect("request with Origin");
    assert_eq!(r.status, status, "{method} {target}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some(ringcast_edge::response::EXPOSED_HEADERS)
    );
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default();
    for h in ["Content-Length", "Content-Range", "Age", "ETag"] {
        assert!(exposed.contains(h), "{h} not exposed");
    }
    assert_varies_by_origin(&r);
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
}

fn get_and_head_of_playlists_and_segments(legacy: bool) {
    let edge = Edge::start(legacy);
    // Bigger than the inline-body threshold, so head and body go out as separate writes.
    let segment = pattern(50_000, 1);
    let init = pattern(700, 2);
    edge.put("v/vid/1/720p/index.m3u8", VOD_PLAYLIST.as_bytes());
    edge.put("v/vid/1/360p/index.m3u8", LIVE_PLAYLIST.as_bytes());
    edge.put("v/vid/1/720p/seg0.m4s", &segment);
    edge.put("v/vid/1/720p/init.mp4", &init);
    edge.put(
        "v/vid/master.m3u8",
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n1/720p/index.m3u8\n",
    );

    let r = edge.get("/v/vid/1/720p/index.m3u8");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), VOD_PLAYLIST);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        r.header("content-length"),
        Some(VOD_PLAYLIST.len().to_string().as_str())
    );
    assert_eq!(
        r.header("cache-control"),
        Some(IMMUTABLE),
        "versioned playlist with ENDLIST"
    );
    assert!(r.header("age").is_some());
    assert_common_headers(&r);
    assert_cors_pair(&edge, "GET", "/v/vid/1/720p/index.m3u8", 200);

    let r = edge.get("/v/vid/1/360p/index.m3u8");
    assert_eq!(
        r.header("cache-control"),
        Some(SHORT),
        "playlist without ENDLIST"
    );

    let r = edge.get("/v/vid/master.m3u8");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some(SHORT),
        "top-level master is mutable"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );

    let r = edge.get("/v/vid/1/720p/seg0.m4s");
    assert_eq!(r.status, 200);
    assert!(r.body == segment, "segment body differs");
    assert_eq!(r.header("content-type"), Some("video/iso.segment"));
    assert_eq!(r.header("content-length"), Some("50000"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    assert_common_headers(&r);
    assert_cors_pair(&edge, "GET", "/v/vid/1/720p/seg0.m4s", 200);

    let r = edge.get("/v/vid/1/720p/init.mp4");
    assert!(r.body == init);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));

    // The query string does not change the object.
    let r = edge.get("/v/vid/1/720p/seg0.m4s?token=abc&x=1");
    assert_eq!(r.status, 200);
    assert!(r.body == segment);

    // HEAD: the GET's headers and length, no body. The next request on the same connection
    // proves no body bytes followed the head.
    let mut conn = edge.conn();
    for (target, len, ct) in [
        ("/v/vid/1/720p/seg0.m4s", "50000", "video/iso.segment"),
        (
            "/v/vid/1/720p/index.m3u8",
            &*VOD_PLAYLIST.len().to_string(),
            "application/vnd.apple.mpegurl",
        ),
    ] {
        let r = conn.request("HEAD", target, &[], b"").expect("HEAD");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(len));
        assert_eq!(r.header("content-type"), Some(ct));
        assert!(r.body.is_empty());
        assert_common_headers(&r);
        assert_cors_pair(&edge, "HEAD", target, 200);
    }
    let r = conn
        .request("GET", "/healthz", &[], b"")
        .expect("GET after HEAD");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

fn missing_objects_are_404_json(legacy: bool) {
    let edge = Edge::start(legacy);
    for target in [
        "/v/vid/1/720p/seg404.m4s",
        "/v/nothing",
        "/nothing-here",
        "/favicon.ico",
        "/v",
    ] {
        let r = edge.get(target);
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(error_code(&r), "not_found", "{target}");
        assert_common_headers(&r);
        assert_cors_pair(&edge, "GET", target, 404);
    }
    // HEAD of a missing object: 404 with the error's length, no body.
    let r = edge
        .conn()
        .request("HEAD", "/v/vid/none.m4s", &[], b"")
        .expect("HEAD");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
}

fn s3_backed_get(legacy: bool) {
    let edge = Edge::start_on(Stack::builder().store(StoreBackend::S3), options(legacy));
    let store_cfg = edge.stack().store().clone();
    let segment = pattern(40_000, 3);
    // Publish through the project's own store client (it creates the bucket).
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = ObjectStore::open(&store_cfg).await.expect("open S3 store");
            store
                .put(
                    "v/s3vid/1/720p/seg0.m4s",
                    segment.clone().into(),
                    "video/iso.segment",
                )
                .await
                .expect("put segment");
            store
                .put(
                    "v/s3vid/1/720p/index.m3u8",
                    VOD_PLAYLIST.into(),
                    "application/vnd.apple.mpegurl",
                )
                .await
                .expect("put playlist");
        });
    let r = edge.get("/v/s3vid/1/720p/seg0.m4s");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == segment);
    assert_eq!(r.header("content-type"), Some("video/iso.segment"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    let r = edge.get("/v/s3vid/1/720p/index.m3u8");
    assert_eq!(r.text(), VOD_PLAYLIST);
    let r = edge.get("/v/s3vid/1/720p/missing.m4s");
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "not_found");
    assert_eq!(edge.counter("ringcast_edge_origin_errors_total"), 0);
}

both_drivers!(
    get_and_head_of_playlists_and_segments,
    missing_objects_are_404_json,
    s3_backed_get,
);
