//! The job loop of one worker: take a job from its `ringcast_infra::queue::Consumer`
//! (reclaimed abandoned ones first, then new ones by priority), keep it claimed while it runs,
//! run attempts with retries, record state and progress in Redis, then ack, dead-letter, or
//! leave the job for redelivery.
//!
//! A worker serves one [`Lane`]: a VOD worker (`workers` of them) reads only the VOD streams
//! `rc:jobs:{high,normal,low}`, a live slot (`live_slots` of them) only `rc:jobs:live`, so a
//! running live stream never holds a VOD worker and a long VOD job never delays a live start.
//!
//! Outcomes (both lanes):
//! - delivered more than `max_attempts + 2` times (it keeps killing or outliving its workers)
//!   → `failed` → dead letter, without running it again;
//! - success → state `done` (100 %, which also makes the version current) → XACK;
//! - bad input ([`TranscodeError::is_permanent`]) → `failed` with the error's short public
//!   text (the full error is logged with the job id) → dead letter at once; transient errors are retried in-process up to `max_attempts` with exponential
//!   back-off, then treated the same way;
//! - a VOD job while `work_dir` has less than `min_free_bytes` free (beyond its source) → not
//!   started yet: held and checked again every `retry_backoff_ms`, never dead-lettered for it;
//! - shutdown → the job is abandoned: state back to `queued`, no ack, so another worker
//!   reclaims it once it has been idle for `reclaim_idle_ms`;
//! - claim lost (this worker stalled past `reclaim_idle_ms`, another reclaimed the job, and the
//!   heartbeat found it owned by that worker) → the attempt is stopped like an abandoned one,
//!   and nothing is written: no state, no ack, no dead letter; the new owner runs the job.
//! - ffmpeg stalled (`stall_timeout_secs`) or over its wall-clock limit → killed, the attempt's
//!   output removed, and a transient failure like any other (retried, then dead-lettered with
//!   "ffmpeg made no progress for N s" / "transcoding took longer than its limit of N s");
//! - cancelled by an operator (`cancel_requested` = "1" in `rc:job:{id}`, read when the job is
//!   picked up and every `cancel_check_ms` while it runs) → ffmpeg killed, partial output
//!   removed (VOD), state `cancelled` with "cancelled by operator", XACK: no retry, no dead
//!   letter. A job cancelled while queued (or held for free space) is acknowledged without
//!   running ffmpeg. A cancel that arrives once ffmpeg has finished is too late: the job
//!   publishes and ends `done`.
//!
//! Metrics per job ([`crate::metrics::jobs`]): the lane's busy gauge while the job is held,
//! its processing time, and its pickup latency (the clock wraps the attempts; the pipeline
//! reports ffmpeg's start).

use ringcast_infra::trace_export::{self, Span};
use ringcast_proto::trace_context::SpanKind;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use ringcast_infra::queue::{
    live_streams, vod_streams, ClaimHeartbeat, Consumer, Delivery, Queue, QueueError, Reclaim,
};
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{JobState, TranscodeJob, CANCELLED_ERROR};
use ringcast_proto::stream_id::StreamId;
use tokio::sync::{oneshot, watch};

use crate::config::TranscoderConfig;
use crate::error::TranscodeError;
use crate::metrics::jobs::with_pickup_clock;
use crate::metrics::Metrics;
use crate::pipeline::live::run_live;
use crate::pipeline::outcome::{JobOutcome, Shutdown};
use crate::pipeline::vod::run_attempt;
use crate::pipeline::watchdog::{discard_vod_output, JobControl};
use crate::pipeline::work_dir;

/// Minimum spacing of progress writes to Redis (about two per second).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Pause after a failed queue read before trying again.
const QUEUE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Attempts for the final state/ack writes, which must not be lost to a Redis blip.
const BOOKKEEPING_ATTEMPTS: u32 = 3;

/// Run a Redis bookkeeping operation a few times; log if it never succeeds (the job is then
/// redelivered or its state is stale, both recoverable).
async fn retry<F, Fut>(what: &str, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), QueueError>>,
{
    for attempt in 1..=BOOKKEEPING_ATTEMPTS {
        match op().await {
            Ok(()) => break,
            Err(e) if attempt == BOOKKEEPING_ATTEMPTS => {
                tracing::error!(what, error = %e, "giving up on queue bookkeeping");
            }
            Err(e) => {
                tracing::warn!(what, attempt, error = %e, "queue bookkeeping failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

/// What every worker of the process shares.
pub struct Shared {
    pub cfg: TranscoderConfig,
    pub store: ObjectStore,
    pub queue: Queue,
    pub metrics: Arc<Metrics>,
}

/// Which jobs a worker takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// VOD jobs only (`rc:jobs:{high,normal,low}`): the `workers`.
    Vod,
    /// Live jobs only (`rc:jobs:live`): the `live_slots`.
    Live,
}

impl Lane {
    /// The job streams this lane reads, highest priority first.
    pub fn streams(self) -> Vec<String> {
        match self {
            Lane::Vod => vod_streams(),
            Lane::Live => live_streams(),
        }
    }

    /// Consumer name of worker `index` of this lane: `{base}-{index}` for VOD (as before live
    /// slots existed), `{base}-live-{index}` for live.
    pub fn consumer_name(self, base: &str, index: usize) -> String {
        match self {
            Lane::Vod => format!("{base}-{index}"),
            Lane::Live => format!("{base}-live-{index}"),
        }
    }
}

/// Run worker `index` of `lane` until shutdown. Errors only when it cannot start (no Redis).
pub async fn run_worker(
    shared: Arc<Shared>,
    lane: Lane,
    index: usize,
    mut shutdown: watch::Receiver<Shutdown>,
) -> Result<(), TranscodeError> {
    let name = lane.consumer_name(&shared.cfg.consumer_name, index);
    let mut consumer = shared
        .queue
        .consumer(&name, lane.streams())
        .await?
        .reclaiming(Reclaim {
            min_idle_ms: shared.cfg.reclaim_idle_ms,
            // A job that outlived this many deliveries is more likely to be killing its workers.
            max_deliveries: shared.cfg.max_attempts as usize + 2,
        });
    let block = Duration::from_millis(shared.cfg.job_block_ms);
    tracing::info!(consumer = %name, ?lane, "worker started");
    while *shutdown.borrow() == Shutdown::Running {
        let delivery = match consumer.next(block).await {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "reading the job queue failed");
                tokio::select! {
                    _ = tokio::time::sleep(QUEUE_ERROR_PAUSE) => {}
                    _ = stopped(&mut shutdown) => {}
                }
                continue;
            }
        };
        if consumer.is_poison(&delivery) {
            let reason = format!(
                "delivered {} times without finishing",
                delivery.times_delivered
            );
            fail(&shared, &consumer, &delivery, &reason, 0.0).await;
            continue;
        }
        // The job continues the upload's trace (the `traceparent` beside the job); its log
        // lines carry the trace id.
        let mut span = Span::continue_from(
            "transcoder.job",
            SpanKind::Consumer,
            delivery.traceparent.as_deref(),
        );
        span.attr("queue.stream", &delivery.stream);
        if let Ok(job) = &delivery.job {
            span.attr("job.id", &job.job_id);
            span.attr("video.id", &job.video_id);
            if trace_export::enabled() {
                // Where an edge's first origin fetch of the video continues the trace.
                let tp = span.context().traceparent();
                if let Err(e) = shared.queue.record_traceparent(&job.video_id, &tp).await {
                    tracing::debug!(error = %e, "could not record the job's traceparent");
                }
            }
        }
        let log_span = tracing::info_span!("job", trace_id = %span.trace_id());
        let job_run = handle(&shared, &consumer, delivery, &mut shutdown).instrument(log_span);
        crate::trace::scope(span.context().traceparent(), job_run).await;
        span.end();
    }
    tracing::info!(consumer = %name, "worker stopped");
    Ok(())
}

/// Resolves once shutdown has been requested (or the sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<Shutdown>) {
    while *shutdown.borrow_and_update() == Shutdown::Running {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn handle(
    shared: &Shared,
    consumer: &Consumer,
    d: Delivery,
    shutdown: &mut watch::Receiver<Shutdown>,
) {
    let job = match &d.job {
        Ok(job) => job.clone(),
        Err(reason) => {
            let reason = format!("undecodable job payload: {reason}");
            tracing::warn!(entry = %d.entry_id, %reason, "dead-lettering");
            Metrics::inc(&shared.metrics.jobs_failed);
            retry("dead-letter", || consumer.dead_letter(&d, &reason)).await;
            return;
        }
    };
    // A redelivered job whose ack was lost after it finished: nothing to do but ack.
    if let Ok(Some(status)) = shared.queue.job_status(&job.job_id).await {
        if status.state == JobState::Done && status.version == job.version {
            tracing::info!(job = %job.job_id, "already done; acknowledging the redelivery");
            Metrics::inc(&shared.metrics.jobs.already_done);
            retry("ack", || consumer.ack(&d)).await;
            return;
        }
    }
    if cancel_requested(shared, &job).await {
        tracing::info!(job = %job.job_id, "cancelled while queued; acknowledging it without running it");
        if job.live.is_none() {
            // A redelivered job may have published part of a run that died; a queued one has
            // nothing there and this finds nothing.
            discard_vod_output(
                &shared.store,
                &shared.queue,
                &job.job_id,
                &job.video_id,
                job.version,
                &[],
            )
            .await;
        }
        end_cancelled(shared, consumer, &d, &job, 0.0).await;
        return;
    }
    match wait_for_room(shared, consumer, &d, &job, shutdown).await {
        Room::Ready => {}
        Room::Shutdown => {
            tracing::info!(job = %job.job_id, "shutdown before the job had room; it will be redelivered");
            return;
        }
        Room::ClaimLost => {
            tracing::warn!(job = %job.job_id, "job reclaimed by another worker while waiting for room; leaving it");
            Metrics::inc(&shared.metrics.jobs.lost_claims);
            return;
        }
        Room::Cancelled => {
            tracing::info!(job = %job.job_id, "cancelled while waiting for room; acknowledging it without running it");
            end_cancelled(shared, consumer, &d, &job, 0.0).await;
            return;
        }
    }
    let live = job.live.is_some();
    let started = Instant::now();
    let _busy = shared.metrics.jobs.busy(live);
    tracing::info!(job = %job.job_id, video = %job.video_id, version = job.version, "job started");
    Metrics::inc(&shared.metrics.jobs_started);
    shared.metrics.jobs_running.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = shared
        .queue
        .set_state(&job, JobState::Running, 0.0, None)
        .await
    {
        tracing::warn!(job = %job.job_id, error = %e, "cannot record running state");
    }

    let (progress_tx, progress_rx) = watch::channel(0.0f64);
    let (stop_reporter, stop_rx) = oneshot::channel();
    let reporter = tokio::spawn(report_progress(
        shared.queue.clone(),
        job.clone(),
        progress_rx,
        stop_rx,
    ));
    // Keep other workers from reclaiming the job while it runs.
    let heartbeat =
        consumer.keep_claimed(&d, Duration::from_millis(shared.cfg.reclaim_idle_ms / 3));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let cancel_watch = tokio::spawn(watch_cancel(
        shared.queue.clone(),
        job.job_id.clone(),
        Duration::from_millis(shared.cfg.cancel_check_ms),
        cancel_tx,
    ));
    let control = JobControl::new(&shared.cfg, shared.queue.clone(), cancel_rx);

    // The attempts see the process's shutdown, and an abandon when the claim is lost.
    let (job_stop_tx, mut job_stop) = watch::channel(*shutdown.borrow());
    let queued_ms = StreamId::parse(&d.entry_id).map(|id| id.ms);
    let attempts = with_pickup_clock(
        queued_ms,
        Arc::clone(&shared.metrics.jobs),
        run_with_retries(shared, &job, &progress_tx, &mut job_stop, &control),
    );
    let result = tokio::select! {
        biased;
        r = attempts => r,
        never = forward_stop(shutdown, &heartbeat, &job_stop_tx) => match never {},
    };
    let lost = heartbeat.is_lost();

    // Stop the reporter and wait for it, so no late "running" write lands after the final
    // state below.
    let _ = stop_reporter.send(());
    let _ = reporter.await;
    cancel_watch.abort();
    drop(heartbeat);
    let last_progress = *progress_tx.borrow();
    shared.metrics.jobs_running.fetch_sub(1, Ordering::Relaxed);
    shared
        .metrics
        .jobs
        .observe_processing(live, started.elapsed().as_secs_f64());

    if lost {
        // Another worker owns the job now: its state, ack and publication are that worker's.
        tracing::warn!(
            job = %job.job_id, entry = %d.entry_id, finished = result.is_ok(),
            "job reclaimed by another worker; stopped without acknowledging it"
        );
        Metrics::inc(&shared.metrics.jobs.lost_claims);
        return;
    }
    match result {
        Ok(outcome) => {
            // Counters first: whoever sees `done` in Redis must find them updated.
            record_success(shared, &job, &outcome);
            Metrics::inc(&shared.metrics.jobs_done);
            retry("set done", || {
                shared.queue.set_state(&job, JobState::Done, 100.0, None)
            })
            .await;
            retry("ack", || consumer.ack(&d)).await;
        }
        Err(TranscodeError::Cancelled) => {
            tracing::info!(job = %job.job_id, "job cancelled by operator; ffmpeg stopped, partial output removed");
            end_cancelled(shared, consumer, &d, &job, last_progress).await;
        }
        Err(TranscodeError::Abandoned) => {
            tracing::info!(job = %job.job_id, "job abandoned for shutdown; it will be redelivered");
            Metrics::inc(&shared.metrics.jobs_abandoned);
            retry("set queued", || {
                shared.queue.set_state(&job, JobState::Queued, 0.0, None)
            })
            .await;
        }
        Err(e) => {
            // The full error (paths, ffprobe's and ffmpeg's lines) goes to the log only; the
            // job status and the dead letter get the short public text.
            tracing::warn!(job = %job.job_id, error = %e, "job failed");
            fail(shared, consumer, &d, &e.public_message(), last_progress).await
        }
    }
}

/// Pass the process's shutdown on to a job's attempts, and turn a lost claim into an abandon
/// (the attempt kills ffmpeg and returns). Never returns; the caller selects on it.
async fn forward_stop(
    shutdown: &mut watch::Receiver<Shutdown>,
    heartbeat: &ClaimHeartbeat,
    tx: &watch::Sender<Shutdown>,
) -> std::convert::Infallible {
    loop {
        tokio::select! {
            _ = heartbeat.lost() => break,
            changed = shutdown.changed() => match changed {
                Ok(()) => {
                    tx.send_replace(*shutdown.borrow_and_update());
                }
                Err(_) => break,
            },
        }
    }
    tx.send_replace(Shutdown::Abandon);
    std::future::pending().await
}

/// Whether a job may start, after [`wait_for_room`].
enum Room {
    Ready,
    /// Shutdown came first: the job stays unacknowledged for redelivery.
    Shutdown,
    /// Another worker reclaimed the job meanwhile.
    ClaimLost,
    /// An operator cancelled the job while it was held.
    Cancelled,
}

/// Hold a VOD job until `work_dir` has `min_free_bytes` free beyond its source's size (checked
/// every `retry_backoff_ms`, the claim kept meanwhile, never dead-lettered for it), unless
/// shutdown, a lost claim or a cancel comes first.
async fn wait_for_room(
    shared: &Shared,
    consumer: &Consumer,
    d: &Delivery,
    job: &TranscodeJob,
    shutdown: &mut watch::Receiver<Shutdown>,
) -> Room {
    let cfg = &shared.cfg;
    if cfg.min_free_bytes == 0 || job.live.is_some() {
        return Room::Ready;
    }
    let source_size = match shared.store.head(&job.source_key).await {
        Ok(meta) => meta.map(|m| m.size),
        Err(_) => None, // the attempt reports store trouble itself
    };
    let claim = consumer.keep_claimed(d, Duration::from_millis(cfg.reclaim_idle_ms / 3));
    let pause = Duration::from_millis(cfg.retry_backoff_ms.max(100));
    loop {
        match work_dir::available_bytes(&cfg.work_dir) {
            Ok(free) if work_dir::has_room(free, cfg.min_free_bytes, source_size) => {
                return Room::Ready
            }
            Ok(free) => {
                Metrics::inc(&shared.metrics.jobs_deferred_no_space);
                tracing::warn!(
                    job = %job.job_id, free, min_free_bytes = cfg.min_free_bytes, ?source_size,
                    work_dir = %cfg.work_dir.display(),
                    "too little free space in work_dir; job not started, checking again later"
                );
            }
            Err(e) => {
                // Cannot tell: let the attempt run (a full disk fails it as a transient error).
                tracing::warn!(job = %job.job_id, error = %e, "cannot read free space of work_dir");
                return Room::Ready;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped(shutdown) => return Room::Shutdown,
            _ = claim.lost() => return Room::ClaimLost,
        }
        if cancel_requested(shared, job).await {
            return Room::Cancelled;
        }
    }
}

/// Attempts until success, a permanent error, `max_attempts`, a cancel, or shutdown during
/// back-off.
async fn run_with_retries(
    shared: &Shared,
    job: &TranscodeJob,
    progress: &watch::Sender<f64>,
    shutdown: &mut watch::Receiver<Shutdown>,
    control: &JobControl,
) -> Result<JobOutcome, TranscodeError> {
    let cfg = &shared.cfg;
    if let Some(live) = &job.live {
        // Live runs once: a retry would restart the segment numbering under the same version.
        let result = run_live(
            job,
            &live.pull_url,
            cfg,
            &shared.store,
            shutdown,
            control,
            &shared.metrics.live,
        )
        .await;
        if let Err(e) = &result {
            count_watchdog_stop(shared, e);
        }
        return result;
    }
    let mut attempt = 1u32;
    loop {
        let err = match run_attempt(job, cfg, &shared.store, progress, shutdown, control).await {
            Ok(outcome) => return Ok(outcome),
            Err(e) => e,
        };
        count_watchdog_stop(shared, &err);
        if matches!(err, TranscodeError::Abandoned | TranscodeError::Cancelled)
            || err.is_permanent()
            || attempt >= cfg.max_attempts
        {
            return Err(err);
        }
        let backoff = Duration::from_millis(
            cfg.retry_backoff_ms
                .saturating_mul(1u64 << (attempt - 1).min(16)),
        );
        tracing::warn!(
            job = %job.job_id, attempt, max = cfg.max_attempts, error = %err, ?backoff,
            "transient failure; retrying"
        );
        Metrics::inc(&shared.metrics.jobs_retried);
        let mut cancel = control.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            // A job between attempts has nothing to finish: give it up.
            _ = stopped(shutdown) => return Err(TranscodeError::Abandoned),
            Ok(_) = cancel.wait_for(|c| *c) => return Err(TranscodeError::Cancelled),
        }
        attempt += 1;
    }
}

/// Count an attempt the watchdog stopped for a stall or its wall-clock limit.
fn count_watchdog_stop(shared: &Shared, err: &TranscodeError) {
    match err {
        TranscodeError::Stalled { .. } => Metrics::inc(&shared.metrics.job_control.stalled),
        TranscodeError::TimedOut { .. } => Metrics::inc(&shared.metrics.job_control.timed_out),
        _ => {}
    }
}

/// Whether an operator asked to cancel `job` (a Redis error counts as no: the running job
/// checks again).
async fn cancel_requested(shared: &Shared, job: &TranscodeJob) -> bool {
    match shared.queue.cancel_requested(&job.job_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(job = %job.job_id, error = %e, "cannot read the cancel flag");
            false
        }
    }
}

/// Read the job's cancel flag every `every` until it is set, then tell the pipeline. Aborted
/// when the job ends.
async fn watch_cancel(queue: Queue, job_id: String, every: Duration, tx: watch::Sender<bool>) {
    loop {
        tokio::time::sleep(every).await;
        match queue.cancel_requested(&job_id).await {
            Ok(true) => {
                tracing::info!(job = %job_id, "cancel requested");
                tx.send_replace(true);
                return;
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(job = %job_id, error = %e, "reading the cancel flag failed"),
        }
    }
}

/// End a cancelled job: state `cancelled` with [`CANCELLED_ERROR`], then XACK (no retry, no
/// dead letter).
async fn end_cancelled(
    shared: &Shared,
    consumer: &Consumer,
    d: &Delivery,
    job: &TranscodeJob,
    progress: f64,
) {
    Metrics::inc(&shared.metrics.job_control.cancelled);
    retry("set cancelled", || {
        shared
            .queue
            .set_state(job, JobState::Cancelled, progress, Some(CANCELLED_ERROR))
    })
    .await;
    retry("ack", || consumer.ack(d)).await;
}

fn record_success(shared: &Shared, job: &TranscodeJob, outcome: &JobOutcome) {
    let m = &shared.metrics;
    Metrics::add_seconds(&m.transcode_micros, outcome.transcode_seconds);
    Metrics::add_seconds(&m.media_micros, outcome.media_seconds);
    for r in &outcome.renditions {
        m.segments_uploaded
            .fetch_add(r.segments.len() as u64, Ordering::Relaxed);
        m.bytes_uploaded
            .fetch_add(r.total_bytes(), Ordering::Relaxed);
    }
    let speed = if outcome.transcode_seconds > 0.0 {
        outcome.media_seconds / outcome.transcode_seconds
    } else {
        0.0
    };
    if job.live.is_none() && speed > 0.0 {
        m.job_control.set_ffmpeg_speed(speed);
    }
    tracing::info!(
        job = %job.job_id,
        media_seconds = outcome.media_seconds,
        transcode_seconds = format!("{:.2}", outcome.transcode_seconds),
        speed = format!("{speed:.2}x"),
        renditions = ?outcome.renditions.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "job done"
    );
}

/// Mark failed (when the payload names a job) and dead-letter. `reason` is public: it is shown
/// to the uploader ([`TranscodeError::public_message`]), so it names no path of this host.
async fn fail(shared: &Shared, consumer: &Consumer, d: &Delivery, reason: &str, progress: f64) {
    tracing::warn!(entry = %d.entry_id, %reason, "job failed; dead-lettering");
    Metrics::inc(&shared.metrics.jobs_failed);
    if let Ok(job) = &d.job {
        retry("set failed", || {
            shared
                .queue
                .set_state(job, JobState::Failed, progress, Some(reason))
        })
        .await;
    }
    retry("dead-letter", || consumer.dead_letter(d, reason)).await;
}

/// Write progress to Redis at most every [`PROGRESS_INTERVAL`] until stopped. The stop signal
/// is only checked between writes, so once the caller has awaited this task no write is in
/// flight.
async fn report_progress(
    queue: Queue,
    job: TranscodeJob,
    mut rx: watch::Receiver<f64>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let p = *rx.borrow_and_update();
        if let Err(e) = queue.set_state(&job, JobState::Running, p, None).await {
            tracing::debug!(job = %job.job_id, error = %e, "progress update failed");
        }
        tokio::select! {
            biased;
            _ = &mut stop => return,
            _ = tokio::time::sleep(PROGRESS_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vod_workers_and_live_slots_read_disjoint_streams() {
        let (vod, live) = (Lane::Vod.streams(), Lane::Live.streams());
        assert_eq!(vod, ["rc:jobs:high", "rc:jobs:normal", "rc:jobs:low"]);
        assert_eq!(live, ["rc:jobs:live"]);
        assert!(vod.iter().all(|s| !live.contains(s)));
    }

    #[test]
    fn consumer_names_differ_between_lanes() {
        assert_eq!(Lane::Vod.consumer_name("h-1", 0), "h-1-0");
        assert_eq!(Lane::Live.consumer_name("h-1", 0), "h-1-live-0");
        assert_ne!(
            Lane::Vod.consumer_name("h-1", 1),
            Lane::Live.consumer_name("h-1", 1)
        );
    }
}
