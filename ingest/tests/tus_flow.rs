//! The whole tus flow against the real binary, real redis-server and an fs store: discovery,
//! creation, HEAD, three PATCHes of a real MP4, then the stored source, the queued job and the
//! video API. Run on both monoio drivers, and across a restart.

mod support;

use std::time::Duration;

use ringcast_proto::job::{JobState, Priority};
use ringcast_proto::keys;
use support::*;

fn full_flow(legacy: bool) {
    let stack = start(options().legacy_driver(legacy));
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let len = video.len() as u64;

    // Discovery.
    let r = ingest
        .conn()
        .request("OPTIONS", "/files/", &[], b"")
        .expect("OPTIONS");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(
        r.header("tus-extension"),
        Some(ringcast_proto::tus::TUS_EXTENSIONS)
    );
    assert_eq!(r.header("tus-max-size"), Some("67108864"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // Creation, with metadata ("filename clip.mp4", "title Test").
    let loc = ingest.create(len, Some("filename Y2xpcC5tcDQ=,title VGVzdA=="));
    let id = upload_id(&loc);
    assert!((22..=32).contains(&id.len()), "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    let r = ingest
        .conn()
        .request("HEAD", &loc, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("upload-offset"), Some("0"));
    assert_eq!(r.header("upload-length"), Some(len.to_string().as_str()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.header("upload-metadata"),
        Some("filename Y2xpcC5tcDQ=,title VGVzdA==")
    );

    // Three PATCHes on one keep-alive connection.
    let cuts = [0, video.len() / 3, 2 * video.len() / 3, video.len()];
    let mut conn = ingest.conn();
    let mut last = None;
    for w in cuts.windows(2) {
        let off = w[0].to_string();
        let r = conn
            .request(
                "PATCH",
                &loc,
                &[TUS, OCTETS, ("Upload-Offset", off.as_str())],
                &video[w[0]..w[1]],
            )
            .expect("PATCH");
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(r.header("upload-offset"), Some(w[1].to_string().as_str()));
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        if w[1] < video.len() {
            assert_eq!(ingest.offset(&loc), w[1] as u64, "HEAD agrees with PATCH");
            assert_eq!(r.header("ringcast-job-id"), None, "not finished yet");
        }
        last = Some(r);
    }
    let last = last.expect("final PATCH");
    assert_eq!(last.header("ringcast-video-id"), Some(id.as_str()));
    let job_id = last.header("ringcast-job-id").expect("job id").to_string();
    assert!(
        last.header("access-control-expose-headers")
            .is_some_and(|h| h.contains("Ringcast-Job-Id") && h.contains("Upload-Offset")),
        "{:?}",
        last.headers
    );

    // The source object holds exactly the uploaded bytes.
    let key = keys::source(&id, 1);
    let stored = std::fs::read(stack.object_path(&key)).expect("source object");
    assert_eq!(sha256(&stored), sha256(&video));

    // The job is in rc:jobs:normal.
    let queue = queue(stack.redis_url());
    let delivery = next_job(&queue, Duration::from_secs(5)).expect("a job was enqueued");
    assert_eq!(delivery.stream, "rc:jobs:normal");
    let job = delivery.job.expect("job decodes");
    assert_eq!(job.job_id, job_id);
    assert_eq!(job.video_id, id);
    assert_eq!(job.version, 1);
    assert_eq!(job.source_key, key);
    assert_eq!(job.priority, Priority::Normal);
    // The transcoder forces this container's demuxer on the source.
    assert_eq!(
        job.container,
        Some(ringcast_proto::container::Container::IsoBmff)
    );

    // The video API shows it queued.
    let r = ingest
        .conn()
        .request("GET", &format!("/v1/videos/{id}"), &[], b"")
        .expect("GET video");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["video_id"], id.as_str());
    assert_eq!(v["latest_version"], 1);
    assert_eq!(v["current_version"], serde_json::Value::Null);
    assert_eq!(v["job"]["state"], JobState::Queued.as_str());
    assert_eq!(v["job"]["job_id"], job_id.as_str());
    assert_eq!(v["playback_url"], format!("/v/{id}/master.m3u8"));

    // A finished upload reports its full offset; a repeated final PATCH is answered the same
    // way (its first response may have been lost) without a second job.
    assert_eq!(ingest.offset(&loc), len);
    let again = ingest.patch(&loc, len, b"");
    assert_eq!(again.status, 204);
    assert_eq!(again.header("ringcast-job-id"), Some(job_id.as_str()));
    assert!(
        next_job(&queue, Duration::from_millis(10)).is_none(),
        "no second job"
    );

    // Spool file gone, counters right, driver reported.
    assert!(!ingest.state_dir.join(format!("uploads/{id}.bin")).exists());
    assert_eq!(ingest.counter("ringcast_ingest_uploads_created_total"), 1);
    assert_eq!(ingest.counter("ringcast_ingest_uploads_completed_total"), 1);
    assert_eq!(ingest.counter("ringcast_ingest_bytes_received_total"), len);
    let driver = if legacy { "legacy" } else { "io_uring" };
    assert_eq!(
        ingest.counter(&format!(
            "ringcast_ingest_driver_info{{driver=\"{driver}\"}}"
        )),
        2,
        "both workers on {driver}"
    );
}

#[test]
fn full_tus_flow_stores_the_source_and_queues_a_job() {
    full_flow(false);
}

#[test]
fn full_tus_flow_on_the_epoll_driver() {
    full_flow(true);
}

#[test]
fn uploads_survive_a_restart_and_priority_picks_the_stream() {
    // Only admin keys choose a priority (ingest/tests/auth.rs checks the refusals).
    let mut stack = start(options().require_keys());
    let admin = stack.create_key("ops", "admin");
    let video = small_mp4(stack.dir());
    let half = video.len() / 2;

    let first = WithKey::new(stack.ingest(), &admin);
    // "priority high"
    let loc = first.create(video.len() as u64, Some("priority aGlnaA=="));
    assert_eq!(first.patch(&loc, 0, &video[..half]).status, 204);
    let first = stack.ingest_mut();
    let status = first
        .process
        .terminate(Duration::from_secs(15))
        .expect("exits on SIGTERM");
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        first.log_text()
    );

    let second = WithKey::new(stack.restart("ingest"), &admin);
    assert_eq!(
        second.offset(&loc),
        half as u64,
        "offset persisted across the restart"
    );
    let r = second.patch(&loc, half as u64, &video[half..]);
    assert_eq!(r.status, 204, "{}", r.text());
    let id = upload_id(&loc);
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("source");
    assert_eq!(sha256(&stored), sha256(&video));
    let delivery = next_job(&queue(stack.redis_url()), Duration::from_secs(5)).expect("job");
    assert_eq!(delivery.stream, "rc:jobs:high");
    assert_eq!(delivery.job.expect("job").priority, Priority::High);
}
