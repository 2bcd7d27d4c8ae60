//! Upload admission limits with real processes: the spool's free-space reserve (507 before the
//! disk is full, resumable), per-owner quotas (403 `quota_exceeded`, counters moved by finish,
//! duplicates, new versions and deletes), the PATCH body pace (a trickling client and a silent
//! one cut off with 408 long before the idle timeout, the upload resumable at its offset; a
//! total deadline), and the per-worker connection cap (idle connections past it get 503).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ringcast_proto::keys;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, Service, Tmpfs};
use support::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// POST /files/ answered with anything (not only 201).
fn try_create(ingest: &Service, length: u64, metadata: Option<&str>) -> Response {
    let len = length.to_string();
    let mut headers = vec![TUS, ("Upload-Length", len.as_str())];
    if let Some(m) = metadata {
        headers.push(("Upload-Metadata", m));
    }
    ingest
        .conn()
        .request("POST", "/files/", &headers, b"")
        .expect("POST")
}

/// A distinct valid MP4 (trailing `free` box with `tag`), so uploads are not duplicates.
fn clip(stack: &ringcast_testkit::Stack, tag: &str) -> Vec<u8> {
    let mut v = small_mp4(stack.dir());
    let payload = tag.as_bytes();
    v.extend_from_slice(&((8 + payload.len()) as u32).to_be_bytes());
    v.extend_from_slice(b"free");
    v.extend_from_slice(payload);
    v
}

#[test]
fn the_spool_reserve_refuses_before_the_disk_fills_and_the_upload_resumes() {
    let Some(disk) = Tmpfs::mount(16 << 20) else {
        return;
    };
    let data_dir = disk.path().join("ingest");
    let reserve: u64 = 4 << 20;
    let stack = start(options().toml(format!(
        "data_dir = {:?}\n[admission]\nspool_reserve_bytes = {reserve}",
        data_dir.display().to_string()
    )));
    let ingest = stack.ingest();
    let video = clip(&stack, "reserve");
    let loc = ingest.create(video.len() as u64, None);
    let first = video.len() / 3;
    assert_eq!(ingest.patch(&loc, 0, &video[..first]).status, 204);

    // Leave less than the reserve plus this body free — but more than the body: without the
    // reserve the PATCH would be written and acknowledged.
    let filler = disk.path().join("filler");
    let keep = reserve + (video.len() as u64) / 2;
    let take = disk.available() - keep;
    std::fs::write(&filler, vec![0u8; take as usize]).expect("filler");
    assert!(
        disk.available() > video.len() as u64,
        "room for the body itself"
    );

    let r = ingest.patch(&loc, first as u64, &video[first..]);
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(json_error_code(&r), "insufficient_storage");
    assert!(r.header("retry-after").is_some());
    assert!(
        r.header("upload-expires").is_some(),
        "Upload-Expires on the 507"
    );
    assert_eq!(
        ingest.offset(&loc),
        first as u64,
        "refused before a byte was written"
    );
    // A new upload that would not fit above the reserve either.
    let r = try_create(ingest, video.len() as u64, None);
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        ingest.counter("ringcast_ingest_admission_refusals_total{reason=\"storage\"}"),
        2
    );

    std::fs::remove_file(&filler).expect("free the space");
    let r = ingest.patch(&loc, first as u64, &video[first..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    let stored = std::fs::read(stack.object_path(&keys::source(&upload_id(&loc), 1))).expect("src");
    assert!(stored == video);
    drop(stack);
    drop(disk);
}

/// `rc:quota:owner:{owner}` as (in flight, stored).
fn usage(redis_url: &str, owner: &str) -> (i64, i64) {
    let mut conn = redis::Client::open(redis_url)
        .expect("client")
        .get_connection()
        .expect("connect");
    let (f, s): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
        .arg(format!("rc:quota:owner:{owner}"))
        .arg("inflight")
        .arg("stored")
        .query(&mut conn)
        .expect("HMGET");
    (f.unwrap_or(0), s.unwrap_or(0))
}

#[test]
fn quotas_count_bytes_in_flight_and_stored_and_deletes_free_them() {
    let probe = ringcast_testkit::Stack::builder().start();
    let a = clip(&probe, "quota-a");
    drop(probe);
    let n = a.len() as u64;
    // Room for two clips stored; one and a half in flight.
    let stack = start(options().toml(format!(
        "[quota]\nmax_bytes_in_flight = {}\nmax_bytes_stored = {}",
        n * 3 / 2,
        n * 2 + n / 2
    )));
    let ingest = stack.ingest();
    let redis = stack.redis_url();
    let owner = "anonymous";

    // In flight: one upload fits, a second one at the same time does not.
    let loc_a = ingest.create(n, None);
    assert_eq!(usage(redis, owner), (n as i64, 0));
    let r = try_create(ingest, n, None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json_error_code(&r), "quota_exceeded");
    let files = std::fs::read_dir(ingest.state_dir.join("uploads"))
        .expect("dir")
        .count();
    assert_eq!(files, 2, "the refused upload left nothing behind");
    // Finished: its bytes move from in flight to stored.
    assert_eq!(ingest.patch(&loc_a, 0, &a).status, 204);
    let video_a = upload_id(&loc_a);
    assert_eq!(usage(redis, owner), (0, n as i64));
    // The same bytes again finish as a duplicate: nothing more stored, nothing left in flight.
    let loc = ingest.create(n, None);
    assert_eq!(ingest.patch(&loc, 0, &a).status, 200);
    assert_eq!(usage(redis, owner), (0, n as i64));
    // A new version of the video counts too; its retry does not count twice.
    let b = clip(&stack, "quota-b");
    let meta = format!("video_id {}", b64(&video_a));
    let loc_b = ingest.create(b.len() as u64, Some(&meta));
    assert_eq!(ingest.patch(&loc_b, 0, &b).status, 204);
    assert_eq!(ingest.patch(&loc_b, b.len() as u64, b"").status, 204);
    let stored = (n + b.len() as u64) as i64;
    assert_eq!(usage(redis, owner), (0, stored));
    // Stored + in flight past max_bytes_stored: refused.
    let r = try_create(ingest, n, None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json_error_code(&r), "quota_exceeded");
    assert!(r.text().contains("stored"), "{}", r.text());
    assert_eq!(
        ingest.counter("ringcast_ingest_admission_refusals_total{reason=\"quota\"}"),
        2
    );
    // Deleting the video frees both versions' bytes; a new upload fits again.
    let r = ingest
        .conn()
        .request("DELETE", &format!("/v1/videos/{video_a}"), &[], b"")
        .expect("DELETE");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(usage(redis, owner), (0, 0));
    assert_eq!(try_create(ingest, n, None).status, 201);
}

/// Send a PATCH head announcing `total` body bytes for `loc` at `offset` on a raw socket.
fn patch_head(ingest: &Service, loc: &str, offset: u64, total: usize) -> TcpStream {
    let mut s = TcpStream::connect(ingest.addr).expect("connect");
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    s
}

/// A raw answer's head carries `Upload-Expires` (tus: on every response to an unfinished upload).
fn has_upload_expires(answer: &str) -> bool {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .any(|l| l.to_ascii_lowercase().starts_with("upload-expires: "))
}

/// Everything the server sends until it closes (or `within` passes: then panic).
fn read_answer(s: &mut TcpStream, within: Duration) -> String {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no answer within {within:?}: {e}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_trickling_client_and_a_silent_one_are_cut_off_and_the_upload_resumes() {
    // The idle timeout (60 s) would let both hang on; the pace cuts them after ~2 s.
    let stack = start(options().toml(
        "[admission]\nmin_body_bytes_per_sec = 1000\nbody_rate_window_secs = 2\npatch_deadline_secs = 0",
    ));
    let ingest = stack.ingest();
    let video = clip(&stack, "slow");

    // A pause longer than the window after a burst that covers it at the minimum rate is
    // fine: the PATCH completes.
    let paused = clip(&stack, "paused");
    let loc = ingest.create(paused.len() as u64, None);
    let mut s = patch_head(ingest, &loc, 0, paused.len());
    let burst = paused.len() / 2;
    assert!(burst > 5000, "the burst covers the pause at 1000 B/s");
    s.write_all(&paused[..burst]).expect("burst");
    std::thread::sleep(Duration::from_millis(3500)); // the client's pause, past one window
    s.write_all(&paused[burst..]).expect("rest");
    let answer = read_answer(&mut s, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let loc = ingest.create(video.len() as u64, None);

    // 50 bytes/s: a burst first, then a trickle in a thread until the server stops taking it.
    let mut s = patch_head(ingest, &loc, 0, video.len());
    let burst = video.len() / 3;
    s.write_all(&video[..burst]).expect("burst");
    let mut writer = s.try_clone().expect("clone");
    let trickle = video[burst..].to_vec();
    let sent = std::thread::spawn(move || {
        let mut sent = burst;
        for piece in trickle.chunks(10) {
            if writer.write_all(piece).is_err() {
                break;
            }
            sent += piece.len();
            std::thread::sleep(Duration::from_millis(200));
        }
        sent
    });
    let started = Instant::now();
    let answer = read_answer(&mut s, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_too_slow"), "{answer}");
    assert!(has_upload_expires(&answer), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(s);
    let sent = sent.join().expect("trickle thread");
    wait_until_unlocked(ingest, &loc);
    let kept = ingest.offset(&loc);
    assert!(
        (burst as u64..=sent as u64).contains(&kept),
        "kept {kept} of {sent} sent"
    );

    // A client that sends the head and then nothing: cut off at the window, not the idle timeout.
    let mut s = patch_head(ingest, &loc, kept, video.len() - kept as usize);
    let started = Instant::now();
    let answer = read_answer(&mut s, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    wait_until_unlocked(ingest, &loc);
    assert_eq!(ingest.offset(&loc), kept);
    assert_eq!(
        ingest.counter("ringcast_ingest_admission_refusals_total{reason=\"too_slow\"}"),
        2
    );

    // The upload resumes at its offset and finishes byte-exact.
    let r = ingest.patch(&loc, kept, &video[kept as usize..]);
    assert_eq!(r.status, 204, "{}", r.text());
    let stored = std::fs::read(stack.object_path(&keys::source(&upload_id(&loc), 1))).expect("src");
    assert!(stored == video);
}

#[test]
fn a_patch_past_its_deadline_is_cut_off_however_fast_it_trickles() {
    let stack =
        start(options().toml("[admission]\nmin_body_bytes_per_sec = 0\npatch_deadline_secs = 2"));
    let ingest = stack.ingest();
    let video = clip(&stack, "deadline");
    let loc = ingest.create(video.len() as u64, None);
    let mut s = patch_head(ingest, &loc, 0, video.len());
    let mut writer = s.try_clone().expect("clone");
    let body = video.clone();
    let t = std::thread::spawn(move || {
        for piece in body.chunks(100) {
            if writer.write_all(piece).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    let answer = read_answer(&mut s, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("longer than 2 s"), "{answer}");
    assert!(has_upload_expires(&answer), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    drop(s);
    t.join().expect("writer");
    wait_until_unlocked(ingest, &loc);
    let kept = ingest.offset(&loc);
    assert!(kept > 0 && kept < video.len() as u64, "kept {kept}");
    let r = ingest.patch(&loc, kept, &video[kept as usize..]);
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn idle_connections_past_the_per_worker_cap_get_503() {
    let stack = start(options().workers(1).toml("max_connections_per_worker = 4"));
    let ingest = stack.ingest();
    // Four idle connections (nothing sent), each accepted before the next is opened.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(ingest.addr).expect("connect"));
    }
    // The fifth is over the cap: 503 with Retry-After, then closed.
    let mut extra = TcpStream::connect(ingest.addr).expect("connect");
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let answer = read_answer(&mut extra, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after"),
        "{answer}"
    );
    // One idle connection goes: a new client is served again.
    idle.pop();
    wait_until(Duration::from_secs(20), "a free connection slot", || {
        ingest
            .conn()
            .request("GET", "/healthz", &[], b"")
            .is_ok_and(|r| r.status == 200)
    });
}

#[test]
fn patch_buffers_are_pooled_per_worker() {
    // One pooled buffer on one worker: a PATCH held open mid-body takes it; a second PATCH at
    // the same time streams through a small buffer and still stores the file byte-exact.
    let stack = start(
        options()
            .workers(1)
            .toml("[admission]\npatch_buffers_per_worker = 1"),
    );
    let ingest = stack.ingest();
    let a = clip(&stack, "pool-a");
    let b = clip(&stack, "pool-b");
    let loc_a = ingest.create(a.len() as u64, None);
    let loc_b = ingest.create(b.len() as u64, None);
    let mut held = patch_head(ingest, &loc_a, 0, a.len());
    held.write_all(&a[..a.len() / 2]).expect("half of a");
    // The held PATCH has taken the pooled buffer (its bytes may wait in the direct spool
    // writer's aligned buffer, so the spool file says nothing yet).
    wait_until(
        Duration::from_secs(20),
        "the held PATCH to take its buffer",
        || ingest.counter("ringcast_ingest_patch_pooled_buffer_total") == 1,
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_patch_small_buffer_total"),
        0
    );
    let r = ingest.patch(&loc_b, 0, &b);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        ingest.counter("ringcast_ingest_patch_small_buffer_total"),
        1
    );
    let stored =
        std::fs::read(stack.object_path(&keys::source(&upload_id(&loc_b), 1))).expect("src");
    assert!(stored == b);
    // The held PATCH finishes; its buffer goes back to the pool for the next one.
    held.write_all(&a[a.len() / 2..]).expect("rest of a");
    let answer = read_answer(&mut held, Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let c = clip(&stack, "pool-c");
    let loc_c = ingest.create(c.len() as u64, None);
    assert_eq!(ingest.patch(&loc_c, 0, &c).status, 204);
    assert_eq!(
        ingest.counter("ringcast_ingest_patch_small_buffer_total"),
        1
    );
}
