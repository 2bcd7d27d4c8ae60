//! Versions, rollback, the progress stream and duplicate uploads against the real services:
//! Redis, the store (filesystem and S3), the ingest, the transcoder (real ffmpeg) and an edge
//! that caches playlists for ten minutes, so a change it shows within seconds came from the
//! fleet purge, not from its TTL.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ringcast_proto::job::{now_ms, JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, EdgeOptions, Service, Stack, StoreBackend, TranscoderOptions};
use serde_json::Value;
use support::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// tus metadata naming the video an upload is a new version of.
fn version_of(video: &str) -> String {
    format!("video_id {}", b64(video))
}

fn clip(stack: &Stack, seconds: u32, name: &str) -> Vec<u8> {
    let path = Clip::new(320, 240)
        .fps(25)
        .seconds(seconds)
        .write(stack.dir(), name);
    std::fs::read(path).expect("read clip")
}

fn call(
    ingest: &Service,
    key: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let auth = format!("Bearer {key}");
    let mut all = headers.to_vec();
    all.push(("Authorization", auth.as_str()));
    ingest
        .conn()
        .request(method, target, &all, body)
        .expect("request")
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// POST /files/ with optional metadata; the raw response.
fn create(ingest: &Service, key: &str, len: usize, meta: Option<&str>) -> Response {
    let len = len.to_string();
    let mut headers = vec![TUS, ("Upload-Length", len.as_str())];
    if let Some(m) = meta {
        headers.push(("Upload-Metadata", m));
    }
    call(ingest, key, "POST", "/files/", &headers, b"")
}

/// Upload `bytes` in one PATCH; the final response.
fn upload(ingest: &Service, key: &str, bytes: &[u8], meta: Option<&str>) -> Response {
    let r = create(ingest, key, bytes.len(), meta);
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").expect("Location").to_string();
    WithKey::new(ingest, key).patch(&loc, 0, bytes)
}

fn video_status(ingest: &Service, key: &str, id: &str) -> Value {
    let r = call(ingest, key, "GET", &format!("/v1/videos/{id}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    json(&r)
}

fn wait_current(stack: &Stack, transcoder: &Service, key: &str, id: &str, version: u64) {
    let mut last = Value::Null;
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(Duration::from_secs(180), "the version to be ready", || {
            last = video_status(stack.ingest(), key, id);
            assert_ne!(last["job"]["state"], "failed", "{last}");
            last["current_version"] == version
        })
    }));
    if ok.is_err() {
        panic!(
            "version {version} of {id} not ready: {last}\n{}",
            transcoder.log_text()
        );
    }
}

fn rollback(ingest: &Service, key: &str, id: &str, body: &str) -> Response {
    call(
        ingest,
        key,
        "POST",
        &format!("/v1/videos/{id}/rollback"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn versions(ingest: &Service, key: &str, id: &str) -> Value {
    let r = call(
        ingest,
        key,
        "GET",
        &format!("/v1/videos/{id}/versions"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    json(&r)
}

/// Variant URIs of a master playlist.
fn variant_uris(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A master playlist and everything a player needs from its first variant (media playlist,
/// init segment, first segment) are served by `edge` under `base` (`/v/{id}/` or
/// `/v/{id}/{version}/`).
fn assert_playable(edge: &Service, base: &str, master: &str) {
    let r = edge.get(&format!("{base}{master}"));
    assert_eq!(r.status, 200, "{base}{master}: {}", r.text());
    let uri = variant_uris(&r.text())
        .into_iter()
        .next()
        .expect("a variant");
    let media_path = format!("{base}{uri}");
    let media = edge.get(&media_path);
    assert_eq!(media.status, 200, "{media_path}");
    let dir = &media_path[..media_path.rfind('/').expect("dir") + 1];
    for file in [
        "init.mp4".to_string(),
        variant_uris(&media.text())[0].clone(),
    ] {
        let r = edge.get(&format!("{dir}{file}"));
        assert_eq!(r.status, 200, "{dir}{file}");
        assert!(r.body.len() > 100, "{dir}{file} is {} bytes", r.body.len());
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// A progress stream read on another thread: each event (and comment, and the retry hint)
/// is sent on as it arrives; the channel closes when the server closes the stream.
struct SseReader {
    rx: std::sync::mpsc::Receiver<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    Event(Sse),
    Comment,
    Retry(u64),
}

impl SseReader {
    fn open(ingest: &Service, key: &str, id: &str) -> Self {
        let mut stream = TcpStream::connect(ingest.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(240)))
            .expect("timeout");
        let req = format!(
            "GET /v1/videos/{id}/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {key}\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_ascii_lowercase());
        }
        assert!(
            head.contains(&"content-type: text/event-stream".to_string()),
            "{head:?}"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut block: Vec<String> = Vec::new();
            loop {
                let mut line = String::new();
                // To the end: the server closes the stream after the last event.
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let line = line.trim_end_matches('\n').to_string();
                if !line.is_empty() {
                    block.push(line);
                    continue;
                }
                for item in parse_block(&std::mem::take(&mut block)) {
                    if tx.send(item).is_err() {
                        return;
                    }
                }
            }
        });
        Self { rx }
    }

    /// Items until `until` matches one (returned last); panics after `wait`.
    fn read_until(&self, wait: Duration, until: impl Fn(&Item) -> bool) -> Vec<Item> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(item) => {
                    let done = until(&item);
                    out.push(item);
                    if done {
                        return out;
                    }
                }
                Err(e) => panic!("stream: {e} after {out:?}"),
            }
        }
    }

    /// Everything left, up to the server closing the stream (panics after `wait`).
    fn rest(&self, wait: Duration) -> Vec<Item> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(item) => out.push(item),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return out,
                Err(e) => panic!("stream not closed: {e} after {out:?}"),
            }
        }
    }
}

/// The items of one block of lines (up to a blank line).
fn parse_block(lines: &[String]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut e = Sse {
        id: None,
        event: String::new(),
        data: Value::Null,
    };
    for line in lines {
        if let Some(c) = line.strip_prefix(':') {
            let _ = c;
            out.push(Item::Comment);
        } else if let Some(v) = line.strip_prefix("retry: ") {
            out.push(Item::Retry(v.parse().expect("retry ms")));
        } else if let Some(v) = line.strip_prefix("id: ") {
            e.id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            e.event = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            e.data = serde_json::from_str(v).expect("data is JSON");
        }
    }
    if !e.event.is_empty() {
        out.push(Item::Event(e));
    }
    out
}

fn events(items: &[Item]) -> Vec<Sse> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The whole story on the S3 store: v1, a 403/404 for bad `video_id`s, v2 uploaded with
/// `video_id` while its progress stream is watched to `ready`, the pointer on v2 with v1 still
/// playable by its versioned URL, 409/422/404 for rollbacks that cannot be, and a rollback to
/// v1 that two edges holding v2's pointer in their caches show within seconds.
#[test]
fn versions_progress_and_rollback_seen_at_the_edge() {
    let stack = Stack::builder()
        .redis()
        .store(StoreBackend::S3)
        .ingest(options().require_keys())
        // Playlists cached for 10 minutes: only the fleet purge can change the edge's answer.
        .edge(EdgeOptions::new().toml("playlist_ttl_ms = 600000"))
        .start();
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let viewer = stack.create_key("alice", "viewer");
    let mut transcoder = stack.spawn(TranscoderOptions::new());
    // A second edge of the fleet, caching the same way: the rollback must reach both.
    let edge2 = stack.spawn(
        EdgeOptions::new()
            .name("edge2")
            .toml("playlist_ttl_ms = 600000"),
    );
    let v1_bytes = clip(&stack, 1, "v1.mp4");
    let v2_bytes = clip(&stack, 2, "v2.mp4");
    let ingest = stack.ingest();

    let r = upload(
        ingest,
        &alice,
        &v1_bytes,
        Some(&format!("title {}", b64("cats"))),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let id = r.header("ringcast-video-id").expect("video id").to_string();
    wait_current(&stack, &transcoder, &alice, &id, 1);

    // Another owner's video, an unknown one, a malformed id: refused at creation.
    let r = create(ingest, &bob, v2_bytes.len(), Some(&version_of(&id)));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = create(ingest, &alice, 10, Some(&version_of("no-such-video")));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = create(ingest, &alice, 10, Some(&version_of("../x")));
    assert_eq!(r.status, 400, "{}", r.text());

    // Version 2, watched through its progress stream from before the first byte.
    let r = create(ingest, &alice, v2_bytes.len(), Some(&version_of(&id)));
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").expect("Location").to_string();
    assert_ne!(upload_id(&loc), id, "the upload keeps its own id");
    let sse = SseReader::open(ingest, &alice, &id);
    let half = v2_bytes.len() / 2;
    let client = WithKey::new(ingest, &alice);
    assert_eq!(client.patch(&loc, 0, &v2_bytes[..half]).status, 204);
    // The stream reports the half-way offset before the rest is sent.
    let mut items = sse.read_until(
        Duration::from_secs(10),
        |i| matches!(i, Item::Event(e) if e.event == "upload" && e.data["offset"] == half),
    );
    // The transcoder is frozen while the upload ends, so the stream sees the job queued
    // before it runs: without that, a short clip can transcode between two polls and the
    // stream would (rightly) show only its end.
    transcoder.process.signal(libc::SIGSTOP);
    let r = client.patch(&loc, half as u64, &v2_bytes[half..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("ringcast-video-id"), Some(id.as_str()));
    items.extend(sse.read_until(
        Duration::from_secs(10),
        |i| matches!(i, Item::Event(e) if e.event == "transcode" && e.data["state"] == "queued"),
    ));
    transcoder.process.signal(libc::SIGCONT);
    items.extend(sse.rest(Duration::from_secs(200)));
    assert!(
        matches!(items.first(), Some(Item::Retry(3000))),
        "{items:?}"
    );
    let events = events(&items);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.last(), Some(&"ready"), "{names:?}");
    assert_eq!(
        events.last().map(|e| e.data["version"].clone()),
        Some(2.into())
    );
    assert_eq!(
        events.last().map(|e| e.data["playback_url"].clone()),
        Some(format!("/v/{id}/2/master.m3u8").into())
    );
    // ids count up from 1 with no gap.
    let ids: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());
    // Upload offsets, then transcode progress, each never going back, reaching 100.
    let offsets: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "upload")
        .map(|e| e.data["offset"].as_u64().expect("offset"))
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e.event == "transcode")
        .map(|e| e.data["progress"].as_f64().expect("progress"))
        .collect();
    assert!(progress.len() >= 2, "{names:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0), "{progress:?}");
    let first_transcode = names
        .iter()
        .position(|n| *n == "transcode")
        .expect("transcode");
    let last_upload = names.iter().rposition(|n| *n == "upload").expect("upload");
    assert!(last_upload < first_transcode, "{names:?}");

    // The pointer names version 2; version 1 plays on by its versioned URL.
    let edge = stack.edge();
    let master = edge.get(&format!("/v/{id}/master.m3u8"));
    assert_eq!(master.status, 200);
    let uris = variant_uris(&master.text());
    assert!(uris.iter().all(|u| u.starts_with("2/")), "{uris:?}");
    // Cached now on both edges (a second answer is a hit): without the purge it would stay for
    // 10 minutes.
    for e in [edge, &edge2] {
        let first = e.get(&format!("/v/{id}/master.m3u8"));
        assert!(variant_uris(&first.text())
            .iter()
            .all(|u| u.starts_with("2/")));
        let again = e.get(&format!("/v/{id}/master.m3u8"));
        assert_eq!(again.header("x-cache"), Some("HIT"), "{:?}", again.headers);
    }
    assert_playable(edge, &format!("/v/{id}/"), "master.m3u8");
    assert_playable(edge, &format!("/v/{id}/1/"), "master.m3u8");

    let list = versions(ingest, &viewer, &id);
    assert_eq!(list["current_version"], 2, "{list}");
    let vs = list["versions"].as_array().expect("versions");
    let numbers: Vec<u64> = vs
        .iter()
        .map(|v| v["version"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, [2, 1], "newest first: {list}");
    assert_eq!(
        (vs[0]["current"].clone(), vs[1]["current"].clone()),
        (true.into(), false.into())
    );
    assert!(vs.iter().all(|v| v["state"] == "done"), "{list}");
    assert_eq!(vs[1]["playback_url"], format!("/v/{id}/1/master.m3u8"));
    assert_eq!(vs[0]["source_sha256"], sha256(&v2_bytes));
    assert_eq!(vs[0]["upload_id"], upload_id(&loc));
    assert_eq!(vs[1]["upload_id"], id);

    // Rollbacks that cannot be: another owner, a viewer, a bad body, an unknown version.
    assert_eq!(rollback(ingest, &bob, &id, r#"{"version":1}"#).status, 403);
    assert_eq!(
        rollback(ingest, &viewer, &id, r#"{"version":1}"#).status,
        403
    );
    let r = rollback(ingest, &alice, &id, r#"{"version":"one"}"#);
    assert_eq!(r.status, 422, "{}", r.text());
    let r = rollback(ingest, &alice, &id, r#"{"version":9}"#);
    assert_eq!(r.status, 404, "{}", r.text());

    // Version 3 waits in the queue (no transcoder any more): not published, and while it is
    // queued no rollback to anything else (it would become current when it finishes).
    drop(transcoder);
    let v3_bytes = clip(&stack, 3, "v3.mp4");
    let r = upload(ingest, &alice, &v3_bytes, Some(&version_of(&id)));
    assert_eq!(r.status, 204, "{}", r.text());
    let job3 = r.header("ringcast-job-id").expect("job id").to_string();
    let r = rollback(ingest, &alice, &id, r#"{"version":3}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("version 3 is not published"),
        "{}",
        r.text()
    );
    let r = rollback(ingest, &alice, &id, r#"{"version":1}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("version 3 is being transcoded"),
        "{}",
        r.text()
    );
    // Its transcode fails (as a transcoder would record it): still not a rollback target.
    let q = queue(stack.redis_url());
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: job3,
        video_id: id.clone(),
        version: 3,
        source_key: keys::source(&id, 3),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    };
    block_on(q.set_state(&job, JobState::Failed, 0.0, Some("broken"))).expect("fail job");
    let r = rollback(ingest, &alice, &id, r#"{"version":3}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("is failed"), "{}", r.text());

    // The rollback to 1: pointer rewritten, current_version 1, the edge changes at once.
    let r = rollback(ingest, &alice, &id, r#"{"version":1}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = json(&r);
    assert_eq!(
        (
            body["previous_version"].clone(),
            body["current_version"].clone()
        ),
        (2.into(), 1.into())
    );
    assert_eq!(body["purged_edges"], 2, "{body}");
    let mut seen = String::new();
    for e in [edge, &edge2] {
        wait_until(
            Duration::from_secs(5),
            "the edges to show version 1",
            || {
                seen = e.get(&format!("/v/{id}/master.m3u8")).text();
                let uris = variant_uris(&seen);
                !uris.is_empty() && uris.iter().all(|u| u.starts_with("1/"))
            },
        );
    }
    assert_playable(&edge2, &format!("/v/{id}/"), "master.m3u8");
    assert_playable(edge, &format!("/v/{id}/"), "master.m3u8");
    assert_playable(edge, &format!("/v/{id}/2/"), "master.m3u8");
    assert_eq!(video_status(ingest, &alice, &id)["current_version"], 1);
    let list = versions(ingest, &alice, &id);
    assert_eq!(list["current_version"], 1);
    let states: Vec<String> = list["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| format!("{}:{}:{}", v["version"], v["state"], v["current"]))
        .collect();
    assert_eq!(
        states,
        ["3:\"failed\":false", "2:\"done\":false", "1:\"done\":true"]
    );
    // The pointer object is the versioned master with its URIs under `1/`.
    let v1_master = edge.get(&format!("/v/{id}/1/master.m3u8")).text();
    let expected: Vec<String> = variant_uris(&v1_master)
        .iter()
        .map(|u| format!("1/{u}"))
        .collect();
    assert_eq!(variant_uris(&seen), expected);
}

/// The same owner's same bytes come back as the existing video (no new version, no job),
/// also when the upload was resumed across an ingest restart (the hash of the stored prefix is
/// rebuilt); another owner's copy is a new video, and `video_id` makes it a new version.
#[test]
fn duplicate_uploads() {
    let mut stack = start(options().require_keys());
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let bytes = small_mp4(stack.dir());
    let sha = sha256(&bytes);
    let redis_url = stack.redis_url().to_string();
    let jobs = || -> usize {
        let client = redis::Client::open(redis_url.as_str()).expect("client");
        let mut c = client.get_connection().expect("redis");
        redis::cmd("XLEN")
            .arg(keys::job_stream("normal"))
            .query(&mut c)
            .expect("xlen")
    };
    let ingest = stack.ingest();

    let r = upload(ingest, &alice, &bytes, None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("ringcast-duplicate"), None);
    let first = r.header("ringcast-video-id").expect("id").to_string();
    assert_eq!(jobs(), 1);

    // Again, same owner: 200, the existing id, no job, the spool dropped.
    let created = create(ingest, &alice, bytes.len(), None);
    let loc = created.header("location").expect("Location").to_string();
    let r = WithKey::new(ingest, &alice).patch(&loc, 0, &bytes);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ringcast-duplicate"), Some("true"));
    assert_eq!(r.header("ringcast-video-id"), Some(first.as_str()));
    assert_eq!(r.header("ringcast-job-id"), None);
    assert_eq!(jobs(), 1, "no second job");
    let dup_id = upload_id(&loc);
    let spool = stack
        .ingest()
        .state_dir
        .join("uploads")
        .join(format!("{dup_id}.bin"));
    assert!(!spool.exists(), "duplicate's spool dropped");
    // HEAD and a retried final PATCH tell the same.
    let h = call(ingest, &alice, "HEAD", &loc, &[TUS], b"");
    assert_eq!(h.header("ringcast-video-id"), Some(first.as_str()));
    assert_eq!(h.header("ringcast-duplicate"), Some("true"));
    // The video keeps one version and no record of the duplicate upload.
    let list = versions(ingest, &alice, &first);
    assert_eq!(list["versions"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["versions"][0]["source_sha256"], sha);

    // Resumed across a restart: half, restart (the in-memory hasher is gone), the rest.
    let created = create(ingest, &alice, bytes.len(), None);
    let loc = created.header("location").expect("Location").to_string();
    let half = bytes.len() / 2;
    assert_eq!(
        WithKey::new(ingest, &alice)
            .patch(&loc, 0, &bytes[..half])
            .status,
        204
    );
    let ingest = stack.restart("ingest");
    let r = WithKey::new(ingest, &alice).patch(&loc, half as u64, &bytes[half..]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ringcast-video-id"), Some(first.as_str()));
    assert!(
        ingest
            .log_text()
            .contains("rehashed the stored prefix of a resumed upload"),
        "the prefix was rehashed once"
    );
    assert_eq!(jobs(), 1);
    let ingest = stack.ingest();

    // Another owner: a video of their own.
    let r = upload(ingest, &bob, &bytes, None);
    assert_eq!(r.status, 204, "{}", r.text());
    let bobs = r.header("ringcast-video-id").expect("id").to_string();
    assert_ne!(bobs, first);
    assert_eq!(jobs(), 2);

    // Asking for a new version: stored and queued although the bytes are known.
    let r = upload(ingest, &alice, &bytes, Some(&version_of(&first)));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("ringcast-video-id"), Some(first.as_str()));
    assert_eq!(r.header("ringcast-duplicate"), None);
    assert_eq!(jobs(), 3);
    let status = video_status(ingest, &alice, &first);
    assert_eq!(status["latest_version"], 2, "{status}");
    assert!(stack.object_path(&keys::source(&first, 2)).is_file());

    // The dedup entry and the video's source hash are where DESIGN says.
    let client = redis::Client::open(stack.redis_url()).expect("client");
    let mut c = client.get_connection().expect("redis");
    let mapped: String = redis::cmd("GET")
        .arg(keys::sha256("alice", &sha))
        .query(&mut c)
        .expect("get");
    assert_eq!(mapped, first);
    let recorded: String = redis::cmd("HGET")
        .arg(keys::video(&first))
        .arg("source_sha256")
        .query(&mut c)
        .expect("hget");
    assert_eq!(recorded, sha);

    // A deliberate re-upload (`duplicates` = `allow`): a new video, stored and queued.
    let allow = format!("duplicates {}", b64("allow"));
    let r = upload(ingest, &alice, &bytes, Some(&allow));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("ringcast-duplicate"), None);
    let again = r.header("ringcast-video-id").expect("id").to_string();
    assert_ne!(again, first);
    assert_eq!(jobs(), 4);
    // Any other value is refused at creation.
    let r = create(
        ingest,
        &alice,
        bytes.len(),
        Some(&format!("duplicates {}", b64("yes"))),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

/// The per-worker cap on progress streams (503 over it) and a slot freed within seconds of
/// its client going away, while the video never becomes ready (an upload in progress).
#[test]
fn progress_streams_are_capped_and_free_their_slot() {
    let stack = start(
        options()
            .require_keys()
            .workers(1)
            .toml("[events]\nmax_streams_per_worker = 1"),
    );
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let ingest = stack.ingest();
    let r = create(ingest, &alice, 1000, None);
    let id = upload_id(r.header("location").expect("Location"));
    let get = |key: &str, target: &str| call(ingest, key, "GET", target, &[], b"");
    assert_eq!(get(&bob, &format!("/v1/videos/{id}/events")).status, 403);
    assert_eq!(get(&alice, "/v1/videos/nope/events").status, 404);
    let r = call(
        ingest,
        &alice,
        "POST",
        &format!("/v1/videos/{id}/events"),
        &[],
        b"",
    );
    assert_eq!(r.status, 405);

    let open = || {
        let mut s = TcpStream::connect(ingest.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let req = format!(
            "GET /v1/videos/{id}/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {alice}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut first = [0u8; 12];
        s.read_exact(&mut first).expect("status");
        (s, String::from_utf8_lossy(&first).to_string())
    };
    let (mut held, status) = open();
    assert_eq!(status, "HTTP/1.1 200");
    // It reports the upload at offset 0 and stays open.
    let mut buf = vec![0u8; 4096];
    let n = held.read(&mut buf).expect("read");
    let mut text = String::from_utf8_lossy(&buf[..n]).to_string();
    while !text.contains("event: upload") {
        let n = held.read(&mut buf).expect("read");
        assert!(n > 0, "stream closed early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("\"offset\":0"), "{text}");
    let r = get(&alice, &format!("/v1/videos/{id}/events"));
    assert_eq!(r.status, 503, "over the cap: {}", r.text());
    assert!(r.header("retry-after").is_some());

    drop(held);
    let started = Instant::now();
    wait_until(Duration::from_secs(10), "the slot to be freed", || {
        let (_s, status) = open();
        status == "HTTP/1.1 200"
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slot freed after {:?}",
        started.elapsed()
    );
}

/// A version's state is recorded beside its record when its job ends, so the list still shows
/// it after the job hash expired (the transcoder gives job hashes a TTL).
#[test]
fn a_versions_state_outlives_its_job_hash() {
    use ringcast_infra::platform::versions::Versions;
    use ringcast_infra::queue::RetentionConfig;
    use ringcast_proto::versions::VersionRecord;

    let stack = start(options());
    let q = queue(stack.redis_url()).with_retention(RetentionConfig {
        job_ttl_secs: 1,
        ..RetentionConfig::default()
    });
    let job = |version: u32| TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: format!("job-{version}"),
        video_id: "kept".into(),
        version,
        source_key: keys::source("kept", version),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container: None,
    };
    block_on(async {
        let versions = Versions::new(&q);
        for (version, state) in [(1, JobState::Done), (2, JobState::Failed)] {
            let record = VersionRecord {
                version,
                upload_id: format!("up{version}"),
                source_sha256: format!("{version:064}"),
                container: None,
                job_id: format!("job-{version}"),
                created_ms: now_ms(),
            };
            versions
                .record("kept", "anonymous", &record)
                .await
                .expect("record");
            q.enqueue(&job(version)).await.expect("enqueue");
            q.set_state(&job(version), state, 0.0, None)
                .await
                .expect("end");
        }
    });
    let ingest = stack.ingest();
    let list = || -> Value {
        let r = ingest.get("/v1/videos/kept/versions");
        assert_eq!(r.status, 200, "{}", r.text());
        json(&r)
    };
    let states = |v: &Value| -> Vec<String> {
        v["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|e| format!("{}:{}", e["version"], e["state"]))
            .collect()
    };
    let before = list();
    assert_eq!(states(&before), ["2:\"failed\"", "1:\"done\""], "{before}");
    wait_until(Duration::from_secs(10), "the job hashes to expire", || {
        block_on(q.job_status("job-1")).expect("status").is_none()
            && block_on(q.job_status("job-2")).expect("status").is_none()
    });
    let after = list();
    assert_eq!(states(&after), states(&before), "{after}");
    assert_eq!(after["current_version"], 1);
}

/// Measurement, not a check (`--ignored --nocapture`): what open progress streams cost — ingest
/// CPU and Redis commands per second with 200 streams on one worker polling every 250 ms.
#[test]
#[ignore]
fn progress_stream_cost() {
    let streams = 200;
    let stack = start(options().workers(1));
    let ingest = stack.ingest();
    let r = ingest.create(1000, None);
    let id = upload_id(&r);
    let cpu = || -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", ingest.process.pid())).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<u64> = after.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
        (f[11] + f[12]) as f64 / 100.0
    };
    let client = redis::Client::open(stack.redis_url()).expect("client");
    let mut c = client.get_connection().expect("redis");
    let mut commands = || -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(&mut c).expect("info");
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_commands_processed")
    };
    let mut open = Vec::new();
    for _ in 0..streams {
        let mut s = TcpStream::connect(ingest.addr).expect("connect");
        let req = format!("GET /v1/videos/{id}/events HTTP/1.1\r\nHost: t\r\n\r\n");
        s.write_all(req.as_bytes()).expect("send");
        let mut first = [0u8; 12];
        s.read_exact(&mut first).expect("status");
        assert_eq!(&first, b"HTTP/1.1 200");
        open.push(s);
    }
    let (cpu0, cmd0, t0) = (cpu(), commands(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, cmd1) = (cpu(), commands());
    println!(
        "{streams} streams, 250 ms poll, debug build: ingest CPU {:.1} % of a core, Redis {:.0} commands/s ({:.1} per stream per second)",
        (cpu1 - cpu0) / secs * 100.0,
        (cmd1 - cmd0) as f64 / secs,
        (cmd1 - cmd0) as f64 / secs / streams as f64
    );
    drop(open);
}
