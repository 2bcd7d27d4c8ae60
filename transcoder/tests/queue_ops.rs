//! The observable, steerable queue with a real transcoder, Redis and ffmpeg: the queue gauges,
//! outcome counters and histograms on `/metrics` follow what is queued, running and
//! dead-lettered; `/readyz` says when Redis or `work_dir` are unusable (and `/metrics` still
//! answers, promptly, with `redis_up 0`); `ringcast-transcoder jobs …` lists, shows,
//! requeues, drops and cancels.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use ringcast_proto::job::{
    now_ms, JobState, LiveSource, Priority, TranscodeJob, JOB_SCHEMA_VERSION,
};
use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{command, wait_until, Kind, Service, Stack, TranscoderOptions};
use serde_json::Value;
use support::*;

/// An ffmpeg that waits until `release` exists: its job stays running as long as the test
/// wants (the wrapper is spawned, so the pipeline has started "ffmpeg").
fn gated_ffmpeg(dir: &Path, release: &Path) -> PathBuf {
    let path = dir.join("ffmpeg-gated");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nwhile [ ! -e {r:?} ]; do sleep 0.05; done\nexec ffmpeg \"$@\"\n",
            r = release.display().to_string()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

/// Bytes no demuxer reads: a permanent failure, dead-lettered at once.
fn junk(dir: &Path) -> PathBuf {
    let path = dir.join("junk.bin");
    let bytes: Vec<u8> = (0..16 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, bytes).expect("write");
    path
}

fn job(id: &str, video: &str, priority: Priority) -> TranscodeJob {
    TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: id.into(),
        video_id: video.into(),
        version: 1,
        source_key: keys::source(video, 1),
        priority,
        created_ms: now_ms(),
        live: None,
        container: None,
    }
}

/// A live job: with `live_slots = 0` nobody takes it, so it stays queued.
fn live_job(id: &str) -> TranscodeJob {
    TranscodeJob {
        source_key: String::new(),
        live: Some(LiveSource {
            pull_url: "http://127.0.0.1:1/live/k/pull".into(),
        }),
        ..job(id, &format!("vid-{id}"), Priority::High)
    }
}

fn gauge(t: &Service, series: &str) -> f64 {
    t.value(series)
}

/// `ringcast-transcoder --config {t's config} jobs {args}`.
fn jobs(t: &Service, args: &[&str]) -> Output {
    command(Kind::Transcoder, false)
        .arg("--config")
        .arg(&t.config_path)
        .arg("jobs")
        .args(args)
        .output()
        .expect("run ringcast-transcoder jobs")
}

/// A `jobs` command that must succeed; its stdout.
fn jobs_ok(t: &Service, args: &[&str]) -> String {
    let o = jobs(t, args);
    assert!(
        o.status.success(),
        "jobs {args:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// A `jobs` command that must fail; its stderr.
fn jobs_err(t: &Service, args: &[&str]) -> String {
    let o = jobs(t, args);
    assert!(!o.status.success(), "jobs {args:?} succeeded");
    String::from_utf8(o.stderr).expect("utf-8")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn metrics_follow_the_queue_and_survive_a_redis_outage() {
    let mut stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "clip.mp4");
    let release = stack.dir().join("release");
    let t = stack.spawn(
        TranscoderOptions::new()
            .workers(1)
            .ffmpeg_path(&gated_ffmpeg(stack.dir(), &release))
            .toml("live_slots = 0"),
    );
    assert_eq!(gauge(&t, "ringcast_transcoder_redis_up"), 1.0);
    assert_eq!(gauge(&t, "ringcast_transcoder_workers{lane=\"vod\"}"), 1.0);
    assert_eq!(gauge(&t, "ringcast_transcoder_workers{lane=\"live\"}"), 0.0);
    assert_eq!(t.get("/readyz").status, 200);

    // A takes the only worker and stays in ffmpeg.
    let a = submit(&rt, &store, &queue, "qa", &clip);
    wait_until(Duration::from_secs(60), "job A in ffmpeg", || {
        t.value("ringcast_transcoder_job_pickup_seconds_count") == 1.0
    });
    assert_eq!(
        gauge(&t, "ringcast_transcoder_queue_pending{priority=\"normal\"}"),
        1.0
    );
    assert_eq!(
        gauge(&t, "ringcast_transcoder_workers_busy{lane=\"vod\"}"),
        1.0
    );
    // Behind it: B (normal), C (high, junk), and a live job nobody here takes.
    let b = submit(&rt, &store, &queue, "qb", &clip);
    let c = job("job-qc", "qc", Priority::High);
    rt.block_on(async {
        store
            .put_file(&c.source_key, &junk(stack.dir()), "video/mp4")
            .await
            .expect("upload");
        queue.enqueue(&c).await.expect("enqueue");
        queue.enqueue(&live_job("job-ql")).await.expect("enqueue");
    });
    let text = t.metrics();
    let m = |series: &str| -> f64 {
        ringcast_testkit::metrics::sample(&text, series)
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert_eq!(
        m("ringcast_transcoder_queue_depth{priority=\"normal\"}"),
        1.0
    );
    assert_eq!(m("ringcast_transcoder_queue_depth{priority=\"high\"}"), 1.0);
    assert_eq!(m("ringcast_transcoder_queue_depth{priority=\"low\"}"), 0.0);
    assert_eq!(m("ringcast_transcoder_queue_depth{priority=\"live\"}"), 1.0);
    assert_eq!(
        m("ringcast_transcoder_queue_pending{priority=\"normal\"}"),
        1.0
    );
    assert_eq!(
        m("ringcast_transcoder_queue_pending{priority=\"high\"}"),
        0.0
    );
    let age = m("ringcast_transcoder_queue_oldest_age_seconds{priority=\"normal\"}");
    assert!((0.0..60.0).contains(&age), "oldest age {age}");
    assert_eq!(
        m("ringcast_transcoder_queue_oldest_age_seconds{priority=\"low\"}"),
        0.0
    );
    assert_eq!(m("ringcast_transcoder_dead_letters"), 0.0);
    assert_eq!(m("ringcast_transcoder_job_pickup_seconds_count"), 1.0);

    // The CLI sees A running, held by this transcoder's worker.
    let running = json(&jobs_ok(&t, &["list", "--running", "--json"]));
    assert!(running.get("dead_letters").is_none(), "{running}");
    let r = &running["running"];
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{running}");
    assert_eq!(r[0]["job_id"], a.job_id.as_str());
    assert_eq!(r[0]["consumer"], "transcoder-0");
    assert_eq!(r[0]["state"], "running");
    let table = jobs_ok(&t, &["list", "--running"]);
    assert!(
        table.contains(&a.job_id) && table.contains("transcoder-0"),
        "{table}"
    );

    // Let ffmpeg run: A, then C (high: dead-lettered), then B.
    std::fs::write(&release, b"").expect("release");
    for (id, want) in [
        (&a.job_id, JobState::Done),
        (&c.job_id, JobState::Failed),
        (&b.job_id, JobState::Done),
    ] {
        assert_eq!(wait_finished(&rt, &queue, &t, id).state, want, "{id}");
    }
    wait_until(Duration::from_secs(30), "the worker to go idle", || {
        t.value("ringcast_transcoder_workers_busy{lane=\"vod\"}") == 0.0
            && t.value("ringcast_transcoder_queue_pending{priority=\"normal\"}") == 0.0
    });
    let text = t.metrics();
    let m = |series: &str| -> f64 {
        ringcast_testkit::metrics::sample(&text, series)
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert_eq!(
        m("ringcast_transcoder_queue_depth{priority=\"normal\"}"),
        0.0
    );
    assert_eq!(m("ringcast_transcoder_queue_depth{priority=\"high\"}"), 0.0);
    assert_eq!(m("ringcast_transcoder_queue_depth{priority=\"live\"}"), 1.0);
    assert_eq!(m("ringcast_transcoder_dead_letters"), 1.0);
    assert_eq!(
        m("ringcast_transcoder_job_outcomes_total{outcome=\"done\"}"),
        2.0
    );
    assert_eq!(
        m("ringcast_transcoder_job_outcomes_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        m("ringcast_transcoder_job_outcomes_total{outcome=\"lost_claim\"}"),
        0.0
    );
    assert_eq!(
        m("ringcast_transcoder_job_processing_seconds_count{lane=\"vod\"}"),
        3.0
    );
    assert_eq!(
        m("ringcast_transcoder_job_processing_seconds_count{lane=\"live\"}"),
        0.0
    );
    // C failed before ffmpeg: two pickups, B's after waiting for A.
    assert_eq!(m("ringcast_transcoder_job_pickup_seconds_count"), 2.0);
    assert_eq!(
        m("ringcast_transcoder_job_pickup_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert!(m("ringcast_transcoder_job_pickup_seconds_sum") > 0.0);

    // A transcoder whose work_dir has too little room is alive but not ready.
    let full = stack.spawn(
        TranscoderOptions::new()
            .name("full")
            .toml("live_slots = 0\nmin_free_bytes = 1000000000000000000"),
    );
    let r = full.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("min_free_bytes"), "{}", r.text());
    assert_eq!(full.get("/healthz").status, 200);
    drop(full);

    // Redis goes away: /metrics answers at once with redis_up 0; /readyz says why.
    stack.stop_redis();
    let started = Instant::now();
    let text = t.metrics();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        ringcast_testkit::metrics::sample::<u64>(&text, "ringcast_transcoder_redis_up"),
        Some(0),
        "{text}"
    );
    assert!(!text.contains("ringcast_transcoder_queue_depth{"), "{text}");
    assert!(text.contains("ringcast_transcoder_jobs_done_total 2\n"));
    let r = t.get("/readyz");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("redis"), "{}", r.text());
    assert_eq!(t.get("/healthz").status, 200);
    drop(t);
}

#[test]
fn the_jobs_cli_lists_shows_requeues_drops_and_cancels() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let t = stack.spawn(TranscoderOptions::new().workers(1).toml("live_slots = 0"));
    let junk = junk(stack.dir());

    // A job whose source is junk is dead-lettered.
    let broken = submit_as(&rt, &store, &queue, "broken", &junk, None);
    assert_eq!(
        wait_finished(&rt, &queue, &t, &broken.job_id).state,
        JobState::Failed
    );
    let list = json(&jobs_ok(&t, &["list", "--json"]));
    let dead = list["dead_letters"].as_array().expect("dead_letters");
    assert_eq!(dead.len(), 1, "{list}");
    assert_eq!(dead[0]["job_id"], "job-broken");
    assert_eq!(dead[0]["video_id"], "broken");
    assert_eq!(dead[0]["version"], 1);
    assert_eq!(dead[0]["stream"], "rc:jobs:normal");
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not a readable video")),
        "{list}"
    );
    assert!(dead[0]["dead_lettered_at"].as_str().is_some(), "{list}");
    assert_eq!(list["running"], serde_json::json!([]));
    let table = jobs_ok(&t, &["list", "--dlq"]);
    assert!(table.starts_with("dead letters: 1\nENTRY"), "{table}");
    assert!(
        table.contains("job-broken") && !table.contains("running:"),
        "{table}"
    );
    let show = json(&jobs_ok(&t, &["show", "job-broken"]));
    assert_eq!(show["hash"]["state"], "failed");
    assert!(
        show["ttl_secs"].as_u64().is_some(),
        "an ended job expires: {show}"
    );
    let streams: Vec<&str> = show["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["stream"].as_str())
        .collect();
    assert!(streams.contains(&"rc:jobs:dlq"), "{show}");

    // The operator fixes the source and requeues: it transcodes.
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "clip.mp4");
    rt.block_on(store.put_file(&broken.source_key, &clip, "video/mp4"))
        .expect("replace the source");
    let out = jobs_ok(&t, &["requeue", "job-broken"]);
    assert!(
        out.starts_with("requeued job job-broken to rc:jobs:normal"),
        "{out}"
    );
    let status = wait_for_job(
        &rt,
        &queue,
        &t,
        "job-broken",
        Duration::from_secs(300),
        |s| s.state == JobState::Done,
    );
    assert_eq!(status.progress, 100.0);
    let list = json(&jobs_ok(&t, &["list", "--dlq", "--json"]));
    assert_eq!(list["dead_letters"], serde_json::json!([]), "{list}");
    assert!(jobs_err(&t, &["requeue", "job-broken"]).contains("no dead letter for job job-broken"));

    // Another broken job is dropped instead.
    let broken2 = submit_as(&rt, &store, &queue, "broken2", &junk, None);
    assert_eq!(
        wait_finished(&rt, &queue, &t, &broken2.job_id).state,
        JobState::Failed
    );
    let out = jobs_ok(&t, &["drop", "job-broken2"]);
    assert!(out.starts_with("dropped job job-broken2"), "{out}");
    let list = json(&jobs_ok(&t, &["list", "--json"]));
    assert_eq!(list["dead_letters"], serde_json::json!([]), "{list}");
    let show = json(&jobs_ok(&t, &["show", "job-broken2"]));
    assert_eq!(show["hash"]["state"], "failed");
    assert!(show["hash"]["dropped_ms"].as_str().is_some(), "{show}");

    // Cancel: a queued job gets the flag; unknown and ended jobs are errors.
    rt.block_on(queue.enqueue(&live_job("job-waiting")))
        .expect("enqueue");
    let out = jobs_ok(&t, &["cancel", "job-waiting"]);
    assert_eq!(out, "cancel requested for job job-waiting\n");
    let show = json(&jobs_ok(&t, &["show", "job-waiting"]));
    assert_eq!(show["hash"]["cancel_requested"], "1");
    assert!(jobs_err(&t, &["cancel", "job-broken2"]).contains("already ended (failed)"));
    for args in [
        ["cancel", "nope"],
        ["show", "nope"],
        ["requeue", "nope"],
        ["drop", "nope"],
    ] {
        let err = jobs_err(&t, &args);
        assert!(err.contains("nope"), "{args:?}: {err}");
    }
    assert!(jobs_err(&t, &["drop", "../x"]).contains("neither a job id nor a dead-letter entry id"));
    drop(t);
}

/// The worker stalls long enough for another to reclaim its job (simulated: the test claims
/// the entry for a consumer `thief`). Its heartbeat must notice, not take the job back; the
/// worker stops ffmpeg and writes nothing: no ack, no state, no dead letter, no playlist.
#[test]
fn a_worker_that_lost_its_claim_stops_without_acking_or_publishing() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let clip = Clip::new(320, 240)
        .seconds(2)
        .write(stack.dir(), "clip.mp4");
    let release = stack.dir().join("release");
    let t = stack.spawn(
        TranscoderOptions::new()
            .workers(1)
            .ffmpeg_path(&gated_ffmpeg(stack.dir(), &release))
            // Heartbeat every 2 s; the thief's claim is not reclaimed back for 6 s.
            .toml("live_slots = 0\nreclaim_idle_ms = 6000"),
    );
    let job = submit(&rt, &store, &queue, "stolen", &clip);
    wait_until(Duration::from_secs(60), "the job in ffmpeg", || {
        t.value("ringcast_transcoder_job_pickup_seconds_count") == 1.0
    });
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let pending = |conn: &mut redis::Connection| -> Vec<(String, String)> {
        let r: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg("rc:jobs:normal")
            .arg(keys::JOB_GROUP)
            .arg("-")
            .arg("+")
            .arg(10)
            .query(conn)
            .expect("XPENDING");
        r.ids.into_iter().map(|p| (p.id, p.consumer)).collect()
    };
    let before = pending(&mut conn);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1, "transcoder-0");
    let entry = before[0].0.clone();
    redis::cmd("XCLAIM")
        .arg("rc:jobs:normal")
        .arg(keys::JOB_GROUP)
        .arg("thief")
        .arg(0)
        .arg(&entry)
        .arg("JUSTID")
        .query::<redis::Value>(&mut conn)
        .expect("XCLAIM");
    wait_until(
        Duration::from_secs(20),
        "the worker to give the job up",
        || t.value("ringcast_transcoder_job_outcomes_total{outcome=\"lost_claim\"}") == 1.0,
    );
    assert_eq!(
        pending(&mut conn),
        [(entry, "thief".to_string())],
        "the job must stay the thief's, unacknowledged"
    );
    assert_eq!(
        t.value("ringcast_transcoder_workers_busy{lane=\"vod\"}"),
        0.0
    );
    assert!(t.log_text().contains("job claim lost"), "{}", t.log_text());
    // Nothing written for it: still `running` (the new owner's to finish), no dead letter,
    // no published master.
    let status = rt
        .block_on(queue.job_status(&job.job_id))
        .expect("status")
        .expect("hash");
    assert_eq!(status.state, JobState::Running);
    assert_eq!(t.value("ringcast_transcoder_dead_letters"), 0.0);
    assert_eq!(t.value("ringcast_transcoder_jobs_done_total"), 0.0);
    assert_eq!(
        rt.block_on(store.get(&keys::current_master("stolen")))
            .expect("get"),
        None
    );
    assert!(
        t.leftover_job_dirs().is_empty(),
        "{:?}",
        t.leftover_job_dirs()
    );
    // The thief never finishes: this worker reclaims the job once it is idle, so let that
    // run's ffmpeg go on and the process stop without waiting for the gate.
    std::fs::write(&release, b"").expect("release");
    drop(t);
}
