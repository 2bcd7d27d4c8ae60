//! Virus scan of finished uploads against a real clamd (testkit `Clamd`, with the EICAR test
//! signature the kit writes itself): a clean clip is accepted; a valid MP4 carrying the EICAR
//! string in a `free` box is refused with 422 and the signature, nothing queued, spool and
//! state gone; with clamd down the final PATCH gets 503 + Retry-After and finishes once clamd is
//! back; an upload larger than clamd's StreamMaxLength is refused at creation.

mod support;

use ringcast_proto::keys;
use ringcast_testkit::{Clamd, CLAMD_TEST_SIGNATURE, EICAR};
use support::*;

/// An MP4 box `free` holding `payload` (a valid top-level box players and ffprobe skip).
fn free_box(payload: &[u8]) -> Vec<u8> {
    let mut b = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(b"free");
    b.extend_from_slice(payload);
    b
}

fn upload(
    ingest: &ringcast_testkit::Service,
    bytes: &[u8],
) -> (String, ringcast_testkit::http::Response) {
    let loc = ingest.create(bytes.len() as u64, None);
    let r = ingest.patch(&loc, 0, bytes);
    (loc, r)
}

#[test]
fn clean_infected_and_unreachable_clamd() {
    let mut clamd = Clamd::start(32 << 20);
    let stack = start(options().toml(clamd.ingest_toml(4)));
    let ingest = stack.ingest();
    let clean = small_mp4(stack.dir());

    // Clean: accepted, a job queued.
    let (loc, r) = upload(ingest, &clean);
    assert_eq!(r.status, 204, "{}", r.text());
    let job = r.header("ringcast-job-id").expect("job id").to_string();
    assert_eq!(enqueued_job_ids(stack.redis_url()), vec![job.clone()]);
    assert_eq!(
        ingest.counter("ringcast_ingest_scans_total{verdict=\"clean\"}"),
        1
    );
    let id = upload_id(&loc);
    assert!(stack.object_path(&keys::source(&id, 1)).exists());

    // The EICAR string inside a valid MP4 (a trailing `free` box): 422 with the signature.
    let mut infected = small_mp4(stack.dir());
    infected.extend_from_slice(&free_box(EICAR));
    let (loc, r) = upload(ingest, &infected);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(json_error_code(&r), "infected");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let signature = v["error"]["signature"].as_str().expect("signature");
    assert!(signature.starts_with(CLAMD_TEST_SIGNATURE), "{signature}");
    assert!(r.header("ringcast-job-id").is_none());
    assert_eq!(
        enqueued_job_ids(stack.redis_url()),
        vec![job.clone()],
        "nothing queued"
    );
    let bad = upload_id(&loc);
    let uploads = ingest.state_dir.join("uploads");
    assert!(
        !uploads.join(format!("{bad}.bin")).exists(),
        "spool deleted"
    );
    assert!(
        !uploads.join(format!("{bad}.json")).exists(),
        "state deleted"
    );
    assert!(
        !stack.object_path(&keys::source(&bad, 1)).exists(),
        "nothing stored"
    );
    let head = ingest
        .conn()
        .request("HEAD", &loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(head.status, 404);
    assert_eq!(
        ingest.counter("ringcast_ingest_scans_total{verdict=\"infected\"}"),
        1
    );

    // clamd down: the final PATCH is refused with 503 + Retry-After, the bytes kept.
    clamd.stop();
    let other = {
        let mut v = small_mp4(stack.dir());
        v.extend_from_slice(&free_box(b"a different clip, not a duplicate"));
        v
    };
    let (loc, r) = upload(ingest, &other);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(json_error_code(&r), "scan_unavailable");
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    assert_eq!(
        ingest.offset(&loc),
        other.len() as u64,
        "upload kept complete"
    );
    assert_eq!(enqueued_job_ids(stack.redis_url()).len(), 1);
    // Back: the client's retry (a body-less PATCH at the end) finishes the same upload.
    clamd.restart();
    let r = ingest.patch(&loc, other.len() as u64, b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    assert_eq!(enqueued_job_ids(stack.redis_url()).len(), 2);
    let stored = std::fs::read(stack.object_path(&keys::source(&upload_id(&loc), 1)))
        .expect("stored source");
    assert_eq!(sha256(&stored), sha256(&other));

    // A hung clamd (the kernel accepts, nothing answers): 503 once scan.timeout_secs passed,
    // not a PATCH that hangs; the retry after it thaws finishes.
    clamd.pause(true);
    let third = {
        let mut v = small_mp4(stack.dir());
        v.extend_from_slice(&free_box(b"a third clip"));
        v
    };
    let started = std::time::Instant::now();
    let (loc, r) = upload(ingest, &third);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(json_error_code(&r), "scan_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    clamd.pause(false);
    let r = ingest.patch(&loc, third.len() as u64, b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        ingest.counter("ringcast_ingest_scans_total{verdict=\"unavailable\"}"),
        2
    );

    // Larger than clamd's StreamMaxLength: refused at creation, before any byte is sent.
    let r = ingest
        .conn()
        .request(
            "POST",
            "/files/",
            &[TUS, ("Upload-Length", &((32u64 << 20) + 1).to_string())],
            b"",
        )
        .expect("POST");
    assert_eq!(r.status, 413, "{}", r.text());
    let opts = ingest
        .conn()
        .request("OPTIONS", "/files/", &[TUS], b"")
        .expect("OPTIONS");
    assert_eq!(
        opts.header("tus-max-size"),
        Some((32u64 << 20).to_string().as_str())
    );
}

/// clamd on its unix socket, with a `StreamMaxLength` (1 MiB) below what the ingest was told
/// (32 MiB): a small clip is scanned clean over the socket; a 2 MiB one gets clamd's "size limit
/// exceeded", which is no verdict — 503, the upload kept — never a pass.
#[test]
fn unix_socket_and_a_clamd_limit_below_the_ingests() {
    let clamd = Clamd::start(1 << 20);
    let stack = start(options().toml(format!(
        "[scan]\nclamd = {:?}\ntimeout_secs = 20\nmax_stream_bytes = {}\n",
        clamd.socket.display().to_string(),
        32u64 << 20
    )));
    let ingest = stack.ingest();
    let (_, r) = upload(ingest, &small_mp4(stack.dir()));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        ingest.counter("ringcast_ingest_scans_total{verdict=\"clean\"}"),
        1
    );

    let mut big = small_mp4(stack.dir());
    big.extend_from_slice(&free_box(&vec![0x5a; 2 << 20]));
    let (loc, r) = upload(ingest, &big);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(json_error_code(&r), "scan_unavailable");
    assert!(r.header("retry-after").is_some());
    assert_eq!(ingest.offset(&loc), big.len() as u64, "kept for a retry");
    assert!(
        ingest.process.log_text().contains("StreamMaxLength"),
        "the log names the misconfiguration"
    );
    assert_eq!(enqueued_job_ids(stack.redis_url()).len(), 1);
}
