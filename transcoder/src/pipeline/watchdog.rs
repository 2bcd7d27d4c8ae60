//! Job control while ffmpeg runs: stall detection, the wall-clock limit, operator cancel.
//!
//! [`ProgressClock`] is the decision, without I/O (time comes in as `now`): ffmpeg counts as
//! making progress when a stats line shows its frame count or output time beyond anything seen
//! before, or when it wrote more bytes into the renditions' FIFOs than before; repeated lines
//! with the same values (ffmpeg keeps printing them while it waits) do not count. The bytes
//! matter: ffmpeg prints no stats line at all until every output file has its header, and the
//! poster (a frame from 10 % in) and the thumbnail sheets (a sheet per 100 tiles) are outputs
//! that start minutes into a long source while the renditions stream from the first second. It says when the run has stalled (`stall` without progress, counted from the
//! spawn until the first advance) or outlived its wall-clock deadline. [`Watchdog`] adds the
//! cancel flag (a `watch` channel the worker sets) and the timers; a pipeline selects on
//! [`Watchdog::stopped`] next to ffmpeg's updates and kills ffmpeg with the [`Stop`] it gets.
//!
//! What happens next is the pipeline's business: a VOD attempt discards everything it
//! published ([`discard_vod_output`]); a live job ends its stream as when the publisher
//! leaves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::keys;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::TranscoderConfig;
use crate::error::TranscodeError;

/// Why the watchdog stopped ffmpeg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// No progress for this long.
    Stalled(Duration),
    /// The wall-clock limit, which was this long, passed.
    TimedOut(Duration),
    /// An operator cancelled the job.
    Cancelled,
}

impl Stop {
    /// The job's error for this stop.
    pub fn into_error(self) -> TranscodeError {
        match self {
            Stop::Stalled(d) => TranscodeError::Stalled {
                seconds: d.as_secs(),
            },
            Stop::TimedOut(d) => TranscodeError::TimedOut {
                limit_secs: d.as_secs(),
            },
            Stop::Cancelled => TranscodeError::Cancelled,
        }
    }
}

/// How long a VOD attempt's ffmpeg may run: `factor` × the media duration + `floor_secs`.
/// `None` (no limit) for a source of unknown duration.
pub fn wall_clock_limit(
    factor: f64,
    floor_secs: u64,
    media_seconds: Option<f64>,
) -> Option<Duration> {
    let media = media_seconds.filter(|d| d.is_finite() && *d > 0.0)?;
    let secs = (factor * media).min(1e9) + floor_secs as f64;
    Some(Duration::from_secs_f64(secs.ceil()))
}

/// Progress bookkeeping of one ffmpeg run (see the module docs).
#[derive(Debug, Clone)]
pub struct ProgressClock {
    stall: Duration,
    /// The wall-clock deadline and the limit it came from.
    deadline: Option<(Instant, Duration)>,
    last_advance: Instant,
    best_frame: u32,
    best_out_time: f64,
    best_output_bytes: u64,
}

impl ProgressClock {
    /// A run spawned at `now`, stalled after `stall` without progress, stopped `limit` after
    /// `now` when given.
    pub fn new(stall: Duration, limit: Option<Duration>, now: Instant) -> Self {
        Self {
            stall,
            deadline: limit.map(|l| (now + l, l)),
            last_advance: now,
            best_frame: 0,
            best_out_time: f64::NEG_INFINITY,
            best_output_bytes: 0,
        }
    }

    /// The renditions' output so far (bytes ffmpeg wrote into their FIFOs) at `now`; true when
    /// it grew.
    pub fn observe_output(&mut self, bytes: u64, now: Instant) -> bool {
        if bytes > self.best_output_bytes {
            self.best_output_bytes = bytes;
            self.last_advance = now;
            return true;
        }
        false
    }

    /// A stats line at `now`; true when it shows progress.
    pub fn observe(&mut self, frame: u32, out_time: Option<f64>, now: Instant) -> bool {
        let mut advanced = false;
        if frame > self.best_frame {
            self.best_frame = frame;
            advanced = true;
        }
        if let Some(t) = out_time.filter(|t| t.is_finite()) {
            if t > self.best_out_time {
                // The first readable time is progress too: ffmpeg is past its start-up.
                self.best_out_time = t;
                advanced = true;
            }
        }
        if advanced {
            self.last_advance = now;
        }
        advanced
    }

    /// When [`ProgressClock::check`] can next say stop, barring progress before then.
    pub fn due(&self) -> Instant {
        let stall_at = self.last_advance + self.stall;
        match self.deadline {
            Some((d, _)) => d.min(stall_at),
            None => stall_at,
        }
    }

    /// Whether the run must stop at `now`. The wall-clock limit wins when both apply: it is
    /// the harder fact.
    pub fn check(&self, now: Instant) -> Option<Stop> {
        if let Some((deadline, limit)) = self.deadline {
            if now >= deadline {
                return Some(Stop::TimedOut(limit));
            }
        }
        (now >= self.last_advance + self.stall).then_some(Stop::Stalled(self.stall))
    }
}

/// The limits and the cancel signal of one job, from the worker to the pipeline.
#[derive(Clone)]
pub struct JobControl {
    /// Becomes true once an operator has asked for the job to be cancelled.
    pub cancel: watch::Receiver<bool>,
    pub stall_timeout: Duration,
    pub wall_clock_factor: f64,
    pub wall_clock_floor_secs: u64,
    /// For discarding a stopped VOD attempt's event streams.
    pub queue: Queue,
}

impl JobControl {
    pub fn new(cfg: &TranscoderConfig, queue: Queue, cancel: watch::Receiver<bool>) -> Self {
        Self {
            cancel,
            stall_timeout: Duration::from_secs(cfg.stall_timeout_secs),
            wall_clock_factor: cfg.max_wall_clock_factor,
            wall_clock_floor_secs: cfg.wall_clock_floor_secs,
            queue,
        }
    }

    /// Whether a cancel has been requested.
    pub fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// The watchdog of a VOD run of a source lasting `media_seconds`, started now; `output`
    /// counts the bytes ffmpeg writes into the renditions' FIFOs.
    pub fn vod_watchdog(&self, media_seconds: Option<f64>, output: Arc<AtomicU64>) -> Watchdog {
        let limit = wall_clock_limit(
            self.wall_clock_factor,
            self.wall_clock_floor_secs,
            media_seconds,
        );
        Watchdog {
            clock: Mutex::new(ProgressClock::new(
                self.stall_timeout,
                limit,
                Instant::now(),
            )),
            cancel: self.cancel.clone(),
            output,
        }
    }

    /// The watchdog of a live run, started now: no wall-clock limit, and `input_timeout` more
    /// before a stall, so that ffmpeg's own input timeout (a silent publisher) ends the stream
    /// first, as it did before stall detection.
    pub fn live_watchdog(&self, input_timeout: Duration, output: Arc<AtomicU64>) -> Watchdog {
        let stall = self.stall_timeout + input_timeout;
        Watchdog {
            clock: Mutex::new(ProgressClock::new(stall, None, Instant::now())),
            cancel: self.cancel.clone(),
            output,
        }
    }
}

/// [`ProgressClock`] with its timers and the cancel signal.
#[derive(Debug)]
pub struct Watchdog {
    /// Locked only between awaits (stats lines and timer checks).
    clock: Mutex<ProgressClock>,
    cancel: watch::Receiver<bool>,
    /// Bytes ffmpeg wrote into the renditions' FIFOs so far (the readers count them).
    output: Arc<AtomicU64>,
}

/// How often the output counter is read while nothing else happens, as a share of the stall
/// timeout: a stall is then found between `stall` and `stall * (1 + 1/OUTPUT_POLLS)` after
/// the last byte.
const OUTPUT_POLLS: u32 = 4;

impl Watchdog {
    fn clock(&self) -> MutexGuard<'_, ProgressClock> {
        // A panic while holding it cannot leave the clock half-updated (plain field writes).
        self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stats line from ffmpeg.
    pub fn observe(&mut self, frame: u32, out_time: Option<f64>) {
        self.clock().observe(frame, out_time, Instant::now());
    }

    /// Resolves when ffmpeg must be stopped. Meant for a `select!` loop: recreated on every
    /// turn, so progress observed in between moves the stall deadline.
    pub async fn stopped(&self) -> Stop {
        let mut cancel = self.cancel.clone();
        let cancelled = async move {
            // A dropped sender (`Err`) means no cancel can come any more.
            if cancel.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let timers = async {
            loop {
                let (due, poll) = {
                    let c = self.clock();
                    (c.due(), c.stall / OUTPUT_POLLS)
                };
                let wake = due.min(Instant::now() + poll.max(Duration::from_millis(100)));
                tokio::time::sleep_until(wake).await;
                let now = Instant::now();
                let mut c = self.clock();
                c.observe_output(self.output.load(Ordering::Relaxed), now);
                if let Some(stop) = c.check(now) {
                    return stop;
                }
            }
        };
        tokio::select! {
            () = cancelled => Stop::Cancelled,
            stop = timers => stop,
        }
    }
}

/// Remove everything a stopped VOD attempt of `video`/`version` published: every object under
/// `v/{video}/{version}/`, and the event streams of `renditions` and of every rendition found
/// among those objects (a run that died before this one may have had another ladder) with the
/// version's progressive-playback hash. The video's current master (`v/{video}/master.m3u8`)
/// is outside that prefix and is never touched: a VOD job switches it only when it completes.
/// Errors are logged, not returned: the job's outcome is already decided, and a leftover is
/// only an orphaned object of a version nobody points at.
pub async fn discard_vod_output(
    store: &ObjectStore,
    queue: &Queue,
    job_id: &str,
    video: &str,
    version: u32,
    renditions: &[String],
) {
    let prefix = keys::version_prefix(video, version);
    let objects = match store.list(&prefix).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(job = %job_id, %prefix, error = %e, "cannot list the stopped attempt's objects");
            Vec::new()
        }
    };
    let mut names: Vec<String> = renditions.to_vec();
    for key in &objects {
        if let Some((name, _)) = key.strip_prefix(&prefix).and_then(|k| k.split_once('/')) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    if let Err(e) = queue.discard_version_events(video, version, &names).await {
        tracing::warn!(job = %job_id, error = %e, "cannot remove the stopped attempt's event streams");
    }
    let mut removed = 0usize;
    for key in &objects {
        match store.delete(key).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(job = %job_id, %key, error = %e, "cannot delete an object of the stopped attempt")
            }
        }
    }
    if removed > 0 {
        tracing::info!(job = %job_id, %prefix, removed, "removed the stopped attempt's output");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn output_bytes_are_progress_when_ffmpeg_prints_no_stats() {
        let t0 = Instant::now();
        let mut c = ProgressClock::new(10 * S, None, t0);
        // No stats line for 25 s (outputs not all started), the renditions' bytes growing.
        assert!(c.observe_output(4096, t0 + 8 * S));
        assert!(c.observe_output(9000, t0 + 16 * S));
        assert_eq!(c.check(t0 + 25 * S), None);
        // The same count again is no progress: stalled 10 s after the last growth.
        assert!(!c.observe_output(9000, t0 + 20 * S));
        assert_eq!(c.check(t0 + 26 * S), Some(Stop::Stalled(10 * S)));
    }

    #[test]
    fn stalls_only_when_nothing_advances() {
        let t0 = Instant::now();
        let mut c = ProgressClock::new(10 * S, None, t0);
        assert_eq!(c.due(), t0 + 10 * S);
        assert_eq!(c.check(t0 + 9 * S), None);
        // Start-up counts: nothing at all for the stall time is a stall.
        assert_eq!(c.check(t0 + 10 * S), Some(Stop::Stalled(10 * S)));
        // `N/A` times with no frames are not progress; the first frame is.
        assert!(!c.observe(0, None, t0 + 2 * S));
        assert!(c.observe(1, None, t0 + 3 * S));
        assert!(c.observe(1, Some(0.0), t0 + 4 * S));
        assert_eq!(c.due(), t0 + 14 * S);
        // The same stats line again (ffmpeg waiting) does not move the deadline.
        assert!(!c.observe(1, Some(0.0), t0 + 8 * S));
        assert_eq!(c.check(t0 + 13 * S), None);
        assert_eq!(c.check(t0 + 14 * S), Some(Stop::Stalled(10 * S)));
        // Audio-only lines have frame 0 but a moving time.
        assert!(c.observe(0, Some(0.5), t0 + 13 * S));
        assert_eq!(c.check(t0 + 22 * S), None);
        // A time that goes back (ffmpeg's first negative timestamps) is not progress.
        assert!(!c.observe(1, Some(0.2), t0 + 20 * S));
        assert_eq!(c.check(t0 + 23 * S), Some(Stop::Stalled(10 * S)));
    }

    #[test]
    fn the_wall_clock_limit_holds_even_with_progress() {
        let t0 = Instant::now();
        let mut c = ProgressClock::new(10 * S, Some(25 * S), t0);
        for i in 1..=30u32 {
            c.observe(i * 30, Some(f64::from(i)), t0 + i * S);
        }
        assert_eq!(c.due(), t0 + 25 * S);
        assert_eq!(c.check(t0 + 24 * S), None);
        assert_eq!(c.check(t0 + 25 * S), Some(Stop::TimedOut(25 * S)));
        // Stalled and past the limit: the limit is reported.
        let c = ProgressClock::new(S, Some(2 * S), t0);
        assert_eq!(c.check(t0 + 3 * S), Some(Stop::TimedOut(2 * S)));
    }

    #[test]
    fn wall_clock_limit_is_factor_times_duration_plus_floor() {
        assert_eq!(
            wall_clock_limit(10.0, 120, Some(60.0)),
            Some(Duration::from_secs(720))
        );
        assert_eq!(
            wall_clock_limit(0.1, 1, Some(10.0)),
            Some(Duration::from_secs(2))
        );
        // Rounded up to whole seconds.
        assert_eq!(
            wall_clock_limit(1.5, 0, Some(3.1)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(wall_clock_limit(10.0, 120, None), None);
        assert_eq!(wall_clock_limit(10.0, 120, Some(f64::NAN)), None);
        assert_eq!(wall_clock_limit(10.0, 120, Some(0.0)), None);
    }

    #[test]
    fn stops_read_as_the_job_errors() {
        assert_eq!(
            Stop::Stalled(60 * S).into_error().public_message(),
            "ffmpeg made no progress for 60 s"
        );
        assert_eq!(
            Stop::TimedOut(720 * S).into_error().public_message(),
            "transcoding took longer than its limit of 720 s"
        );
        assert!(matches!(
            Stop::Cancelled.into_error(),
            TranscodeError::Cancelled
        ));
    }

    #[tokio::test]
    async fn watchdog_resolves_on_cancel_or_on_its_timers() {
        let ms = Duration::from_millis;
        let (tx, rx) = watch::channel(false);
        let w = Watchdog {
            clock: Mutex::new(ProgressClock::new(ms(100), None, Instant::now())),
            cancel: rx.clone(),
            output: Arc::default(),
        };
        let started = Instant::now();
        assert_eq!(w.stopped().await, Stop::Stalled(ms(100)));
        assert!(started.elapsed() >= ms(100));
        let w = Watchdog {
            clock: Mutex::new(ProgressClock::new(60 * S, None, Instant::now())),
            cancel: rx,
            output: Arc::default(),
        };
        let stopped = w.stopped();
        tokio::pin!(stopped);
        assert!(tokio::time::timeout(ms(50), &mut stopped).await.is_err());
        tx.send_replace(true);
        assert_eq!(stopped.await, Stop::Cancelled);
        // A watchdog whose cancel sender is gone still stops on its timers.
        let (tx, rx) = watch::channel(false);
        drop(tx);
        let w = Watchdog {
            clock: Mutex::new(ProgressClock::new(ms(50), Some(ms(80)), Instant::now())),
            cancel: rx,
            output: Arc::default(),
        };
        assert_eq!(w.stopped().await, Stop::Stalled(ms(50)));
    }
}
