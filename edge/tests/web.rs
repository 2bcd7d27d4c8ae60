//! The web page (`web/`, served by the edge at `/`) in a real browser against a real stack:
//! redis-server, a filesystem store, an ingest that requires API keys (with a live stream key
//! and playback signing), a transcoder, and the edge as the front door — the page reaches
//! everything through the edge's one address, as a visitor does.
//!
//! `scripts/js/web_browser.mjs` drives headless Debian Chromium (npm `playwright-core`) through
//! the page and prints what it found; this test starts the stack, makes the clips and the key,
//! runs it and checks the findings:
//! - `vod`: open the page (the stack asks for a key), a wrong key's clear refusal, sign in with
//!   a real key, upload a clip through the file input (progress to 100 %), ready through the
//!   page (state from the events stream), play ≥ 3 s with no fatal hls.js error, switch
//!   quality, a new version then a rollback that the player follows, edit + private + a signed
//!   share link, pause/resume and a reload in the middle of an upload (resumed from the
//!   server's offset, not started again), a bad file's reason from the server, delete, a
//!   phone-sized layout;
//! - `live`: a publisher pushes through the edge; the page's live list shows the stream and
//!   its player plays it less than 3 s behind the wall clock (PROGRAM-DATE-TIME).
//!
//! No console error and no request outside the stack in either. Screenshots go to
//! `target/web-artifacts/` (kept after the run). Skipped with a note when Chromium or the npm
//! packages are missing, unless `RINGCAST_REQUIRE_BROWSER=1` (as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringcast_testkit::clips::Clip;
use ringcast_testkit::{
    wait_until, EdgeOptions, IngestOptions, Process, Service, Stack, TranscoderOptions,
};
use serde_json::{json, Value};

const SECRET: &str = "web-test-playback-secret-0001";
const LIVE_KEY: &str = "web-live-publish-key-0001";
const LIVE_VIDEO: &str = "weblive";

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/js")
}

/// Where screenshots are kept: `target/web-artifacts/` of this checkout.
fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-artifacts")
}

/// Whether the browser and the npm packages are here (else the test is skipped, with a note).
fn have_browser() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let have =
        Path::new(&chromium).exists() && js_dir().join("node_modules/playwright-core").is_dir();
    if !have {
        assert!(
            std::env::var_os("RINGCAST_REQUIRE_BROWSER").is_none(),
            "RINGCAST_REQUIRE_BROWSER is set but {chromium} or scripts/js/node_modules/playwright-core \
             is missing: run scripts/install-deps --test"
        );
        eprintln!("NOTE: web browser test skipped: {chromium} or playwright-core missing");
    }
    have
}

fn node_up(edge: &Service) -> bool {
    edge.metric::<u64>("ringcast_edge_front_door_node_up{node=\"a\"}") == Some(1)
}

fn stack() -> Stack {
    let stack = Stack::builder()
        .ingest(
            IngestOptions::new()
                .node_tag("a")
                .require_keys()
                .live_key(LIVE_KEY, LIVE_VIDEO)
                .live_grace_secs(2)
                .toml(format!("[playback]\nsigning_secret = \"{SECRET}\"")),
        )
        // The debug transcoder shares 2 cores with the publisher and the browser.
        .transcoder(TranscoderOptions::new().toml("[live]\npreset = \"ultrafast\""))
        .edge(EdgeOptions::new().front_door().playback_secret(SECRET))
        .start();
    wait_until(
        Duration::from_secs(10),
        "the ingest node up at the edge",
        || node_up(stack.edge()),
    );
    stack
}

/// Run the browser script `script` of scripts/js with `cfg`: whether node exited 0, and the last
/// JSON line it printed (its findings; panics when there is none).
fn run_script(script: &str, cfg: &Value) -> (bool, Value) {
    let o = Command::new("node")
        .current_dir(js_dir())
        .arg(js_dir().join(script))
        .arg(cfg.to_string())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let found = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no findings:\n{stdout}\n{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    (o.status.success(), found)
}

/// Run one scenario of the browser script; its findings (panics with them when it failed).
fn browse(cfg: Value) -> Value {
    let (success, found) = run_script("web_browser.mjs", &cfg);
    assert!(
        success && found["ok"] == true,
        "browser scenario {} failed (screenshots in {}):\n{}",
        cfg["scenario"],
        artifacts().display(),
        serde_json::to_string_pretty(&found).unwrap_or_default()
    );
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&found).unwrap_or_default()
    );
    found
}

/// A player on another origin (ADR 0012): the edge sends the CORS pair only to requests with
/// `Origin` and `Vary: Origin` on every answer, so Chromium never serves a CORS fetch the
/// answer it cached for a no-cors one, and reads the fields players read (`Age`, `ETag`,
/// `X-Cache`, `Content-Length`, `Last-Modified`, and `Content-Range` on a range request).
#[test]
fn a_player_on_another_origin_reads_what_it_needs() {
    if !have_browser() {
        return;
    }
    let stack = Stack::builder().edge(EdgeOptions::new()).start();
    stack.put("v/cors/1/seg0.m4s", b"0123456789");
    let base = stack.edge().url();
    // The same edge under another host name: another origin for the browser.
    let page = format!("{}/healthz", base.replace("127.0.0.1", "localhost"));
    let cfg = json!({ "page": page, "object": format!("{base}/v/cors/1/seg0.m4s") });
    let (success, found) = run_script("cors_browser.mjs", &cfg);
    eprintln!("{found}");
    assert!(success && found["ok"] == true, "{found}");
    assert_eq!(found["cors_len"], 10, "{found}");
    assert_eq!(found["content-length"], "10", "{found}");
    assert_eq!(found["range_body"], "123", "{found}");
    assert_eq!(found["content_range"], "bytes 1-3/10", "{found}");
}

/// The page over the wire from a real edge (no browser needed): its routes, content types,
/// security headers, gzip and revalidation, and that it takes no path from the edge's own.
#[test]
fn the_edge_serves_the_page_and_its_files() {
    let stack = Stack::builder().edge(EdgeOptions::new()).start();
    stack.put("v/clip/1/seg0.m4s", b"media");
    let edge = stack.edge();
    let page = edge.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    for deep in ["/watch/abc", "/live", "/index.html"] {
        let r = edge.get(deep);
        assert_eq!((r.status, &r.body), (200, &page.body), "{deep}");
    }
    // Every script and style the page names is served, with its type.
    let html = page.text();
    for (asset, ctype) in [
        ("/web/app.css", "text/css; charset=utf-8"),
        ("/web/js/app.js", "text/javascript; charset=utf-8"),
        ("/web/vendor/hls.min.js", "text/javascript; charset=utf-8"),
        ("/web/vendor/tus.min.js", "text/javascript; charset=utf-8"),
        ("/web/favicon.svg", "image/svg+xml"),
    ] {
        assert!(html.contains(asset), "index.html does not load {asset}");
        let r = edge.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(r.header("content-type"), Some(ctype), "{asset}");
    }
    // gzip for text, and a 304 for the tag the client holds.
    let mut conn = edge.conn();
    let gz = conn
        .request(
            "GET",
            "/web/vendor/hls.min.js",
            &[("Accept-Encoding", "gzip")],
            b"",
        )
        .expect("GET");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let etag = gz.header("etag").expect("ETag").to_string();
    let again = conn
        .request(
            "GET",
            "/web/vendor/hls.min.js",
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &etag)],
            b"",
        )
        .expect("GET");
    assert_eq!(again.status, 304);
    // Nothing outside the list, no other method, and the edge's own routes stay its own.
    for (method, path, status) in [
        ("GET", "/web/../Cargo.toml", 404),
        ("GET", "/web/vendor/README.md", 404),
        ("GET", "/web/nope.js", 404),
        ("GET", "/watch/a/b", 404),
        ("POST", "/", 405),
        ("GET", "/v/clip/1/seg0.m4s", 200),
        ("GET", "/healthz", 200),
    ] {
        let r = edge
            .conn()
            .request(method, path, &[], b"")
            .expect("request");
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
}

#[test]
fn the_page_uploads_manages_and_plays_in_a_browser() {
    if !have_browser() {
        return;
    }
    let stack = stack();
    let dir = stack.dir();
    let base = stack.edge().url();
    let key = stack.create_key("webtester", "uploader");

    // The page and its files come from the edge itself, with the headers a page needs.
    let page = stack.edge().get("/");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'self'"), "{csp}");

    let clip1 = Clip::new(1280, 720)
        .seconds(8)
        .audio(true)
        .write(dir, "first.mp4");
    let clip2 = Clip::new(960, 540)
        .seconds(6)
        .audio(true)
        .write(dir, "second.mp4");
    let bad = dir.join("notes.mp4");
    std::fs::write(&bad, "these are notes, not a video\n".repeat(200)).expect("write bad file");
    // 20 MiB that are not a video either: long enough (three tus chunks) to pause and reload
    // in the middle of, refused once the last byte is in.
    let big = dir.join("big.mov");
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..20 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&big, noise).expect("write big file");

    let found = browse(json!({
        "scenario": "vod",
        "base": base,
        "key": key,
        "clip1": clip1,
        "clip2": clip2,
        "bad": bad,
        "big": big,
        "artifacts": artifacts(),
    }));
    assert!(found["played_s"].as_f64().unwrap_or(0.0) >= 3.0, "{found}");
    let id = found["video_id"].as_str().expect("video id");
    // The page's delete really deleted: the API agrees.
    let auth = format!("Bearer {key}");
    let r = stack
        .ingest()
        .conn()
        .request(
            "GET",
            &format!("/v1/videos/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .expect("GET");
    assert_eq!(r.status, 404, "{}", r.text());

    // Live: a publisher pushes through the edge (the front door routes it to the ingest).
    let mut publisher = Process::spawn(
        "publisher",
        Clip::new(1280, 720)
            .seconds(40)
            .audio(true)
            .flush_packets(true)
            .live_push(&format!("{base}/live/{LIVE_KEY}")),
        dir,
    );
    let found = browse(json!({
        "scenario": "live",
        "base": base,
        "key": key,
        "live_video": LIVE_VIDEO,
        "artifacts": artifacts(),
    }));
    assert!(
        found["latency_p50_ms"].as_f64().unwrap_or(f64::MAX) < 3000.0,
        "{found}"
    );
    publisher.terminate(Duration::from_secs(3));
}
