//! The tus extensions beyond creation, spoken raw to a running ingest: creation-with-upload,
//! creation-defer-length, checksum, termination, expiration and concatenation, plus the lock
//! that follows the client (a PATCH whose client froze is taken over by a new one). Each test
//! fails against a server without its extension (they were written against one).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ringcast_proto::keys;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, IngestOptions, Service, Stack};
use sha1::Digest as _;
use support::*;

fn request(
    ingest: &Service,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    ingest
        .conn()
        .request(method, target, headers, body)
        .expect("request")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn header_u64(r: &Response, name: &str) -> u64 {
    r.header(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in {} {:?}", r.status, r.text()))
}

/// The stored source of `video` version 1 is exactly `bytes`.
fn assert_stored(stack: &Stack, video: &str, bytes: &[u8]) {
    let stored = std::fs::read(stack.object_path(&keys::source(video, 1))).expect("stored source");
    assert_eq!(sha256(&stored), sha256(bytes), "stored source differs");
}

fn spool(ingest: &Service, id: &str, ext: &str) -> std::path::PathBuf {
    ingest.state_dir.join(format!("uploads/{id}.{ext}"))
}

/// A stack started with `opts`, and a small valid MP4 to upload.
fn stack_with_clip(opts: IngestOptions) -> (Stack, Vec<u8>) {
    let stack = start(opts);
    let video = small_mp4(stack.dir());
    (stack, video)
}

/// POST `/files/` with `Tus-Resumable` and `headers` (typed as a PATCH body when `body` is not
/// empty: creation-with-upload).
fn post(ingest: &Service, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut all = vec![TUS];
    if !body.is_empty() {
        all.push(OCTETS);
    }
    all.extend_from_slice(headers);
    request(ingest, "POST", "/files/", &all, body)
}

/// PATCH `body` at `offset` with the tus headers and `headers` (Upload-Checksum,
/// Upload-Length, …).
fn patch_with(
    ingest: &Service,
    loc: &str,
    offset: u64,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let off = offset.to_string();
    let mut all = vec![TUS, OCTETS, ("Upload-Offset", off.as_str())];
    all.extend_from_slice(headers);
    request(ingest, "PATCH", loc, &all, body)
}

/// HEAD of an upload, with `Authorization` when given.
fn head(ingest: &Service, loc: &str, authorization: Option<&str>) -> Response {
    let mut all = vec![TUS];
    all.extend(authorization.map(|a| ("Authorization", a)));
    request(ingest, "HEAD", loc, &all, b"")
}

/// The `Location` of a creation response.
fn location(r: &Response) -> String {
    r.header("location")
        .unwrap_or_else(|| panic!("no Location in {} {:?}", r.status, r.text()))
        .to_string()
}

#[test]
fn options_advertises_exactly_the_extensions_that_work() {
    let stack = start(options());
    let r = request(stack.ingest(), "OPTIONS", "/files/", &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("tus-extension"),
        Some(
            "creation,creation-with-upload,creation-defer-length,termination,checksum,\
             expiration,concatenation"
        )
    );
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256,md5"));
    assert_eq!(r.header("tus-max-size"), Some("67108864"));
    // The browser may send and read the extensions' headers cross-origin.
    let allow = r.header("access-control-allow-headers").unwrap_or_default();
    assert!(
        allow.contains("Upload-Checksum") && allow.contains("Upload-Concat"),
        "{allow}"
    );
}

#[test]
fn creation_with_upload_stores_the_first_bytes_or_the_whole_file() {
    let (stack, video) = stack_with_clip(options());
    let ingest = stack.ingest();
    let len = video.len().to_string();
    // Whole file in the POST: created, stored and queued in one request.
    let r = post(ingest, &[("Upload-Length", &len)], &video);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(header_u64(&r, "upload-offset"), video.len() as u64);
    assert!(
        r.header("ringcast-job-id").is_some(),
        "finished in the POST"
    );
    assert_stored(&stack, &upload_id(&location(&r)), &video);

    // Half in the POST, the rest with a PATCH (duplicates allowed: same bytes again).
    let half = video.len() / 2;
    let r = post(
        ingest,
        &[
            ("Upload-Length", &len),
            ("Upload-Metadata", "duplicates YWxsb3c="),
        ],
        &video[..half],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(header_u64(&r, "upload-offset"), half as u64);
    assert!(r.header("upload-expires").is_some());
    let loc = location(&r);
    let r = ingest.patch(&loc, half as u64, &video[half..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_stored(&stack, &upload_id(&loc), &video);
}

#[test]
fn deferred_length_is_fixed_by_a_later_patch() {
    let (stack, video) = stack_with_clip(options());
    let ingest = stack.ingest();
    let r = post(ingest, &[("Upload-Defer-Length", "1")], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = location(&r);
    let h = head(ingest, &loc, None);
    assert_eq!(h.header("upload-defer-length"), Some("1"));
    assert_eq!(h.header("upload-length"), None);
    // A chunk without the length: stored, nothing finished.
    let first = 1000;
    let r = ingest.patch(&loc, 0, &video[..first]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(header_u64(&r, "upload-offset"), first as u64);
    // Less than what is stored cannot be the length.
    let r = patch_with(ingest, &loc, 1000, &[("Upload-Length", "10")], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    // The length arrives with the last chunk, which finishes the upload.
    let len = video.len().to_string();
    let r = patch_with(
        ingest,
        &loc,
        1000,
        &[("Upload-Length", &len)],
        &video[first..],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    assert_stored(&stack, &upload_id(&loc), &video);
    assert_eq!(
        head(ingest, &loc, None).header("upload-length"),
        Some(len.as_str())
    );
}

#[test]
fn a_chunk_with_a_wrong_checksum_is_discarded_and_the_right_ones_kept() {
    let (stack, video) = stack_with_clip(options());
    checksummed_chunks(&stack, &video);
}

#[test]
fn large_checksummed_chunks_are_verified_with_the_digests_hashed_off_the_worker() {
    // Thirds of over 1 MiB: written with O_DIRECT (on a disk), their full buffers hashed on
    // another thread (crate::tus::digests) — the verdict must still cover exactly their bytes.
    let stack = start(options());
    let video = padded_mp4(stack.dir(), 5 * 1024 * 1024 + 777, 3);
    checksummed_chunks(&stack, &video);
}

/// `video` in three checksummed PATCHes (sha1, then md5 wrong and right, then sha256): the
/// wrong one is discarded (460, offset, spool and sha256 unchanged), the upload finishes with
/// the original bytes and its recorded sha256 is theirs.
fn checksummed_chunks(stack: &Stack, video: &[u8]) {
    let ingest = stack.ingest();
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);
    let third = video.len() / 3;
    let (a, b, c) = (
        &video[..third],
        &video[third..2 * third],
        &video[2 * third..],
    );
    let checksum = |alg: &str, digest: &[u8]| format!("{alg} {}", b64(digest));

    let sha1 = checksum("sha1", &sha1::Sha1::digest(a));
    let r = patch_with(ingest, &loc, 0, &[("Upload-Checksum", &sha1)], a);
    assert_eq!(r.status, 204, "{}", r.text());

    // Chunk b with a digest of other bytes: 460, nothing of it kept anywhere.
    let wrong = checksum("md5", &md5::Md5::digest(c));
    let r = patch_with(
        ingest,
        &loc,
        third as u64,
        &[("Upload-Checksum", &wrong)],
        b,
    );
    assert_eq!(r.status, 460, "{}", r.text());
    assert!(
        r.header("upload-expires").is_some(),
        "Upload-Expires on the 460"
    );
    assert_eq!(ingest.offset(&loc), third as u64, "offset unchanged");
    assert_eq!(
        std::fs::metadata(spool(ingest, &id, "bin"))
            .expect("spool")
            .len(),
        third as u64,
        "the discarded chunk is not in the spool"
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"checksum\"}"),
        1
    );

    let right = checksum("md5", &md5::Md5::digest(b));
    let r = patch_with(
        ingest,
        &loc,
        third as u64,
        &[("Upload-Checksum", &right)],
        b,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let last = checksum("sha256", &sha2::Sha256::digest(c));
    let r = patch_with(
        ingest,
        &loc,
        2 * third as u64,
        &[("Upload-Checksum", &last)],
        c,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    // The source's sha256 (dedup) followed the kept bytes only: the stored file and its
    // recorded digest are the original's.
    assert_stored(stack, &id, video);
    let recorded = Command::new("redis-cli")
        .args([
            "-u",
            stack.redis_url(),
            "HGET",
            &keys::video(&id),
            "source_sha256",
        ])
        .output()
        .expect("redis-cli");
    assert_eq!(
        String::from_utf8_lossy(&recorded.stdout).trim(),
        sha256(video),
        "the recorded source sha256"
    );
}

fn redis_exists(stack: &Stack, key: &str) -> bool {
    let out = Command::new("redis-cli")
        .args(["-u", stack.redis_url(), "EXISTS", key])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim() == "1"
}

#[test]
fn termination_deletes_spool_state_and_progress() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let client = WithKey::new(ingest, &alice);
    let loc = client.create(100_000, None);
    let id = upload_id(&loc);
    assert_eq!(client.patch(&loc, 0, &[1u8; 5000]).status, 204);
    assert!(
        redis_exists(&stack, &keys::video_upload(&id)),
        "progress recorded"
    );
    let bob_auth = format!("Bearer {bob}");
    let r = request(
        ingest,
        "DELETE",
        &loc,
        &[TUS, ("Authorization", &bob_auth)],
        b"",
    );
    assert_eq!(r.status, 403, "another owner may not terminate");
    let auth = format!("Bearer {alice}");
    let r = request(
        ingest,
        "DELETE",
        &loc,
        &[TUS, ("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!spool(ingest, &id, "bin").exists() && !spool(ingest, &id, "json").exists());
    assert!(
        !redis_exists(&stack, &keys::video_upload(&id)),
        "progress entry gone"
    );
    assert_eq!(
        head(ingest, &loc, Some(&auth)).status,
        404,
        "HEAD after termination"
    );
    let r = request(
        ingest,
        "DELETE",
        &loc,
        &[TUS, ("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404, "DELETE after termination");
    let r = client.patch(&loc, 5000, b"x");
    assert_eq!(r.status, 404);
    assert_eq!(
        ingest.counter("ringcast_ingest_uploads_terminated_total"),
        1
    );
}

#[test]
fn an_expired_upload_is_gone_and_swept() {
    // Expires 2 s after its last change; the sweep runs every second.
    let stack = start(options().toml("[uploads]\nexpire_after_secs = 2\nexpiry_sweep_secs = 1"));
    let ingest = stack.ingest();
    let r = post(ingest, &[("Upload-Length", "1000")], b"");
    assert_eq!(r.status, 201);
    let loc = location(&r);
    let id = upload_id(&loc);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expires = r
        .header("upload-expires")
        .expect("Upload-Expires on creation");
    let at = ringcast_proto::http::date::parse(expires).expect("an HTTP date");
    assert!(
        (created + 1..=created + 3).contains(&at),
        "{expires} vs now {created}"
    );
    let r = ingest.patch(&loc, 0, &[0u8; 10]);
    assert!(r.header("upload-expires").is_some(), "on PATCH");
    assert!(head(ingest, &loc, None).header("upload-expires").is_some());
    wait_until(Duration::from_secs(15), "the upload to be swept", || {
        let r = head(ingest, &loc, None);
        assert!(matches!(r.status, 200 | 404 | 410), "{}", r.status);
        r.status == 404
    });
    assert!(!spool(ingest, &id, "bin").exists() && !spool(ingest, &id, "json").exists());
    // Counted once the sweep's delete returned (the files are gone a moment earlier).
    wait_until(Duration::from_secs(5), "the expiry to be counted", || {
        ingest.counter("ringcast_ingest_uploads_expired_total") == 1
    });
    assert_eq!(ingest.patch(&loc, 10, b"x").status, 404);
}

#[test]
fn finished_records_go_after_the_short_retention_and_the_sweep_reads_only_due_records() {
    // Finished records are kept 2 s (not the day unfinished uploads get); the sweep runs every
    // second and reads its time index, not every record.
    let stack =
        start(options().toml("[uploads]\nfinished_retention_secs = 2\nexpiry_sweep_secs = 1"));
    let ingest = stack.ingest();
    let waiting: Vec<String> = (0..30).map(|_| ingest.create(1000, None)).collect();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);
    let r = ingest.patch(&loc, 0, &video);
    assert_eq!(r.status, 204, "{}", r.text());
    // Within the retention the final HEAD (after a lost response) still answers.
    let r = head(ingest, &loc, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header_u64(&r, "upload-offset"), video.len() as u64);
    assert_eq!(r.header("ringcast-video-id"), Some(id.as_str()));
    wait_until(
        Duration::from_secs(15),
        "the finished record to be swept",
        || head(ingest, &loc, None).status == 404,
    );
    assert!(!spool(ingest, &id, "json").exists());
    wait_until(Duration::from_secs(5), "the sweep to be counted", || {
        ingest.counter("ringcast_ingest_upload_records_swept_total") == 1
    });
    // The one due record was all the sweep read: the 30 open uploads (due in a day) were not.
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_sweep_examined_total"),
        1
    );
    assert_eq!(ingest.counter("ringcast_ingest_uploads_expired_total"), 0);
    for loc in &waiting {
        assert!(spool(ingest, &upload_id(loc), "json").exists());
        assert_eq!(head(ingest, loc, None).status, 200);
    }
}

#[test]
fn an_expired_upload_is_refused_before_the_sweep() {
    let stack = start(options().toml("[uploads]\nexpire_after_secs = 1\nexpiry_sweep_secs = 3600"));
    let ingest = stack.ingest();
    let loc = ingest.create(1000, None);
    wait_until(Duration::from_secs(10), "the upload to expire", || {
        head(ingest, &loc, None).status == 410
    });
    assert_eq!(ingest.patch(&loc, 0, b"x").status, 410);
    // Not swept yet: the files are still there, but the upload is over.
    assert!(spool(ingest, &upload_id(&loc), "json").exists());
}

#[test]
fn partial_uploads_concatenate_into_one_finished_upload() {
    let stack = start(options().require_keys());
    let ingest = stack.ingest();
    let alice = stack.create_key("alice", "uploader");
    let bob = stack.create_key("bob", "uploader");
    let auth = format!("Bearer {alice}");
    let client = WithKey::new(ingest, &alice);
    let video = small_mp4(stack.dir());
    let n = video.len();
    let pieces = [
        &video[..n / 3],
        &video[n / 3..2 * n / 3],
        &video[2 * n / 3..],
    ];
    let mut locs = Vec::new();
    for p in &pieces {
        let len = p.len().to_string();
        let r = post(
            ingest,
            &[
                ("Upload-Concat", "partial"),
                ("Upload-Length", &len),
                ("Authorization", &auth),
            ],
            b"",
        );
        assert_eq!(r.status, 201, "{}", r.text());
        locs.push(location(&r));
    }
    // Filled out of order, like parallel uploads finish; a complete partial is not finished
    // on its own (no job, no video).
    for i in [2, 0] {
        let r = client.patch(&locs[i], 0, pieces[i]);
        assert_eq!(r.status, 204, "{}", r.text());
        assert!(r.header("ringcast-job-id").is_none());
    }
    let h = head(ingest, &locs[0], Some(&auth));
    assert_eq!(h.header("upload-concat"), Some("partial"));
    // A final naming an incomplete partial is refused; so is one by another owner.
    let finals = format!(
        "final;{} http://front.example{} https://cdn.example/up{}",
        locs[0], locs[1], locs[2]
    );
    let create_final = |authorization: &str| {
        post(
            ingest,
            &[
                ("Upload-Concat", finals.as_str()),
                ("Authorization", authorization),
            ],
            b"",
        )
    };
    assert_eq!(create_final(&auth).status, 400, "partial 1 is incomplete");
    assert_eq!(client.patch(&locs[1], 0, pieces[1]).status, 204);
    assert_eq!(create_final(&format!("Bearer {bob}")).status, 403);
    let r = create_final(&auth);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(header_u64(&r, "upload-offset"), n as u64);
    assert!(
        r.header("ringcast-job-id").is_some(),
        "finished: probe, sha256, job"
    );
    let final_loc = location(&r);
    assert_stored(&stack, &upload_id(&final_loc), &video);
    assert!(head(ingest, &final_loc, Some(&auth))
        .header("upload-concat")
        .is_some_and(|v| v.starts_with("final;")));
    // The partials served their purpose.
    for loc in &locs {
        assert_eq!(head(ingest, loc, Some(&auth)).status, 404, "{loc}");
    }
    // A final upload takes no bytes.
    let r = client.patch(&final_loc, n as u64, b"x");
    assert_eq!(r.status, 403);
}

/// A PATCH sender in a child process: the head, then the body at about 10 kB/s.
fn slow_sender(
    addr: std::net::SocketAddr,
    loc: &str,
    body_file: &std::path::Path,
    total: usize,
) -> Child {
    let script = r#"
import socket, sys, time
host, port, loc, path, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
data = open(path, 'rb').read()
s = socket.create_connection((host, port))
s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
           f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
           f"Content-Length: {total}\r\n\r\n").encode())
print("started", flush=True)
for i in range(0, len(data), 200):
    s.sendall(data[i:i+200])
    time.sleep(0.02)
print(s.recv(4096).decode(errors='replace').split('\r\n')[0], flush=True)
"#;
    Command::new("python3")
        .args([
            "-c",
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            loc,
            &body_file.display().to_string(),
            &total.to_string(),
        ])
        .stdout(Stdio::piped())
        // It is cut off by design (its connection is refused after the takeover).
        .stderr(Stdio::null())
        .spawn()
        .expect("python3")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn a_frozen_patch_is_taken_over_by_the_resuming_client() {
    let stack = start(options());
    let ingest = stack.ingest();
    // A few seconds of sending at the sender's pace.
    let clip = ringcast_testkit::clips::Clip::new(320, 240)
        .fps(25)
        .seconds(4)
        .write(stack.dir(), "long.mp4");
    let video = std::fs::read(clip).expect("clip");
    let loc = ingest.create(video.len() as u64, None);
    // The first client sends other bytes than the real file (all 0xAA), so any of its bytes
    // that landed in the upload would show in the stored source's sha256.
    let body = stack.dir().join("body.bin");
    std::fs::write(&body, vec![0xAAu8; video.len()]).expect("write body");
    // The first client sends part of its body, then freezes (SIGSTOP) with its connection open.
    let mut first = slow_sender(ingest.addr, &loc, &body, video.len());
    // Its bytes may wait in the spool writer's aligned buffer: the PATCH having taken its
    // buffer is the sign that it is underway.
    wait_until(
        Duration::from_secs(20),
        "the first PATCH to take its body",
        || ingest.counter("ringcast_ingest_patch_pooled_buffer_total") >= 1,
    );
    signal(&first, "-STOP");
    // The second client resumes from HEAD's offset: taken over within 2 s, not 423 for a minute.
    let offset = ingest.offset(&loc) as usize;
    let half = offset + (video.len() - offset) / 2;
    let started = Instant::now();
    let r = ingest.patch(&loc, offset as u64, &video[offset..half]);
    let took = started.elapsed();
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(took < Duration::from_millis(2500), "took over in {took:?}");
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_lock_takeovers_total"),
        1
    );
    // The frozen client wakes up in the middle of the upload and sends the rest of its bytes:
    // its request stops at its next write, and nothing of it may land.
    signal(&first, "-CONT");
    wait_until(Duration::from_secs(20), "the old PATCH to stop", || {
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"taken_over\"}") == 1
    });
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(ingest.offset(&loc), half as u64);
    let r = ingest.patch(&loc, half as u64, &video[half..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    assert_stored(&stack, &upload_id(&loc), &video);
    assert_eq!(ingest.offset(&loc), video.len() as u64);
}
