//! The queue's gauges, read from Redis when `/metrics` is scraped ([`Queue::stats`]), and what
//! `/readyz` checks ([`Probes::readiness`], in the shape every service shares:
//! `ringcast_proto::health`). Every Redis and store call is bounded by
//! [`PROBE_TIMEOUT`]: a Redis outage makes a scrape report `ringcast_transcoder_redis_up 0`
//! (and no queue gauges) instead of hanging it.
//!
//! Gauges, labelled `priority` = the stream's suffix (`high`, `normal`, `low`, `live`):
//! - `ringcast_transcoder_queue_depth`: entries waiting for a worker (not yet delivered);
//! - `ringcast_transcoder_queue_pending`: delivered and not acknowledged (running, or held by a
//!   dead worker until reclaimed);
//! - `ringcast_transcoder_queue_oldest_age_seconds`: age of the oldest waiting entry, from its
//!   id's `XADD` time (0 when none waits);
//! - `ringcast_transcoder_queue_pending_max_idle_seconds`: the longest a pending entry has gone
//!   without a heartbeat (grows on a job whose worker died, until it is reclaimed);
//! - `ringcast_transcoder_dead_letters`: length of `rc:jobs:dlq` (no label).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringcast_proto::health;

use ringcast_infra::queue::inspect::QueueStats;
use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::now_ms;
use ringcast_proto::prometheus::{Kind, Writer};

use crate::pipeline::work_dir;

/// Bound on each Redis or store call of a scrape or readiness check.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the scrape-time gauges and `/readyz` look at.
#[derive(Clone)]
pub struct Probes {
    pub queue: Queue,
    pub store: ObjectStore,
    pub work_dir: PathBuf,
    /// `min_free_bytes`: less free space under `work_dir` makes the process unready.
    pub min_free_bytes: u64,
    /// Job workers (both lanes) still running, and how many were started.
    pub workers: Arc<WorkerCount>,
    /// Set at the first SIGTERM/SIGINT: no new jobs, `/readyz` answers 503.
    pub draining: Arc<AtomicBool>,
}

/// How many job workers were started and how many of them still run.
#[derive(Debug, Default)]
pub struct WorkerCount {
    pub expected: AtomicUsize,
    pub alive: AtomicUsize,
}

impl WorkerCount {
    /// Count one more started worker; it counts as alive until the guard drops.
    pub fn started(self: &Arc<Self>) -> WorkerGuard {
        self.expected.fetch_add(1, Ordering::Relaxed);
        self.alive.fetch_add(1, Ordering::Relaxed);
        WorkerGuard(Arc::clone(self))
    }

    /// The `workers` check of `/readyz`.
    pub fn check(&self) -> Result<(), String> {
        health::workers(
            self.alive.load(Ordering::Relaxed),
            self.expected.load(Ordering::Relaxed),
        )
    }
}

/// Held by a running worker task; dropping it (the worker returned or panicked) counts it out.
pub struct WorkerGuard(Arc<WorkerCount>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Probes {
    /// The queue stats, or `None` when Redis did not answer within [`PROBE_TIMEOUT`].
    pub async fn queue_stats(&self) -> Option<QueueStats> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.queue.stats()).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "queue stats for /metrics failed");
                None
            }
            Err(_) => {
                tracing::debug!("queue stats for /metrics timed out");
                None
            }
        }
    }

    /// Append `redis_up` and, when Redis answered, the queue gauges.
    pub async fn render(&self, w: &mut Writer) {
        render_stats(w, self.queue_stats().await.as_ref(), now_ms());
    }

    /// Ready when Redis answers `PING`, the object store answers a `HEAD`, `work_dir` is
    /// writable with `min_free_bytes` free, every job worker runs, and the process is not
    /// draining.
    pub async fn readiness(&self) -> health::Readiness {
        let redis = match tokio::time::timeout(PROBE_TIMEOUT, self.queue.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer".into()),
        };
        let store = match tokio::time::timeout(PROBE_TIMEOUT, self.store.head("readyz/probe")).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer".into()),
        };
        health::Readiness::new("transcoder")
            .check("redis", redis)
            .check("store", store)
            .check("work_dir", self.work_dir_check())
            .check("workers", self.workers.check())
            .draining(self.draining.load(Ordering::Relaxed))
    }

    /// `work_dir` writable with `min_free_bytes` free.
    fn work_dir_check(&self) -> Result<(), String> {
        if let Err(e) = probe_write(&self.work_dir) {
            return Err(format!("not writable: {e}"));
        }
        match work_dir::available_bytes(&self.work_dir) {
            Ok(free) if work_dir::has_room(free, self.min_free_bytes, None) => Ok(()),
            Ok(free) => Err(format!(
                "{free} bytes free, less than min_free_bytes {}",
                self.min_free_bytes
            )),
            Err(e) => Err(format!("free space unknown: {e}")),
        }
    }
}

/// Create, write and remove a small file in `dir` (a name the start-up sweep never touches).
fn probe_write(dir: &std::path::Path) -> std::io::Result<()> {
    let path = dir.join(format!(".readyz-{}", std::process::id()));
    let written = std::fs::write(&path, b"ok");
    let _ = std::fs::remove_file(&path);
    written
}

/// The gauges of the module doc from `stats` (`None`: Redis is down).
pub fn render_stats(w: &mut Writer, stats: Option<&QueueStats>, now_ms: u64) {
    w.gauge(
        "ringcast_transcoder_redis_up",
        "Whether Redis answered the queue queries of this scrape.",
        u8::from(stats.is_some()),
    );
    let Some(stats) = stats else { return };
    let priority =
        |stream: &str| -> String { stream.rsplit(':').next().unwrap_or(stream).to_string() };
    type Get = fn(&ringcast_infra::queue::inspect::StreamStats, u64) -> String;
    let families: [(&str, &str, Get); 4] = [
        (
            "ringcast_transcoder_queue_depth",
            "Jobs waiting for a worker (not yet delivered), by stream.",
            |s, _| s.waiting.to_string(),
        ),
        (
            "ringcast_transcoder_queue_pending",
            "Jobs delivered and not acknowledged (running, or held by a dead worker), by stream.",
            |s, _| s.pending.to_string(),
        ),
        (
            "ringcast_transcoder_queue_oldest_age_seconds",
            "Age of the oldest job waiting for a worker (0 when none waits), by stream.",
            |s, now| {
                let ms = s.oldest_waiting.map_or(0, |id| id.age_ms(now));
                format!("{:.3}", ms as f64 / 1000.0)
            },
        ),
        (
            "ringcast_transcoder_queue_pending_max_idle_seconds",
            "Longest time a pending job has gone without a heartbeat, by stream.",
            |s, _| format!("{:.3}", s.max_pending_idle_ms.unwrap_or(0) as f64 / 1000.0),
        ),
    ];
    for (name, help, get) in families {
        w.family(name, help, Kind::Gauge);
        for s in &stats.streams {
            w.sample(name, &[("priority", &priority(&s.stream))], get(s, now_ms));
        }
    }
    w.gauge(
        "ringcast_transcoder_dead_letters",
        "Entries in the dead-letter stream rc:jobs:dlq.",
        stats.dead_letters,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_infra::queue::inspect::StreamStats;
    use ringcast_proto::stream_id::StreamId;

    #[test]
    fn renders_gauges_per_priority_or_redis_down() {
        let mut w = Writer::default();
        render_stats(&mut w, None, 0);
        let text = w.finish();
        assert!(text.contains("ringcast_transcoder_redis_up 0\n"));
        assert!(!text.contains("queue_depth"));

        let stats = QueueStats {
            streams: vec![
                StreamStats {
                    stream: "rc:jobs:live".into(),
                    waiting: 0,
                    pending: 1,
                    oldest_waiting: None,
                    max_pending_idle_ms: Some(2500),
                },
                StreamStats {
                    stream: "rc:jobs:normal".into(),
                    waiting: 3,
                    pending: 0,
                    oldest_waiting: Some(StreamId { ms: 10_000, seq: 0 }),
                    max_pending_idle_ms: None,
                },
            ],
            dead_letters: 4,
        };
        let mut w = Writer::default();
        render_stats(&mut w, Some(&stats), 12_500);
        let text = w.finish();
        for line in [
            "ringcast_transcoder_redis_up 1\n",
            "ringcast_transcoder_queue_depth{priority=\"normal\"} 3\n",
            "ringcast_transcoder_queue_depth{priority=\"live\"} 0\n",
            "ringcast_transcoder_queue_pending{priority=\"live\"} 1\n",
            "ringcast_transcoder_queue_oldest_age_seconds{priority=\"normal\"} 2.500\n",
            "ringcast_transcoder_queue_oldest_age_seconds{priority=\"live\"} 0.000\n",
            "ringcast_transcoder_queue_pending_max_idle_seconds{priority=\"live\"} 2.500\n",
            "ringcast_transcoder_dead_letters 4\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
