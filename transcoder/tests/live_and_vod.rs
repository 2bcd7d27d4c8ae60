//! Live and VOD capacity apart, with real processes: with the demo's `workers = 1` (and the
//! default `live_slots`), a live stream pushed through the ingest binary holds a live slot of
//! the transcoder binary, and a VOD upload made while it runs is still transcoded within twice
//! its media duration plus a fixed margin, the live job running on all the while. Before live
//! slots the live job held the only worker and the upload stayed `queued` until the stream
//! ended.

mod support;

use std::time::{Duration, Instant};

use ringcast_proto::job::{JobState, JobStatus};
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{wait_until, IngestOptions, Process, Stack, TranscoderOptions};

use support::*;

const LIVE_VIDEO: &str = "cam";
const KEY: &str = "stream-key-slots";
/// Media duration of the VOD upload.
const VOD_SECONDS: u32 = 4;
/// Fixed allowance on top of 2× the media duration (start-up, probe, uploads, a shared CI box).
const MARGIN: Duration = Duration::from_secs(60);
/// Longer than anything the test waits for: the publisher is stopped at the end.
const LIVE_SECONDS: u32 = 600;

fn status(
    rt: &tokio::runtime::Runtime,
    queue: &ringcast_infra::queue::Queue,
    job: &str,
) -> Option<JobStatus> {
    rt.block_on(queue.job_status(job)).expect("job_status")
}

#[test]
fn an_upload_made_while_a_live_stream_runs_is_transcoded_with_one_worker() {
    let stack = Stack::builder()
        .ingest(
            IngestOptions::new()
                .live_key(KEY, LIVE_VIDEO)
                .live_grace_secs(2),
        )
        .transcoder(
            TranscoderOptions::new()
                .name("tc-slots")
                .workers(1)
                .toml("[live]\nheights = [240]\npreset = \"ultrafast\""),
        )
        .start();
    let t = stack.transcoder();
    let (rt, store, queue) = clients(&stack);
    let ingest_addr = stack.ingest().addr;

    let mut publisher = Process::spawn(
        "publisher",
        Clip::new(320, 240)
            .seconds(LIVE_SECONDS)
            .audio(true)
            .live_push(&format!("http://{ingest_addr}/live/{KEY}")),
        stack.dir(),
    );

    // The live job is queued by the ingest and picked up by the transcoder.
    let mut live_job = String::new();
    wait_until(Duration::from_secs(60), "the live job to run", || {
        publisher.assert_running();
        if live_job.is_empty() {
            let video = rt.block_on(queue.video(LIVE_VIDEO)).expect("video");
            live_job = video.get("latest_job").cloned().unwrap_or_default();
        }
        !live_job.is_empty()
            && status(&rt, &queue, &live_job).is_some_and(|s| s.state == JobState::Running)
    });

    // Now the upload.
    let source = Clip::new(320, 240)
        .seconds(VOD_SECONDS)
        .audio(true)
        .write(stack.dir(), "upload.mp4");
    let started = Instant::now();
    let vod = submit(&rt, &store, &queue, "upload", &source);
    let limit = Duration::from_secs(2 * u64::from(VOD_SECONDS)) + MARGIN;
    let done = wait_for_job(&rt, &queue, t, &vod.job_id, limit, |s| {
        matches!(s.state, JobState::Done | JobState::Failed)
    });
    let took = started.elapsed();
    assert_eq!(
        done.state,
        JobState::Done,
        "{done:?}\ntranscoder log:\n{}",
        t.log_text()
    );
    eprintln!("VOD job of {VOD_SECONDS} s done {took:?} after the upload, live job running");

    // The live job ran on all the while, in its own slot.
    publisher.assert_running();
    let live = status(&rt, &queue, &live_job).expect("live job status");
    assert_eq!(
        live.state,
        JobState::Running,
        "{live:?}\ntranscoder log:\n{}",
        t.log_text()
    );
    // The running-jobs gauge counts the live job and no longer the finished upload.
    assert_eq!(
        t.metric::<i64>("ringcast_transcoder_jobs_running"),
        Some(1),
        "{}",
        t.metrics()
    );
    drop(publisher);
}
