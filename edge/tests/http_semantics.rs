//! HTTP caching-server semantics on real sockets: single byte ranges (206/416, HEAD too),
//! ETag/Last-Modified with If-None-Match / If-Modified-Since / If-Range, CORS headers, gzip of
//! playlists, Cache-Control per object class. Both drivers.

mod support;

use ringcast_testkit::http::Response;
use std::io::Read as _;
use support::{error_code, pattern, Edge, LIVE_PLAYLIST, VOD_PLAYLIST};

fn get(edge: &Edge, target: &str, headers: &[(&str, &str)]) -> Response {
    edge.conn()
        .request("GET", target, headers, b"")
        .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

fn ranges_206_and_416(legacy: bool) {
    let edge = Edge::start(legacy);
    // Bigger than the inline-body threshold: the partial body goes out from the cached Bytes.
    let seg = pattern(100_000, 9);
    edge.put("v/r/1/720p/seg1.m4s", &seg);
    let t = "/v/r/1/720p/seg1.m4s";
    let r = get(&edge, t, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));

    let mut conn = edge.conn();
    for (range, start, end) in [
        ("bytes=0-99", 0usize, 99usize),
        ("bytes=50000-", 50_000, 99_999),
        ("bytes=-10", 99_990, 99_999),
        ("bytes=99990-200000", 99_990, 99_999),
        ("bytes=20000-69999", 20_000, 69_999),
    ] {
        // One keep-alive connection: framing of every 206 must be exact.
        let r = conn
            .request("GET", t, &[("Range", range)], b"")
            .expect(range);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/100000").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(r.body == seg[start..=end], "{range}: body differs");
    }
    let r = conn
        .request("HEAD", t, &[("Range", "bytes=10-19")], b"")
        .expect("HEAD");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.header("content-range"), Some("bytes 10-19/100000"));

    let r = conn
        .request("GET", t, &[("Range", "bytes=100000-")], b"")
        .expect("416");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
    assert_eq!(error_code(&r), "range_not_satisfiable");
    // Multi-range and garbage: the whole object.
    for range in ["bytes=0-1,5-6", "bytes=x-y", "pages=1-2"] {
        let r = conn
            .request("GET", t, &[("Range", range)], b"")
            .expect(range);
        assert_eq!((r.status, r.body.len()), (200, 100_000), "{range}");
    }
    assert_eq!(
        get(&edge, "/healthz", &[]).status,
        200,
        "connection state intact"
    );
}

fn conditionals_304_and_if_range(legacy: bool) {
    let edge = Edge::start(legacy);
    edge.put("v/c/1/720p/seg1.m4s", &pattern(5000, 3));
    let t = "/v/c/1/720p/seg1.m4s";
    let r = get(&edge, t, &[]);
    let etag = r.header("etag").expect("etag").to_string();
    let lm = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert!(ringcast_proto::http::date::parse(&lm).is_some(), "{lm}");

    let mut conn = edge.conn();
    let r = conn
        .request("GET", t, &[("If-None-Match", &etag)], b"")
        .expect("INM");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert!(r.header("content-length").is_none());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.header("cache-control").is_some());
    let r = conn
        .request("GET", t, &[("If-None-Match", "\"nope\", W/\"x\"")], b"")
        .expect("INM miss");
    assert_eq!((r.status, r.body.len()), (200, 5000));
    let weak = format!("\"other\", W/{etag}");
    let r = conn
        .request("GET", t, &[("If-None-Match", &weak)], b"")
        .expect("weak");
    assert_eq!(r.status, 304, "weak comparison in a list");
    let r = conn
        .request("GET", t, &[("If-None-Match", "*")], b"")
        .expect("star");
    assert_eq!(r.status, 304);
    let r = conn
        .request("GET", t, &[("If-Modified-Since", &lm)], b"")
        .expect("IMS");
    assert_eq!(r.status, 304);
    let r = conn
        .request(
            "GET",
            t,
            &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)],
            b"",
        )
        .expect("INM beats IMS");
    assert_eq!((r.status, r.body.len()), (200, 5000));
    let r = conn
        .request(
            "GET",
            t,
            &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
            b"",
        )
        .expect("old IMS");
    assert_eq!(r.status, 200);
    let r = conn
        .request("HEAD", t, &[("If-None-Match", &etag)], b"")
        .expect("HEAD");
    assert_eq!(r.status, 304);
    // If-Range: same tag → range; other tag → full.
    let r = conn
        .request(
            "GET",
            t,
            &[("Range", "bytes=0-9"), ("If-Range", &etag)],
            b"",
        )
        .expect("if-range");
    assert_eq!((r.status, r.body.len()), (206, 10));
    let r = conn
        .request(
            "GET",
            t,
            &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
            b"",
        )
        .expect("if-range stale");
    assert_eq!((r.status, r.body.len()), (200, 5000));
    let r = conn
        .request("GET", t, &[("If-Match", "\"stale\"")], b"")
        .expect("if-match");
    assert_eq!(r.status, 412);
    // A new object under the same key (after purge/expiry) gets a new tag: here a new key.
    edge.put("v/c/1/720p/seg2.m4s", &pattern(5000, 4));
    let r2 = get(&edge, "/v/c/1/720p/seg2.m4s", &[]);
    assert_ne!(r2.header("etag"), Some(etag.as_str()));
}

fn cors_and_cache_control(legacy: bool) {
    let edge = Edge::start(legacy);
    edge.put("v/k/1/720p/seg1.m4s", b"media");
    edge.put("v/k/1/720p/index.m3u8", LIVE_PLAYLIST.as_bytes());
    let r = get(
        &edge,
        "/v/k/1/720p/seg1.m4s",
        &[("Origin", "https://player.example")],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r.header("access-control-expose-headers").expect("expose");
    for h in ["Content-Range", "Content-Length", "Age", "ETag"] {
        assert!(exposed.contains(h), "{h} in {exposed}");
    }
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = get(&edge, "/v/k/1/720p/index.m3u8", &[]);
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    let r = get(&edge, "/v/k/1/720p/missing.m4s", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=1"),
        "404 short"
    );
    let r = edge
        .conn()
        .request(
            "OPTIONS",
            "/v/k/1/720p/seg1.m4s",
            &[
                ("Origin", "https://player.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "range, if-none-match"),
            ],
            b"",
        )
        .expect("preflight");
    assert_eq!(r.status, 204);
    let allowed = r
        .header("access-control-allow-headers")
        .expect("allow-headers");
    for h in ["Range", "If-None-Match", "If-Modified-Since", "If-Range"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(r.header("access-control-max-age").is_some());
}

fn gzip_playlists(legacy: bool) {
    let edge = Edge::start(legacy);
    let playlist = format!(
        "{VOD_PLAYLIST}{}",
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n".repeat(40)
    );
    edge.put("v/g/1/720p/index.m3u8", playlist.as_bytes());
    edge.put("v/g/1/720p/seg0.m4s", &pattern(4000, 1));
    let t = "/v/g/1/720p/index.m3u8";
    let mut conn = edge.conn();
    let r = conn
        .request("GET", t, &[("Accept-Encoding", "gzip, deflate, br")], b"")
        .expect("gz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.body.len() < playlist.len(), "compressed");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert_eq!(text, playlist);
    let gz_tag = r.header("etag").expect("etag").to_string();
    // Identity for clients that do not ask, with its own tag.
    let r = conn.request("GET", t, &[], b"").expect("identity");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), playlist);
    assert_ne!(r.header("etag"), Some(gz_tag.as_str()));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let r = conn
        .request("GET", t, &[("Accept-Encoding", "gzip;q=0")], b"")
        .expect("q=0");
    assert_eq!(r.header("content-encoding"), None);
    // Revalidating the gzip variant.
    let r = conn
        .request(
            "GET",
            t,
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_tag)],
            b"",
        )
        .expect("gz 304");
    assert_eq!(r.status, 304);
    // Range on a playlist from a gzip client: identity bytes.
    let r = conn
        .request(
            "GET",
            t,
            &[("Accept-Encoding", "gzip"), ("Range", "bytes=0-6")],
            b"",
        )
        .expect("gz range");
    assert_eq!((r.status, r.text().as_str()), (206, "#EXTM3U"));
    assert_eq!(r.header("content-encoding"), None);
    // Media is never gzipped.
    let r = conn
        .request(
            "GET",
            "/v/g/1/720p/seg0.m4s",
            &[("Accept-Encoding", "gzip")],
            b"",
        )
        .expect("media");
    assert_eq!(r.header("content-encoding"), None);
    // No `Vary: Accept-Encoding` on media; only the `Vary: Origin` every answer has.
    let vary: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(vary, ["Origin"]);
}

both_drivers!(
    ranges_206_and_416,
    conditionals_304_and_if_range,
    cors_and_cache_control,
    gzip_playlists,
);
