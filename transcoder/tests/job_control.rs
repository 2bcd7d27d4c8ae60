//! Job control of the transcoder binary against real Redis, store and ffmpeg: an ffmpeg that
//! stalls (really stopped with SIGSTOP) or outlives its wall-clock limit is killed, retried,
//! then dead-lettered with a clear reason; an operator's cancel (`cancel_requested` = "1" in
//! `rc:job:{id}`, the contract of `jobs cancel`) stops a running job and removes its partial
//! output, or acks a queued one without running it. Every time: no ffmpeg process left, no
//! scratch directory left, and the worker goes on to the next job.
//!
//! Running jobs are kept running by an ffmpeg wrapper that reads its input in real time
//! (`-re`), so each test knows the job is still busy when it acts; no sleeps.

mod support;

use std::time::{Duration, Instant};

use redis::Commands;
use ringcast_infra::queue::admin::{AdminError, CancelRequest};
use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::JobState;
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{wait_until, IngestOptions, Service, Stack, TranscoderOptions};

use support::*;

/// The ffmpeg processes whose parent is `parent`, with their state letter (`R`, `S`, `T` for
/// stopped, `Z` for an unreaped zombie), from `/proc`.
fn ffmpeg_children(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && comm == "ffmpeg" {
            out.push((pid, state));
        }
    }
    out
}

fn signal(pid: u32, sig: &str) {
    // Quietly: at clean-up the process is normally gone already.
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Kills the ffmpeg processes a test stopped if they are still there when it ends (only when
/// the transcoder failed to): a stopped process would otherwise outlive the test.
#[derive(Default)]
struct Stopped(std::cell::RefCell<Vec<u32>>);

impl Stopped {
    /// SIGSTOP every running ffmpeg child of `parent`.
    fn stop_children(&self, parent: u32) {
        for (pid, state) in ffmpeg_children(parent) {
            if state != 'T' && state != 'Z' {
                signal(pid, "-STOP");
                self.0.borrow_mut().push(pid);
            }
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in self.0.borrow().iter() {
            signal(*pid, "-KILL");
        }
    }
}

fn redis_conn(stack: &Stack) -> redis::Connection {
    redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Nothing of `video` version 1 is published or announced, and its current master does not
/// exist.
fn assert_nothing_published(
    rt: &tokio::runtime::Runtime,
    store: &ObjectStore,
    conn: &mut redis::Connection,
    video: &str,
) {
    let objects = rt
        .block_on(store.list(&keys::version_prefix(video, 1)))
        .expect("list");
    assert!(objects.is_empty(), "left over: {objects:?}");
    assert!(rt
        .block_on(store.head(&keys::current_master(video)))
        .expect("head")
        .is_none());
    let event_streams: Vec<String> = conn.keys(format!("rc:events:{video}:1:*")).expect("KEYS");
    assert!(event_streams.is_empty(), "{event_streams:?}");
    let live_hash: bool = conn.exists(keys::live_stream(video, 1)).expect("EXISTS");
    assert!(
        !live_hash,
        "the version's progressive-playback hash is gone"
    );
}

/// After the job ended: no ffmpeg under the transcoder (not even an unreaped one), no scratch
/// directory.
fn assert_clean(t: &Service) {
    let left = ffmpeg_children(t.process.pid());
    assert!(left.is_empty(), "ffmpeg left behind: {left:?}");
    assert!(
        t.leftover_job_dirs().is_empty(),
        "{:?}",
        t.leftover_job_dirs()
    );
}

/// The worker takes and finishes the next job normally.
fn next_job_is_done(
    rt: &tokio::runtime::Runtime,
    store: &ObjectStore,
    queue: &Queue,
    t: &Service,
    video: &str,
) {
    let clip = Clip::new(320, 240).seconds(2).write(
        t.state_dir.parent().expect("stack dir"),
        &format!("{video}.mp4"),
    );
    let job = submit(rt, store, queue, video, &clip);
    let status = wait_finished(rt, queue, t, &job.job_id);
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", t.log_text());
    assert!(rt
        .block_on(store.head(&keys::current_master(video)))
        .expect("head")
        .is_some());
}

fn dead_letter_reasons(conn: &mut redis::Connection) -> Vec<String> {
    let dlq: redis::streams::StreamRangeReply = conn.xrange_all(keys::JOB_DLQ).expect("XRANGE");
    dlq.ids
        .iter()
        .map(|e| e.get::<String>("reason").expect("reason"))
        .collect()
}

fn pending(conn: &mut redis::Connection) -> usize {
    let p: redis::streams::StreamPendingReply = conn
        .xpending(keys::job_stream("normal"), keys::JOB_GROUP)
        .expect("XPENDING");
    p.count()
}

/// ffmpeg stopped with SIGSTOP mid-encode makes no progress: after `stall_timeout_secs` it is
/// killed (a stopped process too), the attempt retried; the retry's ffmpeg is stopped as well,
/// and the job is dead-lettered with the stall reason. Without stall detection the job would
/// stay `running` forever.
#[test]
fn a_stalled_ffmpeg_is_killed_retried_then_dead_lettered() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(20)
        .audio(true)
        .write(stack.dir(), "stall.mp4");
    let t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-stall")
            .ffmpeg_path(&realtime_ffmpeg(stack.dir()))
            .toml("max_attempts = 2\nstall_timeout_secs = 2"),
    );
    let job = submit(&rt, &store, &queue, "stall", &clip);
    // The first attempt is stopped mid-encode, once it has made progress.
    wait_for_job(
        &rt,
        &queue,
        &t,
        &job.job_id,
        Duration::from_secs(120),
        |s| s.state == JobState::Running && s.progress > 0.0,
    );
    let stopped = Stopped::default();
    let status = wait_for_job(
        &rt,
        &queue,
        &t,
        &job.job_id,
        Duration::from_secs(120),
        |s| {
            stopped.stop_children(t.process.pid());
            s.state == JobState::Failed
        },
    );
    assert!(
        stopped.0.borrow().len() >= 2,
        "both attempts' ffmpeg were stopped: {:?}",
        stopped.0.borrow()
    );
    assert_eq!(
        status.error.as_deref(),
        Some("ffmpeg made no progress for 2 s"),
        "{}",
        t.log_text()
    );
    let mut conn = redis_conn(&stack);
    assert_eq!(
        dead_letter_reasons(&mut conn),
        ["ffmpeg made no progress for 2 s"]
    );
    assert_eq!(pending(&mut conn), 0, "dead-lettered entries are acked");
    assert_eq!(t.value("ringcast_transcoder_jobs_stalled_total"), 2.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 1.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 1.0);
    assert_clean(&t);
    assert_nothing_published(&rt, &store, &mut conn, "stall");

    // A healthy run with the same 2 s stall timeout is not mistaken for a stall.
    next_job_is_done(&rt, &store, &queue, &t, "after-stall");
    assert_eq!(t.value("ringcast_transcoder_jobs_stalled_total"), 2.0);
    assert!(t.value("ringcast_transcoder_ffmpeg_speed") > 0.0);
}

/// A VOD attempt's ffmpeg may run `max_wall_clock_factor` × the media duration +
/// `wall_clock_floor_secs`: here 0.1 × 10 s + 1 s = 2 s, while the real-time encode needs 10 s.
/// Each attempt is killed at the limit; then the job is dead-lettered with the reason.
#[test]
fn a_job_over_its_wall_clock_limit_is_killed_retried_then_dead_lettered() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(320, 240)
        .seconds(10)
        .write(stack.dir(), "slow.mp4");
    let t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-wall")
            .ffmpeg_path(&realtime_ffmpeg(stack.dir()))
            .toml("max_attempts = 2\nmax_wall_clock_factor = 0.1\nwall_clock_floor_secs = 1"),
    );
    let job = submit(&rt, &store, &queue, "slow", &clip);
    let status = wait_finished(&rt, &queue, &t, &job.job_id);
    assert_eq!(status.state, JobState::Failed, "{}", t.log_text());
    let reason = "transcoding took longer than its limit of 2 s";
    assert_eq!(status.error.as_deref(), Some(reason));
    let mut conn = redis_conn(&stack);
    assert_eq!(dead_letter_reasons(&mut conn), [reason]);
    assert_eq!(t.value("ringcast_transcoder_jobs_timed_out_total"), 2.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_stalled_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 1.0);
    assert_clean(&t);
    assert_nothing_published(&rt, &store, &mut conn, "slow");
}

/// An operator cancels a running job by setting `cancel_requested` in its hash: within a few
/// seconds ffmpeg is gone, everything the job had published under its version is removed
/// (the current master never written), the job is `cancelled` (also in the ingest's
/// `GET /v1/videos/{id}`), acknowledged and not dead-lettered; the worker then transcodes the
/// next job.
#[test]
fn cancel_stops_a_running_job_and_removes_its_output() {
    let stack = Stack::builder()
        .redis()
        .ingest(IngestOptions::new())
        .start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(640, 360)
        .seconds(30)
        .audio(true)
        .write(stack.dir(), "cancel.mp4");
    let t = stack.spawn(
        TranscoderOptions::new()
            .name("tc-cancel")
            .ffmpeg_path(&realtime_ffmpeg(stack.dir())),
    );
    let job = submit(&rt, &store, &queue, "cancel", &clip);
    // Running, and already published something that the cancel must take back.
    let prefix = keys::version_prefix("cancel", 1);
    wait_until(Duration::from_secs(120), "the job to publish parts", || {
        let running = rt
            .block_on(queue.job_status(&job.job_id))
            .expect("status")
            .is_some_and(|s| s.state == JobState::Running);
        running
            && rt
                .block_on(store.list(&prefix))
                .expect("list")
                .iter()
                .any(|k| k.ends_with(".m4s"))
    });
    assert!(!ffmpeg_children(t.process.pid()).is_empty());

    let mut conn = redis_conn(&stack);
    let () = conn
        .hset(keys::job_state(&job.job_id), "cancel_requested", "1")
        .expect("HSET");
    let asked = Instant::now();
    let status = wait_for_job(&rt, &queue, &t, &job.job_id, Duration::from_secs(30), |s| {
        s.state.is_terminal()
    });
    let took = asked.elapsed();
    assert_eq!(status.state, JobState::Cancelled, "{}", t.log_text());
    assert_eq!(status.error.as_deref(), Some("cancelled by operator"));
    // cancel_check_ms is 2 s by default; the rest is killing ffmpeg and deleting.
    assert!(took < Duration::from_secs(15), "cancel took {took:?}");
    eprintln!("running job cancelled {took:?} after the request");
    assert_clean(&t);
    assert_nothing_published(&rt, &store, &mut conn, "cancel");
    assert!(
        dead_letter_reasons(&mut conn).is_empty(),
        "not dead-lettered"
    );
    assert_eq!(pending(&mut conn), 0, "acknowledged");
    assert_eq!(t.value("ringcast_transcoder_jobs_cancelled_total"), 1.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_failed_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 0.0);

    // The uploader's view.
    let r = stack.ingest().get("/v1/videos/cancel");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["job"]["state"], "cancelled", "{v}");
    assert_eq!(v["job"]["error"], "cancelled by operator");
    assert_eq!(v["current_version"], serde_json::Value::Null);

    next_job_is_done(&rt, &store, &queue, &t, "after-cancel");
    assert_eq!(t.value("ringcast_transcoder_jobs_cancelled_total"), 1.0);
}

/// A job cancelled while still queued (here: before any transcoder runs) is acknowledged and
/// marked `cancelled` when a worker picks it up, without starting ffmpeg; the next job runs.
/// Also the queue's side of the contract: `request_cancel` sets the flag on a job that exists
/// and on nothing else.
#[test]
fn a_job_cancelled_while_queued_is_acked_without_running() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "queued.mp4");
    let job = submit(&rt, &store, &queue, "queued", &clip);
    assert!(!rt
        .block_on(queue.cancel_requested(&job.job_id))
        .expect("read flag"));
    assert_eq!(
        rt.block_on(queue.request_cancel(&job.job_id))
            .expect("cancel"),
        CancelRequest::Requested
    );
    assert!(rt
        .block_on(queue.cancel_requested(&job.job_id))
        .expect("read flag"));
    let mut conn = redis_conn(&stack);
    assert!(matches!(
        rt.block_on(queue.request_cancel("no-such-job")),
        Err(AdminError::NotFound(_))
    ));
    let stray: bool = conn.exists(keys::job_state("no-such-job")).expect("EXISTS");
    assert!(!stray, "no hash made for an unknown job");

    let t = stack.spawn(TranscoderOptions::new().name("tc-queued"));
    let status = wait_for_job(&rt, &queue, &t, &job.job_id, Duration::from_secs(60), |s| {
        s.state.is_terminal()
    });
    assert_eq!(status.state, JobState::Cancelled, "{}", t.log_text());
    assert_eq!(status.error.as_deref(), Some("cancelled by operator"));
    assert_eq!(t.value("ringcast_transcoder_jobs_started_total"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_cancelled_total"), 1.0);
    assert!(t.log_text().contains("cancelled while queued"));
    assert_eq!(pending(&mut conn), 0, "acknowledged");
    assert!(dead_letter_reasons(&mut conn).is_empty());
    assert_nothing_published(&rt, &store, &mut conn, "queued");
    assert_clean(&t);

    next_job_is_done(&rt, &store, &queue, &t, "after-queued");
    assert_eq!(t.value("ringcast_transcoder_jobs_started_total"), 1.0);
}

/// A live job cancelled by an operator ends its stream as when the publisher leaves: ffmpeg is
/// gone, the rendition's event stream ends with `end`, what viewers already have stays
/// published (the current master keeps pointing at it), and the job is `cancelled`,
/// acknowledged, not dead-lettered.
#[test]
fn cancel_ends_a_live_stream_and_keeps_what_was_published() {
    const KEY: &str = "stream-key-cancel";
    const VIDEO: &str = "cam";
    let stack = Stack::builder()
        .ingest(IngestOptions::new().live_key(KEY, VIDEO).live_grace_secs(2))
        .transcoder(
            TranscoderOptions::new()
                .name("tc-live-cancel")
                .toml("[live]\nheights = [240]\npreset = \"ultrafast\""),
        )
        .start();
    let t = stack.transcoder();
    let (rt, store, queue) = clients(&stack);
    let ingest_addr = stack.ingest().addr;
    // Longer than anything the test waits for; stopped at the end.
    let mut publisher = ringcast_testkit::Process::spawn(
        "publisher",
        Clip::new(320, 240)
            .seconds(600)
            .audio(true)
            .live_push(&format!("http://{ingest_addr}/live/{KEY}")),
        stack.dir(),
    );
    let (mut job_id, mut version) = (String::new(), 0u32);
    wait_until(
        Duration::from_secs(90),
        "the live stream to publish",
        || {
            publisher.assert_running();
            if job_id.is_empty() {
                let video = rt.block_on(queue.video(VIDEO)).expect("video");
                job_id = video.get("latest_job").cloned().unwrap_or_default();
                version = video
                    .get("latest_version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
            !job_id.is_empty()
                && rt
                    .block_on(store.head(&keys::rendition_file(VIDEO, version, "240p", "init.mp4")))
                    .expect("head")
                    .is_some()
        },
    );

    let mut conn = redis_conn(&stack);
    let () = conn
        .hset(keys::job_state(&job_id), "cancel_requested", "1")
        .expect("HSET");
    let status = wait_for_job(&rt, &queue, t, &job_id, Duration::from_secs(30), |s| {
        s.state.is_terminal()
    });
    assert_eq!(status.state, JobState::Cancelled, "{}", t.log_text());
    assert_eq!(status.error.as_deref(), Some("cancelled by operator"));
    let left = ffmpeg_children(t.process.pid());
    assert!(left.is_empty(), "ffmpeg left behind: {left:?}");
    let events: redis::streams::StreamRangeReply = conn
        .xrange_all(ringcast_proto::live::events_stream_key(
            VIDEO, version, "240p",
        ))
        .expect("XRANGE");
    let last: String = events
        .ids
        .last()
        .and_then(|e| e.get(ringcast_proto::live::EVENT_FIELD))
        .expect("an event");
    assert!(
        matches!(
            ringcast_proto::live::LiveEvent::from_json(&last).expect("event"),
            ringcast_proto::live::LiveEvent::End { .. }
        ),
        "the stream ended: {last}"
    );
    assert!(rt
        .block_on(store.head(&keys::current_master(VIDEO)))
        .expect("head")
        .is_some());
    // The worker writes the state first and acknowledges right after (end_cancelled).
    wait_until(
        Duration::from_secs(10),
        "the cancelled job acknowledged",
        || {
            let p: redis::streams::StreamPendingReply = conn
                .xpending(keys::JOB_LIVE, keys::JOB_GROUP)
                .expect("XPENDING");
            p.count() == 0
        },
    );
    assert!(dead_letter_reasons(&mut conn).is_empty());
    assert_eq!(t.value("ringcast_transcoder_jobs_cancelled_total"), 1.0);
    drop(publisher);
}
