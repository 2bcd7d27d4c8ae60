//! The platform at the edge with a real Redis and store: fleet-wide purges over pub/sub reaching
//! two edges (published through `ringcast_infra::purge::publish`, as the ingest does, and
//! through `POST /purge?fleet=1`), private playback (unsigned 403, signed 200, prefix confusion
//! 403, visibility flips with and without a purge message), and Redis dying under a serving
//! edge (known videos keep playing, unknown ones fail closed for unsigned requests, the
//! subscription comes back and purges work again). Both drivers.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringcast_infra::purge;
use ringcast_infra::queue::Queue;
use ringcast_proto::keys;
use ringcast_proto::purge::PurgeMessage;
use ringcast_proto::signed_url;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, RedisServer, Service, Stack};
use support::{error_code, options, pattern};

const ADMIN: &str = "test-admin-key-0123";
const SECRET: &str = "0123456789abcdef-secret";
const WAIT: Duration = Duration::from_secs(15);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Publish `msg` the way the ingest does: `purge::publish` on a `Queue`. How many edges got it.
fn publish(redis_url: &str, msg: &PurgeMessage) -> u64 {
    block_on(async {
        let queue = Queue::connect(redis_url).await.expect("connect queue");
        purge::publish(&queue, msg).await.expect("publish purge")
    })
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("redis url")
        .get_connection()
        .expect("redis connection")
}

fn set_visibility(url: &str, video: &str, visibility: &str) {
    redis::cmd("HSET")
        .arg(keys::video(video))
        .arg(ringcast_proto::visibility::FIELD)
        .arg(visibility)
        .query::<()>(&mut redis_conn(url))
        .expect("HSET visibility");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A path-token URL for `path` signed over `prefix`, valid for a minute.
fn signed(prefix: &str, path: &str) -> String {
    signed_url::signed_path(SECRET.as_bytes(), prefix, unix_now() + 60, path)
}

fn wait_metric(edge: &Service, series: &str, at_least: u64) {
    wait_until(
        WAIT,
        &format!("{series} >= {at_least} on {}", edge.name),
        || edge.metric::<u64>(series).unwrap_or(0) >= at_least,
    );
}

fn wait_subscribed(edge: &Service) {
    wait_until(
        WAIT,
        &format!("{} subscribed to rc:purge", edge.name),
        || edge.metric::<u64>("ringcast_edge_purge_subscribed") == Some(1),
    );
}

fn applied(edge: &Service) -> u64 {
    edge.counter("ringcast_edge_purge_messages_applied_total")
}

fn body(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

const MASTER: &str = "v/vid/master.m3u8";

fn master(n: u32) -> Vec<u8> {
    format!("#EXTM3U\n#EXT-X-VERSION:7\n# pointer {n}\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n{n}/720p/index.m3u8\n")
        .into_bytes()
}

fn fleet_purge_reaches_both_edges(legacy: bool) {
    // Current-master pointers cached for ten minutes: only a purge can change what is served.
    let edge = |name: &str| {
        options(legacy)
            .name(name)
            .admin_key(ADMIN)
            .toml("playlist_ttl_ms = 600000\nplaylist_stale_while_revalidate_ms = 0")
    };
    // edge-b has a disk tier too: a fleet purge reaches both tiers.
    let disk = tempfile::tempdir().expect("tempdir");
    let stack = Stack::builder()
        .redis()
        .edge(edge("edge-a"))
        .edge(edge("edge-b").disk_cache(disk.path(), 64 << 20, 1000))
        .start();
    let (a, b) = (stack.service("edge-a"), stack.service("edge-b"));
    wait_subscribed(a);
    wait_subscribed(b);
    let path = format!("/{MASTER}");

    stack.put(MASTER, &master(1));
    for e in [a, b] {
        assert_eq!(
            body(&e.get(&path)),
            String::from_utf8(master(1)).expect("utf8")
        );
    }
    // The store moves on; both edges keep serving their cached pointer.
    stack.put(MASTER, &master(2));
    for e in [a, b] {
        let r = e.get(&path);
        assert_eq!(r.header("x-cache"), Some("HIT"));
        assert_eq!(r.body, master(1), "{} served from cache", e.name);
    }

    // The ingest's call after a rollback: one key, every edge.
    let receivers = publish(stack.redis_url(), &PurgeMessage::current_master("vid"));
    assert_eq!(receivers, 2, "both edges subscribed");
    for e in [a, b] {
        wait_metric(e, "ringcast_edge_purge_messages_applied_total", 1);
        let r = e.get(&path);
        assert_eq!(r.body, master(2), "{} after the purge", e.name);
    }

    // The admin fan-out: POST /purge?fleet=1 on one edge purges both.
    stack.put(MASTER, &master(3));
    assert_eq!(b.get(&path).body, master(2), "still cached");
    let auth = format!("Bearer {ADMIN}");
    let r = a
        .conn()
        .request(
            "POST",
            "/purge?fleet=1",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            format!(r#"{{"keys": ["{MASTER}"]}}"#).as_bytes(),
        )
        .expect("POST /purge?fleet=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(
        (v["fleet"].as_bool(), v["receivers"].as_u64()),
        (Some(true), Some(2))
    );
    for e in [a, b] {
        wait_metric(e, "ringcast_edge_purge_messages_applied_total", 2);
        assert_eq!(
            e.get(&path).body,
            master(3),
            "{} after the fleet purge",
            e.name
        );
    }
    assert_eq!(a.counter("ringcast_edge_purge_published_total"), 1);
    // Without the admin key nothing is published.
    let r = a
        .conn()
        .request(
            "POST",
            "/purge?fleet=1",
            &[],
            br#"{"keys": ["v/vid/master.m3u8"]}"#,
        )
        .expect("POST");
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unauthorized"));

    // A deleted video: its prefix goes from every tier (here a segment in edge-b's disk tier;
    // media never change under their name, so only the purge can make the new bytes show).
    let seg = "v/vid/1/720p/seg0.m4s";
    stack.put(seg, &pattern(5000, 1));
    let r = b.get(&format!("/{seg}"));
    assert_eq!(r.body, pattern(5000, 1));
    let r = b.get(&format!("/{seg}"));
    assert_eq!(
        (r.header("x-cache-tier"), r.header("x-cache")),
        (Some("disk"), Some("HIT"))
    );
    stack.put(seg, &pattern(5000, 2));
    assert_eq!(
        b.get(&format!("/{seg}")).body,
        pattern(5000, 1),
        "cached on disk"
    );
    assert_eq!(
        publish(stack.redis_url(), &PurgeMessage::video_deleted("vid")),
        2
    );
    wait_metric(b, "ringcast_edge_purge_messages_applied_total", 3);
    assert_eq!(
        b.get(&format!("/{seg}")).body,
        pattern(5000, 2),
        "purged from disk"
    );
    assert!(b.counter("ringcast_edge_purged_entries_total") >= 2);

    // Garbage on the channel is refused whole, by both, and changes nothing.
    for e in [a, b] {
        wait_metric(e, "ringcast_edge_purge_messages_applied_total", 3);
        assert_eq!(
            e.get(&path).body,
            master(3),
            "{} refetched after the prefix purge",
            e.name
        );
    }
    stack.put(MASTER, &master(4));
    let receivers: u64 = redis::cmd("PUBLISH")
        .arg(keys::PURGE_CHANNEL)
        .arg(r#"{"v":1,"keys":["v/vid/master.m3u8","v/../etc"]}"#)
        .query(&mut redis_conn(stack.redis_url()))
        .expect("PUBLISH");
    assert_eq!(receivers, 2);
    for e in [a, b] {
        wait_metric(e, "ringcast_edge_purge_messages_rejected_total", 1);
        assert_eq!(applied(e), 3);
        assert_eq!(e.get(&path).body, master(3), "{}: nothing applied", e.name);
    }
}

fn private_playback(legacy: bool) {
    let ttl = Duration::from_millis(3000);
    let stack = Stack::builder()
        .redis()
        .edge(options(legacy).playback_secret(SECRET).toml(format!(
            "[platform]\nvisibility_ttl_ms = {}",
            ttl.as_millis()
        )))
        .start();
    let edge = stack.edge();
    let url = stack.redis_url();
    for video in ["abc", "abcdef", "pub", "unl", "flip"] {
        stack.put(&format!("v/{video}/master.m3u8"), &master(1));
        stack.put(&format!("v/{video}/1/720p/seg0.m4s"), b"media bytes");
    }
    set_visibility(url, "abc", "private");
    set_visibility(url, "abcdef", "private");
    set_visibility(url, "unl", "unlisted");
    // "pub" and "flip" have no field: public.

    // Private: unsigned 403 (JSON), signed 200 with Cache-Control private, in both URL forms.
    for path in ["/v/abc/master.m3u8", "/v/abc/1/720p/seg0.m4s"] {
        let r = edge.get(path);
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (403, "signature_missing"),
            "{path}"
        );
        let r = edge.get(&signed("/v/abc/", path));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let cc = r.header("cache-control").unwrap_or_default();
        assert!(cc.starts_with("private"), "{path}: {cc}");
        let q = signed_url::signed_query(SECRET.as_bytes(), "/v/abc/", unix_now() + 60);
        let r = edge.get(&format!("{path}?{q}"));
        assert_eq!(r.status, 200, "{path} query-signed: {}", r.text());
        assert!(r
            .header("cache-control")
            .unwrap_or_default()
            .starts_with("private"));
    }
    // The cached copy is not a way around the check.
    let r = edge.get("/v/abc/1/720p/seg0.m4s");
    assert_eq!(r.status, 403);
    // Relative URIs of a signed master inherit the token.
    let m = signed("/v/abc/", "/v/abc/master.m3u8");
    let seg = format!("{}1/720p/seg0.m4s", &m[..m.rfind('/').expect("slash") + 1]);
    assert_eq!(edge.get(&seg).body, b"media bytes");

    // Prefix confusion: a token for /v/abc/ never opens /v/abcdef/…, nor does /v/abc (one path).
    let target = "/v/abcdef/master.m3u8";
    let moved = signed("/v/abc/", "/v/abc/master.m3u8").replace("/v/abc/", "/v/abcdef/");
    let slashless = signed("/v/abc", "/v/abc").replacen("/v/abc", target, 1);
    let q = signed_url::signed_query(SECRET.as_bytes(), "/v/abc/", unix_now() + 60);
    let q_slashless = signed_url::signed_query(SECRET.as_bytes(), "/v/abc", unix_now() + 60);
    for (attempt, code) in [
        (moved, "signature_invalid"),
        (slashless, "signature_prefix"),
        (format!("{target}?{q}"), "signature_prefix"),
        (format!("{target}?{q_slashless}"), "signature_prefix"),
    ] {
        let r = edge.get(&attempt);
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (403, code),
            "{attempt}"
        );
    }
    assert_eq!(edge.get(&signed("/v/abcdef/", target)).status, 200);
    // An expired token is refused with its reason.
    let old = signed_url::signed_path(
        SECRET.as_bytes(),
        "/v/abc/",
        unix_now() - 1,
        "/v/abc/master.m3u8",
    );
    let r = edge.get(&old);
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_expired")
    );

    // Public and unlisted play unsigned, cacheable downstream.
    for path in ["/v/pub/master.m3u8", "/v/unl/1/720p/seg0.m4s"] {
        let r = edge.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("cache-control")
                .unwrap_or_default()
                .starts_with("public"),
            "{path}"
        );
    }
    assert!(edge.counter("ringcast_edge_playback_denied_total{reason=\"private\"}") >= 3);

    // A flip public → private with the ingest's purge message takes effect at once: well
    // inside the TTL of the answer learned just before.
    wait_subscribed(edge);
    assert_eq!(publish(url, &PurgeMessage::video_changed("pub")), 1);
    wait_metric(edge, "ringcast_edge_purge_messages_applied_total", 1);
    let learned = Instant::now();
    assert_eq!(edge.get("/v/pub/1/720p/seg0.m4s").status, 200);
    set_visibility(url, "pub", "private");
    assert_eq!(publish(url, &PurgeMessage::video_changed("pub")), 1);
    wait_metric(edge, "ringcast_edge_purge_messages_applied_total", 2);
    let r = edge.get("/v/pub/1/720p/seg0.m4s");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (403, "signature_missing")
    );
    assert!(
        learned.elapsed() < ttl,
        "the purge, not the TTL, made the change"
    );

    // Without a message, within the TTL of the answer.
    let learned = Instant::now();
    assert_eq!(edge.get("/v/flip/1/720p/seg0.m4s").status, 200);
    set_visibility(url, "flip", "private");
    wait_until(ttl * 3, "the private flip to show without a purge", || {
        edge.get("/v/flip/1/720p/seg0.m4s").status == 403
    });
    assert!(
        learned.elapsed() <= ttl + Duration::from_millis(500),
        "took {:?} with visibility_ttl_ms = {ttl:?}",
        learned.elapsed()
    );
    // And back to public the same way.
    set_visibility(url, "flip", "public");
    wait_until(ttl * 3, "the public flip to show", || {
        edge.get("/v/flip/1/720p/seg0.m4s").status == 200
    });
}

fn redis_outage_and_resubscription(legacy: bool) {
    let mut redis_server = RedisServer::start();
    let url = redis_server.url.clone();
    let ttl = Duration::from_millis(500);
    let stack = Stack::builder()
        .redis_at(&url)
        .edge(options(legacy).playback_secret(SECRET).toml(format!(
            "playlist_ttl_ms = 600000\nplaylist_stale_while_revalidate_ms = 0\n\
             [platform]\nvisibility_ttl_ms = {}\nredis_timeout_ms = 300",
            ttl.as_millis()
        )))
        .start();
    let edge = stack.edge();
    wait_subscribed(edge);
    for video in ["known", "never", "priv"] {
        stack.put(&format!("v/{video}/master.m3u8"), &master(1));
        stack.put(&format!("v/{video}/1/720p/seg0.m4s"), b"media bytes");
    }
    set_visibility(&url, "priv", "private");
    let known = "/v/known/1/720p/seg0.m4s";
    assert_eq!(edge.get(known).status, 200);
    assert_eq!(edge.get("/v/known/master.m3u8").body, master(1));
    assert_eq!(
        edge.get(&signed("/v/priv/", "/v/priv/master.m3u8")).status,
        200
    );

    redis_server.stop();
    wait_until(WAIT, "the edge to notice Redis is gone", || {
        edge.metric::<u64>("ringcast_edge_purge_subscribed") == Some(0)
    });
    // The known public video keeps playing on its last answer once that expired.
    wait_until(WAIT, "a stale visibility to be used", || {
        assert_eq!(edge.get(known).status, 200, "known video during the outage");
        edge.counter("ringcast_edge_visibility_stale_served_total") >= 1
    });
    assert!(edge.counter("ringcast_edge_visibility_lookup_errors_total") >= 1);
    // Never learned: unsigned fails closed, signed plays (marked private).
    let r = edge.get("/v/never/master.m3u8");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (503, "visibility_unavailable")
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = edge.get(&signed("/v/never/", "/v/never/1/720p/seg0.m4s"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("cache-control")
        .unwrap_or_default()
        .starts_with("private"));
    // The private one still needs its signature, and has it.
    assert_eq!(edge.get("/v/priv/master.m3u8").status, 403);
    assert_eq!(
        edge.get(&signed("/v/priv/", "/v/priv/master.m3u8")).status,
        200
    );

    // Redis comes back (empty, as after a crash): the edge subscribes again by itself.
    redis_server.restart();
    wait_metric(edge, "ringcast_edge_purge_subscriber_reconnects_total", 1);
    wait_subscribed(edge);
    // It assumed it missed purges: cached visibilities are gone (the unknown video is asked
    // again and found public), and so is the cached current-master pointer.
    wait_until(WAIT, "the never-learned video to play", || {
        edge.get("/v/never/master.m3u8").status == 200
    });
    stack.put("v/known/master.m3u8", &master(2));
    assert_eq!(
        edge.get("/v/known/master.m3u8").body,
        master(2),
        "the pointer cached before the outage was dropped"
    );
    // Purges work again.
    stack.put("v/known/master.m3u8", &master(3));
    assert_eq!(edge.get("/v/known/master.m3u8").body, master(2), "cached");
    assert_eq!(publish(&url, &PurgeMessage::current_master("known")), 1);
    wait_metric(edge, "ringcast_edge_purge_messages_applied_total", 1);
    assert_eq!(edge.get("/v/known/master.m3u8").body, master(3));
    drop(stack);
}

both_drivers!(
    fleet_purge_reaches_both_edges,
    private_playback,
    redis_outage_and_resubscription
);
