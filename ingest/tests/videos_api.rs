//! The videos API on a real ingest with Redis and a store: listing and cursor pagination (order,
//! no duplicate or gap while videos arrive and go), the 401/403 matrix of every `/v1/` route
//! per role, `PATCH` validation and its visibility purge, `DELETE` (objects and keys gone, the
//! edge purged, on the filesystem store and the S3 server) and signed playback URLs.

mod support;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Commands;
use ringcast_infra::config::StoreBackend;
use ringcast_infra::platform::videos::Videos;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_proto::purge::PurgeMessage;
use ringcast_proto::signed_url::{self, SignError};
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, EdgeOptions, Service, Stack};
use serde_json::Value;
use support::*;

const SECRET: &str = "playback-secret-for-tests-0001";

fn call(
    ingest: &Service,
    method: &str,
    target: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut all = headers.to_vec();
    if let Some(a) = &auth {
        all.push(("Authorization", a));
    }
    ingest
        .conn()
        .request(method, target, &all, body)
        .expect("request")
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

fn code(r: &Response) -> String {
    json(r)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Register videos straight in Redis (as an upload's finish does): `(id, owner, created_ms)`.
fn seed(stack: &Stack, rows: &[(&str, &str, u64)]) {
    let videos = Videos::new(&queue(stack.redis_url()));
    let rows = rows
        .iter()
        .map(|(id, owner, ms)| (id.to_string(), owner.to_string(), format!("t-{id}"), *ms))
        .collect();
    block_on(videos.register_many(rows)).expect("seed");
}

fn redis_conn(stack: &Stack) -> redis::Connection {
    redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("redis")
}

/// Every id of `owner`'s listing as `token` sees it, page by page; `between` runs after each
/// page.
fn walk(ingest: &Service, token: &str, query: &str, mut between: impl FnMut(usize)) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let target = match &cursor {
            Some(c) => format!("/v1/videos?{query}&cursor={c}"),
            None => format!("/v1/videos?{query}"),
        };
        let r = call(ingest, "GET", &target, Some(token), &[], b"");
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        let v = json(&r);
        for item in v["videos"].as_array().expect("videos") {
            out.push(item["video_id"].as_str().expect("id").to_string());
        }
        between(page);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out
}

#[test]
fn listing_pages_newest_first_without_gaps_while_videos_come_and_go() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let admin = stack.create_key("ops", "admin");
    let base = now_ms() - 1_000_000;
    let mut rows: Vec<(String, &str, u64)> = (0..45u64)
        .map(|i| (format!("al{i:02}"), "alice", base + i * 10))
        .collect();
    // Two share a timestamp: ordered by id, descending.
    rows.push(("alZZ".into(), "alice", base + 200));
    rows.push(("bob1".into(), "bob", base + 5));
    let refs: Vec<(&str, &str, u64)> = rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    seed(&stack, &refs);
    let mut want: Vec<(u64, String)> = rows
        .iter()
        .filter(|(_, o, _)| *o == "alice")
        .map(|(id, _, ms)| (*ms, id.clone()))
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();

    // A quiet walk, then one where a newer video arrives and an already listed one is deleted
    // after every page: neither changes what the remaining pages hold.
    assert_eq!(walk(ingest, &alice, "limit=7", |_| {}), want);
    let mut conn = redis_conn(&stack);
    let seen = walk(ingest, &alice, "limit=10", |page| {
        seed(&stack, &[(&format!("new{page}"), "alice", now_ms())]);
        let gone = &want[page * 10];
        let _: i64 = conn.zrem(keys::owner_videos("alice"), gone).expect("zrem");
        let _: i64 = conn.del(keys::video(gone)).expect("del");
    });
    assert_eq!(
        seen, want,
        "no duplicate, no gap, no newcomer in the middle"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());

    // The first page shows the newcomers, newest first; default limit 20.
    let r = call(ingest, "GET", "/v1/videos", Some(&alice), &[], b"");
    let v = json(&r);
    let page = v["videos"].as_array().expect("videos");
    assert_eq!(page.len(), 20);
    assert_eq!(page[0]["video_id"], "new4");
    assert_eq!(v["owner"], "alice");
    // Every item has the single-video shape.
    let single = json(&call(
        ingest,
        "GET",
        &format!("/v1/videos/{}", page[5]["video_id"].as_str().expect("id")),
        Some(&alice),
        &[],
        b"",
    ));
    assert_eq!(page[5], single);
    for field in [
        "title",
        "description",
        "visibility",
        "owner",
        "created_ms",
        "status",
        "playback_url",
        "duration_secs",
        "poster",
    ] {
        assert!(page[5].get(field).is_some(), "{field} missing: {}", page[5]);
    }

    // Admins list anyone's; others only their own.
    let r = call(
        ingest,
        "GET",
        "/v1/videos?owner=bob",
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(json(&r)["videos"][0]["video_id"], "bob1", "{}", r.text());
    let r = call(
        ingest,
        "GET",
        "/v1/videos?owner=bob",
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!((r.status, code(&r)), (403, "forbidden".into()));
    let r = call(
        ingest,
        "GET",
        "/v1/videos?owner=alice",
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=garbage",
        "owner=../x",
        "sort=asc",
    ] {
        let r = call(
            ingest,
            "GET",
            &format!("/v1/videos?{bad}"),
            Some(&alice),
            &[],
            b"",
        );
        assert_eq!((r.status, code(&r)), (400, "bad_request".into()), "{bad}");
    }
}

#[test]
fn every_route_answers_401_and_403_by_role() {
    let stack = Stack::builder()
        .ingest(
            options()
                .require_keys()
                .toml(format!("[playback]\nsigning_secret = \"{SECRET}\"")),
        )
        .start();
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let viewer = stack.create_key("alice", "viewer");
    let bob = stack.create_key("bob", "uploader");
    let admin = stack.create_key("ops", "admin");
    let t = now_ms();
    seed(
        &stack,
        &[
            ("a1", "alice", t),
            ("a2", "alice", t + 1),
            ("a3", "alice", t + 2),
        ],
    );
    let patch = br#"{"title":"x"}"#;

    for token in [
        None,
        Some("rck_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
    ] {
        for (method, target) in [
            ("GET", "/v1/videos"),
            ("GET", "/v1/videos/a1"),
            ("PATCH", "/v1/videos/a1"),
            ("DELETE", "/v1/videos/a1"),
            ("POST", "/v1/videos/a1/playback"),
        ] {
            let r = call(ingest, method, target, token, &[JSON], patch);
            assert_eq!(
                (r.status, code(&r)),
                (401, "unauthorized".into()),
                "{method} {target}"
            );
        }
    }
    // (token, method, target, status): who may do what on alice's a1.
    let cases: Vec<(&str, &str, &str, u16)> = vec![
        (&bob, "GET", "/v1/videos/a1", 403),
        (&bob, "PATCH", "/v1/videos/a1", 403),
        (&bob, "DELETE", "/v1/videos/a1", 403),
        (&bob, "POST", "/v1/videos/a1/playback", 403),
        (&viewer, "GET", "/v1/videos/a1", 200),
        (&viewer, "GET", "/v1/videos", 200),
        (&viewer, "PATCH", "/v1/videos/a1", 403),
        (&viewer, "DELETE", "/v1/videos/a1", 403),
        (&viewer, "POST", "/v1/videos/a1/playback", 200),
        (&alice, "GET", "/v1/videos/a1", 200),
        (&alice, "PATCH", "/v1/videos/a1", 200),
        (&alice, "POST", "/v1/videos/a1/playback", 200),
        (&alice, "DELETE", "/v1/videos/a2", 204),
        (&admin, "GET", "/v1/videos/a1", 200),
        (&admin, "PATCH", "/v1/videos/a1", 200),
        (&admin, "POST", "/v1/videos/a1/playback", 200),
        (&admin, "DELETE", "/v1/videos/a3", 204),
        // Gone, unknown and malformed ids.
        (&alice, "GET", "/v1/videos/a2", 404),
        (&admin, "DELETE", "/v1/videos/a3", 404),
        (&alice, "GET", "/v1/videos/nope", 404),
        (&alice, "PATCH", "/v1/videos/nope", 404),
        (&alice, "GET", "/v1/videos/a%2Fb", 400),
    ];
    for (token, method, target, status) in cases {
        let body: &[u8] = if method == "PATCH" { patch } else { b"" };
        let r = call(ingest, method, target, Some(token), &[JSON], body);
        assert_eq!(r.status, status, "{method} {target}: {}", r.text());
        if status == 403 {
            assert_eq!(code(&r), "forbidden");
        }
    }
    // Bob's own listing does not show alice's videos.
    let r = call(ingest, "GET", "/v1/videos", Some(&bob), &[], b"");
    assert_eq!(json(&r)["videos"], Value::Array(vec![]));
    // Methods a route does not serve: 405 with the route's Allow.
    let r = call(ingest, "PUT", "/v1/videos/a1", Some(&alice), &[], b"");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, PATCH, DELETE, OPTIONS"))
    );
    let r = call(ingest, "DELETE", "/v1/videos", Some(&alice), &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn patch_validates_its_body_and_purges_a_visibility_change() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    seed(&stack, &[("vid", "alice", now_ms() - 5000)]);
    let before = json(&call(
        ingest,
        "GET",
        "/v1/videos/vid",
        Some(&alice),
        &[],
        b"",
    ));
    assert_eq!(before["visibility"], "public", "absent = public");

    let long_title = serde_json::json!({ "title": "t".repeat(201) }).to_string();
    let long_desc = serde_json::json!({ "description": "d".repeat(5001) }).to_string();
    let huge = serde_json::json!({ "description": "d".repeat(70_000) }).to_string();
    // (body, content type, status, code, words in the message)
    let cases: Vec<(&str, &str, u16, &str, &str)> = vec![
        (
            &long_title,
            "application/json",
            400,
            "bad_request",
            "at most 200",
        ),
        (
            &long_desc,
            "application/json",
            400,
            "bad_request",
            "at most 5000",
        ),
        (
            r#"{"title":"a\nb"}"#,
            "application/json",
            400,
            "bad_request",
            "control character",
        ),
        (
            r#"{"title":"a\u0007b"}"#,
            "application/json",
            400,
            "bad_request",
            "U+0007",
        ),
        (
            r#"{"description":"a\tb"}"#,
            "application/json",
            400,
            "bad_request",
            "only newline",
        ),
        (
            r#"{"visibility":"hidden"}"#,
            "application/json",
            400,
            "bad_request",
            "public, unlisted, private",
        ),
        (
            r#"{"owner":"bob"}"#,
            "application/json",
            400,
            "bad_request",
            "unknown field",
        ),
        (
            r#"{"title":null}"#,
            "application/json",
            400,
            "bad_request",
            "null",
        ),
        (
            "{}",
            "application/json",
            400,
            "bad_request",
            "nothing to change",
        ),
        (
            "not json",
            "application/json",
            400,
            "bad_request",
            "JSON object",
        ),
        ("", "application/json", 400, "bad_request", "JSON object"),
        (
            r#"{"title":"x"}"#,
            "text/plain",
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            r#"{"title":"x"}"#,
            "application/jsonx",
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            &huge,
            "application/json",
            413,
            "payload_too_large",
            "at most 65536",
        ),
    ];
    for (body, ct, status, want_code, words) in cases {
        let r = call(
            ingest,
            "PATCH",
            "/v1/videos/vid",
            Some(&alice),
            &[("Content-Type", ct)],
            body.as_bytes(),
        );
        let short: String = body.chars().take(40).collect();
        assert_eq!(
            (r.status, code(&r)),
            (status, want_code.to_string()),
            "{short}: {}",
            r.text()
        );
        let message = json(&r)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(message.contains(words), "{short}: {message}");
    }
    // A chunked body: its size cannot be checked first.
    let mut conn = ingest.conn();
    conn.send_raw(
        format!(
            "PATCH /v1/videos/vid HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {alice}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             d\r\n{{\"title\":\"x\"}}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send");
    let r = conn.read_response(false).expect("answer");
    assert_eq!((r.status, code(&r)), (400, "length_required".into()));
    // Nothing above changed the video.
    let same = json(&call(
        ingest,
        "GET",
        "/v1/videos/vid",
        Some(&alice),
        &[],
        b"",
    ));
    assert_eq!(same, before);

    // A valid change: stored, updated_ms moves, and a visibility change reaches every edge
    // through the purge channel.
    let mut sub = redis_conn(&stack);
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe(keys::PURGE_CHANNEL).expect("subscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = serde_json::json!({
        "title": "Ünïcode title ✓",
        "description": "line 1\nline 2",
        "visibility": "private",
    })
    .to_string();
    let r = call(
        ingest,
        "PATCH",
        "/v1/videos/vid",
        Some(&alice),
        &[("Content-Type", "application/json; charset=utf-8")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after = json(&r);
    assert_eq!(after["title"], "Ünïcode title ✓");
    assert_eq!(after["description"], "line 1\nline 2");
    assert_eq!(after["visibility"], "private");
    assert!(after["updated_ms"].as_u64() > before["updated_ms"].as_u64());
    assert_eq!(after["created_ms"], before["created_ms"]);
    let msg = pubsub.get_message().expect("a purge message");
    let payload: String = msg.get_payload().expect("payload");
    assert_eq!(
        PurgeMessage::parse(payload.as_bytes()).expect("valid"),
        PurgeMessage::video_changed("vid")
    );
    // A title-only change publishes nothing.
    let r = call(
        ingest,
        "PATCH",
        "/v1/videos/vid",
        Some(&alice),
        &[JSON],
        br#"{"title":""}"#,
    );
    assert_eq!((r.status, json(&r)["title"].as_str()), (200, Some("")));
    pubsub
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(pubsub.get_message().is_err(), "no purge for a title change");
}

/// A video with every kind of object and key, deleted through the API with an edge that has
/// cached it: objects, keys and the edge's copy gone, a neighbour whose id starts the same
/// untouched.
fn delete_removes_everything(backend: StoreBackend) {
    let stack = Stack::builder()
        .store(backend)
        .ingest(options().require_keys())
        .edge(EdgeOptions::new())
        .start();
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let store = block_on(ObjectStore::open(stack.store())).expect("store");
    let (id, neighbour) = ("doomed", "doomedx");
    seed(
        &stack,
        &[(id, "alice", now_ms()), (neighbour, "alice", now_ms())],
    );
    let objects = |v: &str| {
        vec![
            keys::current_master(v),
            keys::version_master(v, 1),
            keys::rendition_file(v, 1, "360p", "index.m3u8"),
            keys::rendition_file(v, 1, "360p", &keys::segment_name(1)),
            keys::version_file(v, 2, "poster.jpg"),
            keys::source(v, 1),
            keys::source(v, 2),
            keys::version_floor(v),
        ]
    };
    for v in [id, neighbour] {
        for k in objects(v) {
            block_on(store.put(&k, bytes::Bytes::from(format!("{k}\n")), "text/plain"))
                .expect("put");
        }
    }
    let sha = "ab".repeat(32);
    let mut conn = redis_conn(&stack);
    let q = queue(stack.redis_url());
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: "job-doomed".into(),
        video_id: id.into(),
        version: 2,
        source_key: keys::source(id, 2),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    };
    block_on(q.enqueue(&job)).expect("enqueue");
    block_on(q.set_state(&job, JobState::Running, 30.0, None)).expect("running");
    let _: () = conn
        .hset(keys::video(id), "source_sha256", &sha)
        .expect("hset");
    let _: () = conn.set(keys::sha256("alice", &sha), id).expect("set");
    let _: () = conn
        .hset(keys::video_versions(id), "1", "{}")
        .expect("hset");
    let _: () = conn
        .hset(keys::live_stream(id, 1), "publishes", 1)
        .expect("hset");

    // The edge caches a segment (year-long) before the delete.
    let seg = format!(
        "/{}",
        keys::rendition_file(id, 1, "360p", &keys::segment_name(1))
    );
    assert_eq!(stack.edge().get(&seg).status, 200);
    assert_eq!(stack.edge().get(&seg).header("x-cache"), Some("HIT"));

    let mut sub = redis_conn(&stack);
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe(keys::PURGE_CHANNEL).expect("subscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let r = call(
        ingest,
        "DELETE",
        &format!("/v1/videos/{id}"),
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let msg: String = pubsub
        .get_message()
        .expect("purge")
        .get_payload()
        .expect("payload");
    assert_eq!(
        PurgeMessage::parse(msg.as_bytes()).expect("valid"),
        PurgeMessage::video_deleted(id)
    );

    let r = call(
        ingest,
        "GET",
        &format!("/v1/videos/{id}"),
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    let left = block_on(store.list(&format!("v/{id}/"))).expect("list");
    assert_eq!(left, Vec::<String>::new());
    let left = block_on(store.list(&format!("sources/{id}/"))).expect("list");
    assert_eq!(
        left,
        vec![keys::version_floor(id)],
        "only the version floor stays"
    );
    for k in objects(neighbour) {
        assert!(
            block_on(store.get(&k)).expect("get").is_some(),
            "{k} of the neighbour"
        );
    }
    for k in [
        keys::video(id),
        keys::sha256("alice", &sha),
        keys::video_versions(id),
        keys::live_stream(id, 1),
    ] {
        assert!(!conn.exists::<_, bool>(&k).expect("exists"), "{k} left");
    }
    let listed: Vec<String> = conn
        .zrange(keys::owner_videos("alice"), 0, -1)
        .expect("zrange");
    assert_eq!(listed, vec![neighbour.to_string()]);
    let cancel: Option<String> = conn
        .hget(
            keys::job_state("job-doomed"),
            ringcast_proto::job::CANCEL_REQUESTED_FIELD,
        )
        .expect("hget");
    assert_eq!(
        cancel.as_deref(),
        Some("1"),
        "the running job was asked to stop"
    );
    // The edge dropped its copy: 404 from now on.
    wait_until(
        Duration::from_secs(10),
        "the edge to apply the purge",
        || stack.edge().get(&seg).status == 404,
    );
    assert_eq!(
        stack
            .edge()
            .get(&format!("/{}", keys::current_master(neighbour)))
            .status,
        200
    );
    // A second delete finds nothing.
    let r = call(
        ingest,
        "DELETE",
        &format!("/v1/videos/{id}"),
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn delete_removes_everything_from_the_filesystem_store() {
    delete_removes_everything(StoreBackend::Fs);
}

#[test]
fn delete_removes_everything_from_the_s3_store() {
    delete_removes_everything(StoreBackend::S3);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn playback_urls_sign_exactly_the_videos_folder() {
    let stack = Stack::builder()
        .ingest(options().require_keys().toml(format!(
            "[playback]\nsigning_secret = \"{SECRET}\"\nttl_secs = 600\npublic_base_url = \"https://cdn.example.com/\""
        )))
        .start();
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "viewer");
    seed(&stack, &[("clip", "alice", now_ms())]);

    let r = call(
        ingest,
        "POST",
        "/v1/videos/clip/playback",
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    let url = v["url"].as_str().expect("url");
    let path = url
        .strip_prefix("https://cdn.example.com")
        .unwrap_or_else(|| panic!("absolute under public_base_url: {url}"));
    assert_eq!(v["path"], path);
    assert_eq!(v["prefix"], "/v/clip/");
    let now = unix_now();
    let expires = v["expires"].as_u64().expect("expires");
    assert!(
        (now + 599..=now + 601).contains(&expires),
        "{expires} vs {now}"
    );
    assert_eq!(
        signed_url::verify_path(SECRET.as_bytes(), path, now),
        Ok("/v/clip/master.m3u8")
    );
    // What a player resolves relative URIs to is covered; another video is not, even one
    // whose id starts with this one.
    let dir = &path[..path.rfind('/').expect("slash") + 1];
    let seg = format!("{dir}1/720p/seg3.m4s");
    assert_eq!(
        signed_url::verify_path(SECRET.as_bytes(), &seg, now),
        Ok("/v/clip/1/720p/seg3.m4s")
    );
    let token_len = path.len() - "/v/clip/master.m3u8".len();
    let other = format!("{}/v/clipx/master.m3u8", &path[..token_len]);
    assert!(signed_url::verify_path(SECRET.as_bytes(), &other, now).is_err());
    assert_eq!(
        signed_url::verify_path(SECRET.as_bytes(), path, expires),
        Err(SignError::Expired)
    );

    // A shorter lifetime on request; never a longer one.
    let r = call(
        ingest,
        "POST",
        "/v1/videos/clip/playback",
        Some(&alice),
        &[JSON],
        br#"{"ttl_secs":60}"#,
    );
    let e = json(&r)["expires"].as_u64().expect("expires");
    assert!((now + 59..=now + 61).contains(&e), "{e}");
    let r = call(
        ingest,
        "POST",
        "/v1/videos/clip/playback",
        Some(&alice),
        &[JSON],
        br#"{"ttl_secs":601}"#,
    );
    assert_eq!((r.status, code(&r)), (400, "bad_request".into()));
    let r = call(
        ingest,
        "POST",
        "/v1/videos/clip/playback",
        Some(&alice),
        &[("Content-Type", "text/plain")],
        b"60",
    );
    assert_eq!(r.status, 415);

    // An ingest without a secret says so.
    let plain = stack.spawn(options().require_keys().name("plain"));
    let r = call(
        &plain,
        "POST",
        "/v1/videos/clip/playback",
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, code(&r)),
        (503, "playback_signing_disabled".into())
    );
}

#[test]
fn a_video_shows_its_metadata_duration_and_upload_progress() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let video = small_mp4(stack.dir());
    let mine = WithKey::new(ingest, &alice);
    // "title" = "My clip" in tus metadata (base64).
    let loc = mine.create(video.len() as u64, Some("title TXkgY2xpcA=="));
    let id = upload_id(&loc);
    let half = video.len() / 2;
    assert_eq!(mine.patch(&loc, 0, &video[..half]).status, 204);

    let r = call(
        ingest,
        "GET",
        &format!("/v1/videos/{id}"),
        Some(&alice),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["status"]["state"], "uploading", "{v}");
    assert_eq!(v["status"]["upload"]["offset"], half as u64);
    assert_eq!(v["status"]["upload"]["length"], video.len() as u64);
    assert_eq!(v["title"], "My clip");
    let r = call(
        ingest,
        "GET",
        &format!("/v1/videos/{id}"),
        Some(&bob),
        &[],
        b"",
    );
    assert_eq!(r.status, 403, "another owner's upload in progress");

    assert_eq!(mine.patch(&loc, half as u64, &video[half..]).status, 204);
    let v = json(&call(
        ingest,
        "GET",
        &format!("/v1/videos/{id}"),
        Some(&alice),
        &[],
        b"",
    ));
    assert_eq!(v["owner"], "alice");
    assert_eq!(v["title"], "My clip");
    assert_eq!(v["visibility"], "public");
    assert_eq!(v["status"]["state"], "queued", "{v}");
    assert_eq!(v["status"]["upload"]["state"], "complete");
    assert_eq!(v["status"]["transcode"]["state"], "queued");
    assert_eq!(v["status"]["playable"], false);
    let duration = v["duration_secs"]
        .as_f64()
        .expect("duration from the probe");
    assert!((0.9..=1.2).contains(&duration), "{duration}");
    assert!(v["created_ms"].as_u64().is_some() && v["updated_ms"].as_u64().is_some());
    // The listing has it too.
    let list = json(&call(ingest, "GET", "/v1/videos", Some(&alice), &[], b""));
    assert_eq!(list["videos"][0]["video_id"], id.as_str());
    assert_eq!(list["videos"][0]["duration_secs"], v["duration_secs"]);
}
