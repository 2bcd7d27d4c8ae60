//! Admin and access control on real sockets: the purge API (POST /purge, DELETE), signed
//! playback URLs (query and path-token forms), configurable limits (max headers, max
//! connections per worker), the new /metrics series and the JSON access log. Both drivers.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringcast_proto::signed_url;
use ringcast_testkit::http::{Conn, Response};
use ringcast_testkit::wait_until;
use support::{error_code, options, Edge};

const ADMIN: &str = "test-admin-key-0123";
const SECRET: &str = "0123456789abcdef-secret";

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

fn purge(conn: &mut Conn, auth: Option<&str>, body: &str) -> Response {
    let bearer = auth.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    conn.request("POST", "/purge", &headers, body.as_bytes())
        .expect("POST /purge")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn purge_by_key_prefix_and_delete(legacy: bool) {
    let edge = Edge::start_with(options(legacy).admin_key(ADMIN));
    for k in ["v/p/1/a.m4s", "v/p/1/b.m4s", "v/p/2/c.m4s", "v/q/1/a.m4s"] {
        edge.put(k, k.as_bytes());
        assert_eq!(edge.get(&format!("/{k}")).header("x-cache"), Some("MISS"));
        assert_eq!(edge.get(&format!("/{k}")).header("x-cache"), Some("HIT"));
    }
    let mut conn = edge.conn();
    let r = purge(&mut conn, None, r#"{"keys":["v/p/1/a.m4s"]}"#);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unauthorized"));
    let mut conn = edge.conn();
    let r = purge(&mut conn, Some("wrong"), r#"{"keys":["v/p/1/a.m4s"]}"#);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "forbidden"));

    // Exact key; the keep-alive connection stays usable after a request with a body.
    let mut conn = edge.conn();
    let r = purge(&mut conn, Some(ADMIN), r#"{"keys":["/v/p/1/a.m4s"]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["purged"].as_u64(), v["keys"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["tiers"]["memory"].as_u64(), Some(1));
    assert_eq!(r.header("connection"), None, "kept alive");
    let fetches = edge.counter("ringcast_edge_origin_fetches_total");
    let r = conn.request("GET", "/v/p/1/a.m4s", &[], b"").expect("GET");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert_eq!(
        edge.counter("ringcast_edge_origin_fetches_total"),
        fetches + 1
    );
    assert_eq!(
        edge.get("/v/p/1/b.m4s").header("x-cache"),
        Some("HIT"),
        "untouched"
    );

    // Prefix: v/p/ holds a, b, c (a was re-fetched), not v/q/.
    let r = purge(&mut conn, Some(ADMIN), r#"{"prefixes":["v/p/"]}"#);
    assert_eq!(json(&r)["purged"].as_u64(), Some(3), "{}", r.text());
    assert_eq!(edge.get("/v/q/1/a.m4s").header("x-cache"), Some("HIT"));
    assert_eq!(edge.get("/v/p/2/c.m4s").header("x-cache"), Some("MISS"));
    assert!(edge.counter("ringcast_edge_purged_entries_total") >= 4);

    // DELETE forms.
    let auth = format!("Bearer {ADMIN}");
    let mut conn = edge.conn();
    let r = conn
        .request("DELETE", "/v/q/1/a.m4s", &[("Authorization", &auth)], b"")
        .expect("DELETE key");
    assert_eq!(json(&r)["purged"].as_u64(), Some(1));
    let r = conn
        .request("DELETE", "/v/p/*", &[("Authorization", &auth)], b"")
        .expect("DELETE prefix");
    assert_eq!(
        json(&r)["purged"].as_u64(),
        Some(1),
        "only c is cached again"
    );
    let r = conn.request("DELETE", "/v/p/*", &[], b"").expect("no auth");
    assert_eq!(r.status, 401);

    // Bad bodies.
    for body in [
        "",
        "not json",
        "{}",
        r#"{"keys":["sources/x"]}"#,
        r#"{"prefixes":[""]}"#,
        r#"{"keyz":[]}"#,
    ] {
        let mut conn = edge.conn();
        let r = purge(&mut conn, Some(ADMIN), body);
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (400, "bad_request"),
            "{body:?}"
        );
    }
    let mut conn = edge.conn();
    let big = format!(r#"{{"keys":["{}"]}}"#, "a".repeat(70_000));
    let r = purge(&mut conn, Some(ADMIN), &big);
    assert_eq!(r.status, 413);
    let r = edge
        .conn()
        .request("GET", "/purge", &[], b"")
        .expect("GET /purge");
    assert_eq!(r.status, 405);
}

fn purge_disabled_without_admin_key(legacy: bool) {
    let edge = Edge::start(legacy);
    let r = purge(&mut edge.conn(), Some("anything"), r#"{"keys":["v/a"]}"#);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "purge_disabled"));
    let r = edge
        .conn()
        .request(
            "DELETE",
            "/v/a/1/x.m4s",
            &[("Authorization", "Bearer x")],
            b"",
        )
        .expect("DELETE");
    assert_eq!(r.status, 405);
}

fn signed_urls_query_and_path_token(legacy: bool) {
    let edge = Edge::start_with(options(legacy).signing_key(SECRET));
    edge.put(
        "v/sv/master.m3u8",
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n1/720p/index.m3u8\n",
    );
    edge.put("v/sv/1/720p/index.m3u8", support::VOD_PLAYLIST.as_bytes());
    edge.put("v/sv/1/720p/seg0.m4s", b"seg");
    edge.put("v/other/master.m3u8", b"#EXTM3U\n");
    let key = SECRET.as_bytes();
    let exp = unix_now() + 300;

    let r = edge.get("/v/sv/master.m3u8");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_missing")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let q = signed_url::signed_query(key, "/v/sv/", exp);
    assert_eq!(edge.get(&format!("/v/sv/master.m3u8?{q}")).status, 200);
    assert_eq!(edge.get(&format!("/v/sv/1/720p/seg0.m4s?{q}")).status, 200);
    let r = edge.get(&format!("/v/other/master.m3u8?{q}"));
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_prefix")
    );

    // Path token: the master's relative URIs resolve under the token.
    let master = signed_url::signed_path(key, "/v/sv/", exp, "/v/sv/master.m3u8");
    let r = edge.get(&master);
    assert_eq!(r.status, 200, "{}", r.text());
    let dir = &master[..master.rfind('/').expect("/") + 1];
    let variant = format!("{dir}1/720p/index.m3u8");
    let r = edge.get(&variant);
    assert_eq!(r.text(), support::VOD_PLAYLIST);
    let seg_dir = &variant[..variant.rfind('/').expect("/") + 1];
    assert_eq!(edge.get(&format!("{seg_dir}seg0.m4s")).text(), "seg");

    let expired = signed_url::signed_path(key, "/v/sv/", unix_now() - 1, "/v/sv/master.m3u8");
    let r = edge.get(&expired);
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_expired")
    );
    let forged = signed_url::signed_path(b"not-the-secret!!", "/v/sv/", exp, "/v/sv/master.m3u8");
    let r = edge.get(&forged);
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_invalid")
    );
    let r = edge.get(&master.replace("/v/sv/", "/v/other/"));
    assert_eq!(r.status, 403);
    let r = edge.get("/s/garbage");
    assert_eq!(r.status, 403);
    // Health and metrics are not behind signatures.
    assert_eq!(edge.get("/healthz").status, 200);
}

fn signed_path_is_404_when_signing_is_off(legacy: bool) {
    let edge = Edge::start(legacy);
    edge.put("v/sv/master.m3u8", b"#EXTM3U\n");
    let p = signed_url::signed_path(
        SECRET.as_bytes(),
        "/v/sv/",
        unix_now() + 60,
        "/v/sv/master.m3u8",
    );
    assert_eq!(edge.get(&p).status, 404);
    assert_eq!(edge.get("/v/sv/master.m3u8").status, 200);
}

fn max_headers_and_max_connections(legacy: bool) {
    let edge = Edge::start_with(
        options(legacy)
            .workers(1)
            .toml("max_headers = 8\nmax_connections_per_worker = 2"),
    );
    edge.put("v/l/a.m4s", b"a");
    let many: Vec<(String, String)> = (0..10).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = edge
        .conn()
        .request("GET", "/v/l/a.m4s", &many, b"")
        .expect("431");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (431, "headers_too_large")
    );
    assert_eq!(
        edge.conn()
            .request("GET", "/v/l/a.m4s", &many[..5], b"")
            .expect("ok")
            .status,
        200
    );

    // Two connections held open (each proven accepted by a response), the third is refused.
    let mut a = edge.conn();
    let mut b = edge.conn();
    assert_eq!(
        a.request("GET", "/v/l/a.m4s", &[], b"").expect("a").status,
        200
    );
    assert_eq!(
        b.request("GET", "/v/l/a.m4s", &[], b"").expect("b").status,
        200
    );
    let r = edge
        .conn()
        .request("GET", "/v/l/a.m4s", &[], b"")
        .expect("third");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (503, "too_many_connections")
    );
    assert_eq!(r.header("connection"), Some("close"));
    drop(a);
    // Once a slot frees, connections are served again.
    wait_until(Duration::from_secs(10), "a free connection slot", || {
        Conn::connect(edge.addr)
            .and_then(|mut c| c.request("GET", "/v/l/a.m4s", &[], b""))
            .is_ok_and(|r| r.status == 200)
    });
    assert!(b.request("GET", "/v/l/a.m4s", &[], b"").is_ok());
    drop(b);
    wait_until(Duration::from_secs(10), "metrics reachable", || {
        support::parse_metric(
            &Conn::connect(edge.addr)
                .and_then(|mut c| c.request("GET", "/metrics", &[], b""))
                .map(|r| r.text())
                .unwrap_or_default(),
            "ringcast_edge_connections_rejected_total",
        )
        .is_some_and(|n| n >= 1)
    });
}

fn metrics_series_and_access_log(legacy: bool) {
    let edge = Edge::start_with(options(legacy).toml("access_log = \"full\""));
    edge.put("v/m/1/a.m4s", b"abc");
    edge.get("/v/m/1/a.m4s");
    edge.get("/v/m/1/a.m4s");
    edge.get("/v/m/1/missing-xyz.m4s");
    let text = edge.get("/metrics").text();
    for series in [
        "ringcast_edge_origin_fetch_duration_seconds_count",
        "ringcast_edge_cache_lookups_total{tier=\"memory\",result=\"hit\"}",
        "ringcast_edge_open_connections",
        "ringcast_edge_inflight_requests",
        "ringcast_edge_bytes_sent_total",
        "ringcast_edge_cache_bytes",
    ] {
        assert!(
            support::parse_metric(&text, series).is_some(),
            "{series} missing:\n{text}"
        );
    }
    assert!(
        support::parse_metric(&text, "ringcast_edge_origin_fetch_duration_seconds_count")
            .unwrap_or(0)
            >= 2
    );
    assert_eq!(
        support::parse_metric(&text, "ringcast_edge_inflight_requests"),
        Some(1),
        "the /metrics request itself"
    );
    assert!(support::parse_metric(&text, "ringcast_edge_open_connections").unwrap_or(0) >= 1);
    // Access log: JSON lines on stdout, flushed at least once a second.
    let process = &edge.process;
    wait_until(Duration::from_secs(10), "access log lines", || {
        process.log_text().contains("missing-xyz")
    });
    let log = edge.process.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("missing-xyz"))
        .expect("line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    assert_eq!(v["status"], 404);
    assert_eq!(v["method"], "GET");
    assert!(v["ts_ms"].as_u64().is_some() && v["dur_us"].as_u64().is_some());
}

/// `/metrics` with a `metrics_key`: every client needs it (the loopback-only default without a
/// key is covered by every other test scraping from 127.0.0.1, the non-loopback refusal by the
/// unit tests of `ringcast_server::MetricsAccess`).
fn metrics_key_is_required_when_set(legacy: bool) {
    const KEY: &str = "edge-metrics-key-0123";
    let edge = Edge::start_with(options(legacy).toml(format!("metrics_key = \"{KEY}\"")));
    let scrape = |auth: Option<&str>| {
        let bearer = auth.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        edge.conn()
            .request("GET", "/metrics", &headers, b"")
            .expect("GET /metrics")
    };
    let r = scrape(None);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unauthorized"));
    let r = scrape(Some("edge-metrics-key-0124"));
    assert_eq!((r.status, error_code(&r).as_str()), (403, "forbidden"));
    let r = scrape(Some(KEY));
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("ringcast_edge_requests_total"),
        "{}",
        r.text()
    );
    // Other routes do not need it.
    assert_eq!(edge.get("/healthz").status, 200);
}

both_drivers!(
    metrics_key_is_required_when_set,
    purge_by_key_prefix_and_delete,
    purge_disabled_without_admin_key,
    signed_urls_query_and_path_token,
    signed_path_is_404_when_signing_is_off,
    max_headers_and_max_connections,
    metrics_series_and_access_log,
);

#[test]
fn sign_subcommand_prints_verifiable_urls() {
    let out = support::command(true)
        .args([
            "sign",
            "--prefix",
            "/v/vid/",
            "--path",
            "/v/vid/master.m3u8",
            "--ttl",
            "60",
        ])
        .env("RINGCAST_EDGE_SIGNED_URLS__SECRET", SECRET)
        .output()
        .expect("run sign");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let mut lines = text.lines();
    let path = lines.next().expect("path form");
    let now = unix_now();
    assert_eq!(
        signed_url::verify_path(SECRET.as_bytes(), path, now),
        Ok("/v/vid/master.m3u8")
    );
    let (p, q) = lines
        .next()
        .expect("query form")
        .split_once('?')
        .expect("query");
    assert_eq!(
        signed_url::verify_query(SECRET.as_bytes(), p, Some(q), now),
        Ok(())
    );
    assert_eq!(
        signed_url::verify_path(SECRET.as_bytes(), path, now + 61),
        Err(signed_url::SignError::Expired)
    );
    let bad = support::command(true)
        .args([
            "sign", "--secret", "s", "--prefix", "/v/a/", "--path", "/v/b/x",
        ])
        .output()
        .expect("run sign");
    assert!(!bad.status.success());
}
