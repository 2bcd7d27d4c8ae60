//! API keys, owners and roles on a real ingest with Redis: the 401/403 matrix of the routes,
//! job priority by role, revocation, the open mode, and the `keys` CLI.

mod support;

use std::time::Duration;

use ringcast_proto::job::Priority;
use ringcast_testkit::http::Response;
use ringcast_testkit::Service;
use ringcast_testkit::{command, Kind};
use support::*;

/// One request with `authorization` (or none).
fn call(
    ingest: &Service,
    method: &str,
    target: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut all = headers.to_vec();
    if let Some(a) = authorization {
        all.push(("Authorization", a));
    }
    ingest
        .conn()
        .request(method, target, &all, body)
        .expect("request")
}

fn error_code(r: &Response) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON error body");
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

fn keys_cli(stack: &ringcast_testkit::Stack, args: &[&str]) -> std::process::Output {
    command(Kind::Ingest, false)
        .arg("--config")
        .arg(&stack.ingest().config_path)
        .arg("keys")
        .args(args)
        .output()
        .expect("run ringcast-ingest keys")
}

#[test]
fn keys_owners_and_roles_decide_every_request() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let alice_viewer = stack.create_key("alice", "viewer");
    let bob = stack.create_key("bob", "uploader");
    let admin = stack.create_key("ops", "admin");
    let bearer = |t: &str| format!("Bearer {t}");
    let video = small_mp4(stack.dir());
    let len = video.len().to_string();
    let creation = [TUS, ("Upload-Length", len.as_str())];

    // No key, a malformed one, another scheme, an unknown well-formed one: 401 on every route.
    let unknown = "rck_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    for auth in [
        None,
        Some("Bearer nonsense".to_string()),
        Some(format!("Basic {alice}")),
        Some(bearer(unknown)),
        Some(bearer(&alice[..alice.len() - 1])),
    ] {
        for (method, target) in [
            ("POST", "/files/"),
            ("HEAD", "/files/abc"),
            ("PATCH", "/files/abc"),
            ("GET", "/v1/videos/abc"),
        ] {
            let r = call(ingest, method, target, auth.as_deref(), &creation, b"");
            assert_eq!(r.status, 401, "{method} {target} with {auth:?}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"ringcast\"")
            );
            if method != "HEAD" {
                assert_eq!(error_code(&r), "unauthorized");
            }
        }
    }
    // Operational endpoints and CORS preflights need no key.
    assert_eq!(call(ingest, "GET", "/healthz", None, &[], b"").status, 200);
    assert_eq!(
        call(ingest, "OPTIONS", "/files/", None, &[], b"").status,
        204
    );

    // A viewer may not upload.
    let r = call(
        ingest,
        "POST",
        "/files/",
        Some(&bearer(&alice_viewer)),
        &creation,
        b"",
    );
    assert_eq!((r.status, error_code(&r)), (403, "forbidden".into()));

    // Alice uploads; Bob may neither look at nor continue her upload.
    let mine = WithKey::new(ingest, &alice);
    let loc = mine.create(video.len() as u64, None);
    let r = call(ingest, "HEAD", &loc, Some(&bearer(&bob)), &[TUS], b"");
    assert_eq!(r.status, 403, "another owner's upload");
    let off = "0".to_string();
    let patch_headers = [TUS, OCTETS, ("Upload-Offset", off.as_str())];
    let r = call(
        ingest,
        "PATCH",
        &loc,
        Some(&bearer(&bob)),
        &patch_headers,
        &video,
    );
    assert_eq!(r.status, 403, "another owner's upload");
    assert_eq!(mine.offset(&loc), 0, "Bob's PATCH wrote nothing");
    let r = mine.patch(&loc, 0, &video);
    assert_eq!(r.status, 204, "{}", r.text());
    let id = r.header("ringcast-video-id").expect("video id").to_string();

    // Her video: hers (any of her keys) and the admin's to read; Bob gets 403, not its data.
    let target = format!("/v1/videos/{id}");
    for (who, token, status) in [
        ("alice", &alice, 200),
        ("alice's viewer key", &alice_viewer, 200),
        ("admin", &admin, 200),
        ("bob", &bob, 403),
    ] {
        let r = call(ingest, "GET", &target, Some(&bearer(token)), &[], b"");
        assert_eq!(r.status, status, "{who}: {}", r.text());
    }

    // Priorities come from the role: an uploader asking for one gets 403, an admin gets it.
    for meta in ["priority aGlnaA==", "priority bG93"] {
        let mut h = creation.to_vec();
        h.push(("Upload-Metadata", meta));
        let r = call(ingest, "POST", "/files/", Some(&bearer(&alice)), &h, b"");
        assert_eq!(r.status, 403, "{meta}: {}", r.text());
    }
    let admin_client = WithKey::new(ingest, &admin);
    let loc = admin_client.create(video.len() as u64, Some("priority bG93"));
    assert_eq!(admin_client.patch(&loc, 0, &video).status, 204);
    let queue = queue(stack.redis_url());
    let mut priorities = Vec::new();
    while let Some(d) = next_job(&queue, Duration::from_secs(2)) {
        priorities.push(d.job.expect("job").priority);
    }
    priorities.sort_by_key(|p| p.as_str());
    assert_eq!(priorities, vec![Priority::Low, Priority::Normal]);

    // Revoked: refused from the next request on; the CLI lists it as revoked, without tokens.
    let key_id = alice.split('_').nth(1).expect("key id").to_string();
    let out = keys_cli(&stack, &["revoke", &key_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = call(ingest, "GET", &target, Some(&bearer(&alice)), &[], b"");
    assert_eq!(r.status, 401, "revoked key");
    let r = call(
        ingest,
        "GET",
        &target,
        Some(&bearer(&alice_viewer)),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "her other key still works");
    let out = keys_cli(&stack, &["list", "--owner", "alice", "--json"]);
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let revoked: Vec<bool> = listed.iter().map(|k| k["revoked_ms"].is_u64()).collect();
    assert_eq!(revoked.iter().filter(|r| **r).count(), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&alice[16..]), "list never shows a secret");
    assert!(!text.contains("hash"), "nor the stored hash");
}

#[test]
fn the_keys_cli_refuses_bad_input() {
    let stack = start(options().require_keys());
    for args in [
        &["revoke", "nosuchkey123"][..],
        &["create", "--owner", "../x", "--role", "admin"],
        &["create", "--owner", "alice", "--role", "root"],
    ] {
        let out = keys_cli(&stack, args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn open_mode_lets_anonymous_callers_in_but_still_checks_keys_sent() {
    let stack = start(options());
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);
    let r = ingest.patch(&loc, 0, &video);
    assert_eq!(r.status, 204, "{}", r.text());
    let id = r.header("ringcast-video-id").expect("video id").to_string();
    let r = call(ingest, "GET", &format!("/v1/videos/{id}"), None, &[], b"");
    assert_eq!(r.status, 200);
    let r = call(
        ingest,
        "GET",
        &format!("/v1/videos/{id}"),
        Some("Bearer rck_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
        &[],
        b"",
    );
    assert_eq!(r.status, 401, "a key that is sent must be valid");
    assert!(
        ingest.log_text().contains("auth.mode = \\\"open\\\"")
            || ingest.log_text().contains("auth.mode = \"open\""),
        "the open mode is announced in the log"
    );
}
