//! Interrupted uploads resume; non-videos are refused without a job.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use ringcast_proto::keys;
use ringcast_testkit::wait_until;
use support::*;

#[test]
fn resume_after_a_client_disconnect_mid_patch() {
    let stack = start(options());
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);

    // Announce the whole file, send half, hang up.
    let sent = video.len() / 2;
    {
        let mut raw = TcpStream::connect(ingest.addr).expect("connect");
        let head = format!(
            "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: {}\r\n\r\n",
            video.len()
        );
        raw.write_all(head.as_bytes()).expect("head");
        raw.write_all(&video[..sent]).expect("half the body");
        raw.shutdown(Shutdown::Both).expect("close");
    }

    // The server counts the interruption after it recorded the kept offset. Only then probe
    // the lock: a probe sent earlier could take the lock before the interrupted PATCH's head is
    // even read, and that PATCH would be refused with 423 and keep nothing.
    wait_until(
        Duration::from_secs(20),
        "the interrupted PATCH to be handled",
        || ingest.counter("ringcast_ingest_upload_errors_total{kind=\"interrupted\"}") == 1,
    );
    // Once the interrupted PATCH has released the upload, HEAD reports what it kept.
    wait_until_unlocked(ingest, &loc);
    let offset = ingest.offset(&loc);
    // TCP delivered every byte before the FIN and the server keeps what it received, so nothing
    // is lost; a server that dropped the partial body would report 0 here.
    assert_eq!(offset, sent as u64, "bytes kept from the interrupted PATCH");
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"interrupted\"}"),
        1
    );

    // Resume from there and finish.
    let r = ingest.patch(&loc, offset, &video[offset as usize..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    let id = upload_id(&loc);
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert_eq!(
        sha256(&stored),
        sha256(&video),
        "identical bytes after resume"
    );
    let delivery = next_job(&queue(stack.redis_url()), Duration::from_secs(5)).expect("job");
    assert_eq!(delivery.job.expect("job").video_id, id);
}

#[test]
fn a_non_video_is_rejected_and_no_job_is_enqueued() {
    let stack = start(options());
    let ingest = stack.ingest();
    // Pseudo-random bytes that start like no container (xorshift, fixed seed, first byte forced).
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut junk: Vec<u8> = (0..50_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    junk[0] = 0x00;
    let loc = ingest.create(junk.len() as u64, None);
    let half = junk.len() / 2;
    assert_eq!(ingest.patch(&loc, 0, &junk[..half]).status, 204);
    let r = ingest.patch(&loc, half as u64, &junk[half..]);
    assert_eq!(r.status, 415, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json error");
    assert_eq!(v["error"]["code"], "not_a_video");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("video container")),
        "{v}"
    );

    let id = upload_id(&loc);
    let queue = queue(stack.redis_url());
    assert!(block_on(queue.video(&id)).expect("video hash").is_empty());
    assert!(
        next_job(&queue, Duration::from_millis(10)).is_none(),
        "no job"
    );
    assert!(!stack.object_path(&keys::source(&id, 1)).exists());
    assert!(
        !ingest.state_dir.join(format!("uploads/{id}.bin")).exists(),
        "spool freed"
    );
    // The upload is gone for good: 410 on HEAD and on a retried PATCH.
    let r = ingest
        .conn()
        .request("HEAD", &loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 410);
    assert_eq!(ingest.patch(&loc, junk.len() as u64, b"").status, 410);
    let r = ingest
        .conn()
        .request("GET", &format!("/v1/videos/{id}"), &[], b"")
        .expect("GET");
    assert_eq!(r.status, 404);
}
