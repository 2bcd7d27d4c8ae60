//! Faults under a running transcoder. Redis crashes and comes back empty (no persistence: the
//! job streams and the consumer group are gone): the transcoder must reconnect, make its
//! consumer group again and transcode a job queued afterwards, without a restart. A transcoder
//! SIGKILLed mid-job: another reclaims the job and finishes it exactly once.

mod support;

use std::time::Duration;

use redis::Commands;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{RedisServer, Stack, TranscoderOptions};
use support::*;

#[test]
fn a_transcoder_carries_on_after_redis_restarts_empty() {
    let mut redis = RedisServer::start();
    let stack = Stack::builder()
        .redis_at(&redis.url)
        .transcoder(TranscoderOptions::new().name("tc-redis"))
        .start();
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "after.mp4");
    // The workers are blocked in XREADGROUP when Redis dies.
    wait_until_blocked(&redis.url, 3);
    redis.stop();
    redis.restart();

    let (rt, store, queue) = clients(&stack);
    let job = submit(&rt, &store, &queue, "after-restart", &clip);
    let status = wait_for_job(
        &rt,
        &queue,
        stack.transcoder(),
        &job.job_id,
        Duration::from_secs(120),
        |s| matches!(s.state, JobState::Done | JobState::Failed),
    );
    assert_eq!(status.state, JobState::Done, "{:?}", status.error);
}

/// Wait until `n` clients are blocked (the transcoder's VOD worker and live slots).
fn wait_until_blocked(url: &str, n: usize) {
    let mut conn = redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("connect");
    ringcast_testkit::wait_until(
        Duration::from_secs(20),
        "the transcoder's consumers to block in XREADGROUP",
        || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut conn)
                .expect("INFO");
            info.lines()
                .filter_map(|l| l.trim().strip_prefix("blocked_clients:"))
                .any(|v| v.parse::<usize>().is_ok_and(|b| b >= n))
        },
    );
}

/// A transcoder SIGKILLed in the middle of a job (no shutdown, no abandon: its claim just goes
/// idle) has the job reclaimed by another transcoder, which finishes it exactly once: one
/// `done`, the stream entry acked, nothing dead-lettered, one complete set of published
/// objects, each segment the playlist names present and no other.
#[test]
fn a_transcoder_killed_mid_job_has_the_job_reclaimed_and_done_once() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(10)
        .write(stack.dir(), "long.mp4");
    // The first transcoder reads its input in real time, so the job is certainly running when
    // it is killed.
    let slow_ffmpeg = realtime_ffmpeg(stack.dir());
    // Not about disk space: start the job whatever the (shared) machine has free.
    let timings = "live_slots = 0\nreclaim_idle_ms = 1500\nmin_free_bytes = 0";
    let mut first = stack.spawn(
        TranscoderOptions::new()
            .name("tc-first")
            .toml(timings)
            .ffmpeg_path(&slow_ffmpeg),
    );
    let job = submit(&rt, &store, &queue, "long", &clip);
    wait_for_job(
        &rt,
        &queue,
        &first,
        &job.job_id,
        Duration::from_secs(120),
        |s| s.state == JobState::Running && s.progress > 0.0,
    );
    first.process.signal(libc::SIGKILL);
    first.process.wait();
    drop(first);

    let second = stack.spawn(TranscoderOptions::new().name("tc-second").toml(timings));
    let status = wait_finished(&rt, &queue, &second, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{}", second.log_text());
    assert_eq!(second.counter("ringcast_transcoder_jobs_done_total"), 1);
    assert_eq!(second.counter("ringcast_transcoder_jobs_failed_total"), 0);

    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    assert_eq!(pending.count(), 0, "acked after the reclaimed run");
    let dlq_len: usize = conn.xlen(keys::JOB_DLQ).expect("XLEN");
    assert_eq!(dlq_len, 0, "nothing dead-lettered");
    let entries: usize = conn.xlen(keys::job_stream("normal")).expect("XLEN");
    assert_eq!(entries, 1, "no second job was queued");

    // One set of published objects: the playlist's segments, each once, and nothing else in
    // the rendition (no leftovers of the killed run under other names).
    let playlist = parse_and_validate_media(&get_text(
        &rt,
        &store,
        &keys::rendition_file("long", 1, "360p", "index.m3u8"),
    ));
    assert_eq!(playlist.segments.len(), 5);
    let dir = stack.object_path(&keys::rendition_file("long", 1, "360p", "x"));
    let dir = dir.parent().expect("rendition dir");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("rendition dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = playlist.segments.iter().map(|s| s.uri.clone()).collect();
    expected.push("index.m3u8".into());
    expected.push(playlist.map_uri.clone().expect("init segment"));
    expected.sort();
    expected.dedup();
    // Besides: the segments' parts (`part{msn}.{i}.m4s`, for low-latency players), of those
    // segments only.
    let is_part = |f: &str| {
        f.strip_prefix("part")
            .and_then(|r| r.strip_suffix(".m4s"))
            .and_then(|r| r.split_once('.'))
            .and_then(|(msn, i)| Some((msn.parse::<usize>().ok()?, i.parse::<u32>().ok()?)))
            .is_some_and(|(msn, _)| msn < playlist.segments.len())
    };
    let extra: Vec<&String> = files
        .iter()
        .filter(|f| !expected.contains(f) && !is_part(f))
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|f| !files.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "published objects missing: {missing:?} (have {files:?})"
    );
    // Other renditions' side files (e.g. thumbnails) live elsewhere; in the rendition dir only
    // what the playlist names may exist.
    assert!(extra.is_empty(), "unexpected objects: {extra:?}");
    let variants = parse_master(&get_text(&rt, &store, &keys::current_master("long")));
    assert_eq!(variants.len(), 1);
}
