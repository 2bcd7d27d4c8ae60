//! Faults under a running ingest, with real processes: Redis down and back (the final PATCH is
//! refused with 503 + `Retry-After` rather than acknowledged without a job, and its retry
//! finishes with exactly one job once Redis returns; the edge's VOD is unaffected and the
//! transcoder reconnects and takes the job), the ingest SIGKILLed mid-PATCH (the upload resumes
//! from the durable offset after a restart, byte-exact), and the spool's disk full (507 with a
//! JSON error, no corrupt state, the upload resumes once space is freed).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use ringcast_infra::queue::{all_streams, Queue};
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::http::Response;
use ringcast_testkit::{wait_until, EdgeOptions, RedisServer, Stack, Tmpfs, TranscoderOptions};
use support::*;

/// Entries in every job stream (each is one enqueued job).
fn jobs_enqueued(redis_url: &str) -> Vec<String> {
    let mut conn = redis::Client::open(redis_url)
        .expect("client")
        .get_connection()
        .expect("connect");
    let mut ids = Vec::new();
    for stream in all_streams() {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .expect("XRANGE");
        for entry in reply.ids {
            let job: String = entry.get("job").expect("job field");
            let job: serde_json::Value = serde_json::from_str(&job).expect("job JSON");
            ids.push(job["job_id"].as_str().expect("job_id").to_string());
        }
    }
    ids
}

fn error_code(r: &Response) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("JSON error body: {}", r.text()));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn redis_down_refuses_the_final_patch_and_its_retry_finishes_once_redis_is_back() {
    let mut redis = RedisServer::start();
    let stack = Stack::builder()
        .redis_at(&redis.url)
        .ingest(options())
        .transcoder(TranscoderOptions::new().name("tc"))
        .edge(EdgeOptions::new())
        .start();
    let video = small_mp4(stack.dir());
    let vod: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    stack.put("v/old/1/720p/seg0.m4s", &vod);
    stack.put("v/old/1/720p/seg1.m4s", &vod[..1000]);
    assert_eq!(stack.edge().get("/v/old/1/720p/seg0.m4s").status, 200);

    let ingest = stack.ingest();
    let loc = ingest.create(video.len() as u64, None);
    let half = video.len() / 2;
    assert_eq!(ingest.patch(&loc, 0, &video[..half]).status, 204);

    redis.stop();
    // The last bytes arrive while Redis is gone: they are kept (durable offset), but the upload
    // cannot be finished, and the client is told to come back rather than told "done".
    let r = ingest.patch(&loc, half as u64, &video[half..]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    assert!(
        matches!(error_code(&r).as_str(), "queue_unavailable" | "timeout"),
        "{}",
        r.text()
    );
    assert!(r.header("ringcast-job-id").is_none());
    assert_eq!(ingest.offset(&loc), video.len() as u64, "bytes kept");
    // Its retry meanwhile: the same answer, still nothing queued.
    let r = ingest.patch(&loc, video.len() as u64, b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());

    // The edge serves VOD from the store without Redis: a cached object and a new one.
    let edge = stack.edge();
    let r = edge.get("/v/old/1/720p/seg0.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
    assert!(r.body == vod);
    let r = edge.get("/v/old/1/720p/seg1.m4s");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == vod[..1000]);

    // Redis returns (empty: no persistence). The client's retry of the empty PATCH finishes the
    // upload; until the ingest has reconnected it may still get 503 + Retry-After.
    redis.restart();
    let mut finished = None;
    wait_until(
        Duration::from_secs(60),
        "the retried PATCH to finish",
        || {
            let r = stack.ingest().patch(&loc, video.len() as u64, b"");
            match r.status {
                204 => {
                    finished = Some(r);
                    true
                }
                503 => {
                    assert!(r.header("retry-after").is_some());
                    false
                }
                other => panic!("retry answered {other}: {}", r.text()),
            }
        },
    );
    let r = finished.expect("finished");
    let job_id = r.header("ringcast-job-id").expect("job id").to_string();
    // A lost-response retry gets the same job, not a second one.
    let again = stack.ingest().patch(&loc, video.len() as u64, b"");
    assert_eq!(again.status, 204);
    assert_eq!(again.header("ringcast-job-id"), Some(job_id.as_str()));
    assert_eq!(
        jobs_enqueued(&redis.url),
        vec![job_id.clone()],
        "exactly one job"
    );
    let id = upload_id(&loc);
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert_eq!(sha256(&stored), sha256(&video));

    // The transcoder reconnected by itself and takes the job to the end.
    let q: Queue = queue(&redis.url);
    let mut last = None;
    wait_until(
        Duration::from_secs(300),
        "the transcoder to finish the job",
        || {
            last = block_on(q.job_status(&job_id)).expect("job status");
            last.as_ref()
                .is_some_and(|s| matches!(s.state, JobState::Done | JobState::Failed))
        },
    );
    let status = last.expect("status");
    assert_eq!(
        status.state,
        JobState::Done,
        "{:?}\n{}",
        status.error,
        stack.transcoder().log_text()
    );
    assert_eq!(jobs_enqueued(&redis.url).len(), 1);
    // And the edge still serves, now also the new video.
    assert!(stack.edge().get("/v/old/1/720p/seg0.m4s").body == vod);
    assert_eq!(
        stack.edge().get(&format!("/v/{id}/master.m3u8")).status,
        200
    );
    drop(stack);
}

#[test]
fn an_ingest_killed_mid_patch_resumes_from_the_durable_offset() {
    let mut stack = start(options());
    let video = Clip::new(640, 360)
        .fps(25)
        .seconds(4)
        .write(stack.dir(), "killed.mp4");
    let video = std::fs::read(video).expect("read clip");
    let loc = stack.ingest().create(video.len() as u64, None);
    let id = upload_id(&loc);
    let first = video.len() / 3;
    assert_eq!(stack.ingest().patch(&loc, 0, &video[..first]).status, 204);

    // A second PATCH announces the rest and sends half of it — bytes that are NOT the file's,
    // so a server that claimed them after the crash would store a corrupt source.
    let rest = video.len() - first;
    let junk = vec![0xEEu8; rest / 2];
    let mut raw = TcpStream::connect(stack.ingest().addr).expect("connect");
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {first}\r\nContent-Length: {rest}\r\n\r\n"
    );
    raw.write_all(head.as_bytes()).expect("head");
    raw.write_all(&junk).expect("part of the body");
    // Mid-PATCH: the request is taking its body (the junk sits in the spool writer's aligned
    // buffer or, past 1 MiB, in the spool file beyond the recorded offset), still open.
    wait_until(
        Duration::from_secs(30),
        "the PATCH to take its body",
        || {
            stack
                .ingest()
                .counter("ringcast_ingest_patch_pooled_buffer_total")
                >= 2
        },
    );
    let ingest = stack.ingest_mut();
    ingest.process.signal(libc::SIGKILL);
    ingest.process.wait();
    drop(raw);
    stack.restart("ingest");

    // The durable offset is the acknowledged one, not what happened to reach the file.
    let ingest = stack.ingest();
    assert_eq!(ingest.offset(&loc), first as u64);
    let r = ingest.patch(&loc, first as u64, &video[first..]);
    assert_eq!(r.status, 204, "{}", r.text());
    let job_id = r.header("ringcast-job-id").expect("job id").to_string();
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert!(
        stored == video,
        "the stored source is not the uploaded file"
    );
    assert_eq!(jobs_enqueued(stack.redis_url()), vec![job_id]);
}

#[test]
fn a_full_spool_disk_is_a_clear_error_and_the_upload_resumes_once_space_is_freed() {
    // 4 MiB: room for the ingest's state, then taken by a filler file.
    let Some(disk) = Tmpfs::mount(4 << 20) else {
        return;
    };
    let data_dir = disk.path().join("ingest");
    // No free-space reserve: this is the reactive path, a write that meets ENOSPC (the reserve
    // is tests/admission.rs).
    let stack = start(options().toml(format!(
        "data_dir = {:?}\n[admission]\nspool_reserve_bytes = 0",
        data_dir.display().to_string()
    )));
    let ingest = stack.ingest();
    let video = Clip::new(640, 360)
        .fps(25)
        .seconds(3)
        .write(stack.dir(), "full.mp4");
    let video = std::fs::read(video).expect("read clip");
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);
    let first = video.len() / 4;
    assert_eq!(ingest.patch(&loc, 0, &video[..first]).status, 204);

    disk.fill();
    let r = ingest.patch(&loc, first as u64, &video[first..]);
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(error_code(&r), "insufficient_storage");
    assert!(r.header("retry-after").is_some());
    assert!(
        !r.text().contains(&data_dir.display().to_string()),
        "paths stay out of bodies: {}",
        r.text()
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"spool\"}"),
        1
    );
    // Whatever the PATCH managed to keep is acknowledged, never more than was written.
    let kept = ingest.offset(&loc);
    assert!(
        (first as u64..video.len() as u64).contains(&kept),
        "offset {kept} after a failed write"
    );
    // Still full: a retry fails the same way, the upload is unchanged.
    let r = ingest.patch(&loc, kept, &video[kept as usize..]);
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(ingest.offset(&loc), kept);
    assert!(ingest.get("/healthz").status == 200);

    disk.free();
    let kept = ingest.offset(&loc);
    let r = ingest.patch(&loc, kept, &video[kept as usize..]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("ringcast-job-id").is_some());
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert!(
        stored == video,
        "the stored source is not the uploaded file"
    );
    assert_eq!(jobs_enqueued(stack.redis_url()).len(), 1);
    drop(stack);
    drop(disk);
}
