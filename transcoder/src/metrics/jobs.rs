//! Job-level metrics kept in process (the queue's own gauges are read from Redis at scrape
//! time, [`crate::metrics::queue`]):
//!
//! - `ringcast_transcoder_job_outcomes_total{outcome}`: how deliveries ended, one family over
//!   the existing counters (`done`, `failed` = marked failed and dead-lettered, `retried` =
//!   attempts retried, `abandoned` = left for redelivery at shutdown) plus `lost_claim` (another
//!   worker reclaimed the job while this one stalled: it stopped without acking) and
//!   `already_done` (a redelivery of a finished job, acked without running).
//! - `ringcast_transcoder_job_processing_seconds{lane}`: histogram of the time a worker spent on
//!   a job, from taking it up (room in `work_dir` found) to its outcome, by lane (`vod`,
//!   `live`; a live job lasts as long as its stream).
//! - `ringcast_transcoder_job_pickup_seconds`: histogram of the time from a job's `XADD` (the
//!   millisecond part of its stream entry id) to its ffmpeg starting, recorded once per
//!   delivery (a retry's ffmpeg does not count again). The pipeline reports the start through
//!   [`ffmpeg_started`], which reads the clock the worker put in the job's task
//!   ([`with_pickup_clock`]): a task-local rather than one more argument threaded through
//!   every pipeline function.
//! - `ringcast_transcoder_workers_busy{lane}` and `ringcast_transcoder_workers{lane}`: workers
//!   holding a job now, and how many the process runs (`workers`, `live_slots`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use ringcast_proto::job::now_ms;
use ringcast_proto::prometheus::{Kind, Writer};

use crate::metrics::Metrics;

/// Upper bounds (s) of the pickup latency buckets: sub-second steps where an idle pool picks
/// jobs up, then minutes and hours for a backlog.
pub const PICKUP_BUCKETS: [f64; 20] = [
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 1800.0, 3600.0,
];

/// Upper bounds (s) of the processing time buckets.
pub const PROCESSING_BUCKETS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0, 14400.0,
];

/// The lanes, in label order: index 0 VOD, 1 live.
const LANES: [&str; 2] = ["vod", "live"];

fn lane_index(live: bool) -> usize {
    usize::from(live)
}

pub use ringcast_proto::prometheus::Histogram;

/// The job-level metrics of the module doc.
#[derive(Debug)]
pub struct JobMetrics {
    processing: [Histogram; 2],
    pickup: Histogram,
    busy: [AtomicI64; 2],
    capacity: [AtomicU64; 2],
    /// Jobs given up because another worker reclaimed them.
    pub lost_claims: AtomicU64,
    /// Redeliveries of finished jobs, acked without running.
    pub already_done: AtomicU64,
}

impl Default for JobMetrics {
    fn default() -> Self {
        Self {
            processing: [
                Histogram::new(&PROCESSING_BUCKETS),
                Histogram::new(&PROCESSING_BUCKETS),
            ],
            pickup: Histogram::new(&PICKUP_BUCKETS),
            busy: [AtomicI64::new(0), AtomicI64::new(0)],
            capacity: [AtomicU64::new(0), AtomicU64::new(0)],
            lost_claims: AtomicU64::new(0),
            already_done: AtomicU64::new(0),
        }
    }
}

impl JobMetrics {
    /// How many workers the process runs in each lane.
    pub fn set_capacity(&self, vod: usize, live: usize) {
        self.capacity[0].store(vod as u64, Ordering::Relaxed);
        self.capacity[1].store(live as u64, Ordering::Relaxed);
    }

    /// Mark a worker of the lane busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>, live: bool) -> BusyGuard {
        self.busy[lane_index(live)].fetch_add(1, Ordering::Relaxed);
        BusyGuard {
            metrics: Arc::clone(self),
            live,
        }
    }

    pub fn observe_processing(&self, live: bool, seconds: f64) {
        self.processing[lane_index(live)].observe(seconds);
    }

    pub fn observe_pickup(&self, seconds: f64) {
        self.pickup.observe(seconds);
    }

    /// Pickup latencies recorded so far.
    pub fn pickups(&self) -> u64 {
        self.pickup.count()
    }

    /// Append the families of the module doc; `m` holds the older outcome counters.
    pub fn render(&self, w: &mut Writer, m: &Metrics) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let outcomes = [
            ("done", get(&m.jobs_done)),
            ("failed", get(&m.jobs_failed)),
            ("retried", get(&m.jobs_retried)),
            ("abandoned", get(&m.jobs_abandoned)),
            ("lost_claim", get(&self.lost_claims)),
            ("already_done", get(&self.already_done)),
            ("cancelled", get(&m.job_control.cancelled)),
        ];
        let name = "ringcast_transcoder_job_outcomes_total";
        w.family(
            name,
            "How job deliveries ended (retried counts attempts).",
            Kind::Counter,
        );
        for (outcome, n) in outcomes {
            w.sample(name, &[("outcome", outcome)], n);
        }
        let name = "ringcast_transcoder_job_processing_seconds";
        w.family(
            name,
            "Seconds a worker spent on a job, from taking it up to its outcome, by lane.",
            Kind::Histogram,
        );
        for (i, lane) in LANES.iter().enumerate() {
            self.processing[i].samples(w, name, &[("lane", lane)]);
        }
        let name = "ringcast_transcoder_job_pickup_seconds";
        w.family(
            name,
            "Seconds from a job's XADD (its stream entry id) to its ffmpeg starting.",
            Kind::Histogram,
        );
        self.pickup.samples(w, name, &[]);
        for (name, help, values) in [
            (
                "ringcast_transcoder_workers_busy",
                "Workers holding a job now, by lane.",
                [
                    self.busy[0].load(Ordering::Relaxed).max(0) as u64,
                    self.busy[1].load(Ordering::Relaxed).max(0) as u64,
                ],
            ),
            (
                "ringcast_transcoder_workers",
                "Workers this process runs, by lane (workers, live_slots).",
                [get(&self.capacity[0]), get(&self.capacity[1])],
            ),
        ] {
            w.family(name, help, Kind::Gauge);
            for (i, lane) in LANES.iter().enumerate() {
                w.sample(name, &[("lane", lane)], values[i]);
            }
        }
    }
}

/// A busy worker of one lane; dropping it frees the worker in the gauge.
pub struct BusyGuard {
    metrics: Arc<JobMetrics>,
    live: bool,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.metrics.busy[lane_index(self.live)].fetch_sub(1, Ordering::Relaxed);
    }
}

/// When the job running in this task was queued, and whether its pickup was recorded.
struct PickupClock {
    queued_ms: u64,
    recorded: AtomicBool,
    metrics: Arc<JobMetrics>,
}

tokio::task_local! {
    static PICKUP: PickupClock;
}

/// Run a job's attempts (`fut`) with its pickup clock: `queued_ms` is its `XADD` time (`None`
/// when the entry id does not carry one: nothing is recorded).
pub async fn with_pickup_clock<F: Future>(
    queued_ms: Option<u64>,
    metrics: Arc<JobMetrics>,
    fut: F,
) -> F::Output {
    let clock = PickupClock {
        queued_ms: queued_ms.unwrap_or(0),
        recorded: AtomicBool::new(queued_ms.is_none()),
        metrics,
    };
    PICKUP.scope(clock, fut).await
}

/// The pipeline started ffmpeg for the job of this task: record its pickup latency, once per
/// delivery. A no-op outside [`with_pickup_clock`] (tools, tests).
pub fn ffmpeg_started() {
    let _ = PICKUP.try_with(|c| {
        if !c.recorded.swap(true, Ordering::Relaxed) {
            let secs = now_ms().saturating_sub(c.queued_ms) as f64 / 1000.0;
            c.metrics.observe_pickup(secs);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_with_labels() {
        let m = Metrics::default();
        m.jobs.observe_processing(false, 1.5);
        m.jobs.observe_processing(false, 50_000.0);
        m.jobs.observe_processing(true, 0.5);
        let mut w = Writer::default();
        m.jobs.render(&mut w, &m);
        let text = w.finish();
        let p = "ringcast_transcoder_job_processing_seconds";
        assert!(text.contains(&format!("{p}_bucket{{lane=\"vod\",le=\"1\"}} 0\n")));
        assert!(text.contains(&format!("{p}_bucket{{lane=\"vod\",le=\"2\"}} 1\n")));
        assert!(text.contains(&format!("{p}_bucket{{lane=\"vod\",le=\"+Inf\"}} 2\n")));
        assert!(text.contains(&format!("{p}_count{{lane=\"vod\"}} 2\n")));
        assert!(text.contains(&format!("{p}_sum{{lane=\"live\"}} 0.500000\n")));
        assert!(text.contains("ringcast_transcoder_job_pickup_seconds_count 0\n"));
        assert!(text.contains("ringcast_transcoder_job_outcomes_total{outcome=\"done\"} 0\n"));
    }

    #[tokio::test]
    async fn pickup_is_recorded_once_per_job_and_only_inside_a_clock() {
        let jobs = Arc::new(JobMetrics::default());
        ffmpeg_started();
        assert_eq!(jobs.pickups(), 0);
        let queued = now_ms() - 1500;
        with_pickup_clock(Some(queued), Arc::clone(&jobs), async {
            ffmpeg_started();
            ffmpeg_started(); // a retry's ffmpeg
        })
        .await;
        assert_eq!(jobs.pickups(), 1);
        let mut w = Writer::default();
        jobs.pickup.samples(&mut w, "p", &[]);
        let text = w.finish();
        assert!(text.contains("p_bucket{le=\"1\"} 0\n"), "{text}");
        assert!(text.contains("p_bucket{le=\"2\"} 1\n"), "{text}");
        with_pickup_clock(None, Arc::clone(&jobs), async { ffmpeg_started() }).await;
        assert_eq!(jobs.pickups(), 1);
    }

    #[test]
    fn busy_workers_are_counted_per_lane() {
        let jobs = Arc::new(JobMetrics::default());
        let a = jobs.busy(false);
        let _b = jobs.busy(true);
        let _c = jobs.busy(true);
        assert_eq!(jobs.busy[0].load(Ordering::Relaxed), 1);
        assert_eq!(jobs.busy[1].load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(jobs.busy[0].load(Ordering::Relaxed), 0);
    }
}
