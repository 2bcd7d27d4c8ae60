//! Measurements of a swarm: latency histograms per request kind, bytes, errors by status,
//! stalls, live latency behind the live edge, and the same per second ([`Series`]). Each
//! thread records into its own [`Stats`] (no sharing on the hot path); they are merged at the
//! end. A few global counters feed the progress line while the run goes on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::series::{Series, TimeSeries};

/// What a request fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Master,
    Playlist,
    /// A blocking playlist reload (`_HLS_msn`), whose latency includes the server's hold.
    BlockingPlaylist,
    Init,
    Segment,
    Part,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Master,
        Kind::Playlist,
        Kind::BlockingPlaylist,
        Kind::Init,
        Kind::Segment,
        Kind::Part,
    ];

    /// [`Kind::name`] of every kind, in [`Kind::ALL`] order (the series' kind indices).
    pub const NAMES: [&'static str; 6] = [
        "master",
        "playlist",
        "blocking_playlist",
        "init",
        "segment",
        "part",
    ];

    /// Position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Playlist => "playlist",
            Kind::BlockingPlaylist => "blocking_playlist",
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Part => "part",
        }
    }
}

/// Counters read by the progress line.
#[derive(Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub viewers: AtomicU64,
    pub stalls: AtomicU64,
}

impl Live {
    pub fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// One thread's (or the merged) measurements.
pub struct Stats {
    latency: BTreeMap<Kind, Histogram<u64>>,
    bytes: u64,
    requests: u64,
    /// Non-2xx answers by status; transport errors under 0.
    pub errors: BTreeMap<u16, u64>,
    pub stalls: u64,
    pub stalled: Duration,
    /// Seconds behind the live edge at each part/segment completion (µs histogram).
    live_latency: Histogram<u64>,
    pub viewers_started: u64,
    /// The same, per second since the run's start.
    series: Series,
}

impl Default for Stats {
    /// Stats whose time series begins now.
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Stats {
    /// Stats whose time series begins at `start` (every thread of a run shares it).
    pub fn new(start: Instant) -> Self {
        Self {
            latency: Kind::ALL.iter().map(|k| (*k, histogram())).collect(),
            bytes: 0,
            requests: 0,
            errors: BTreeMap::new(),
            stalls: 0,
            stalled: Duration::ZERO,
            live_latency: histogram(),
            viewers_started: 0,
            series: Series::new(start, &Kind::NAMES),
        }
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 600_000_000)
}

impl Stats {
    pub fn record(&mut self, kind: Kind, took: Duration, bytes: u64) {
        if let Some(h) = self.latency.get_mut(&kind) {
            let _ = h.record(us(took));
        }
        self.bytes += bytes;
        self.requests += 1;
        self.series
            .record(Instant::now(), kind.index(), took, bytes);
    }

    pub fn error(&mut self, status: u16) {
        *self.errors.entry(status).or_default() += 1;
        self.requests += 1;
        self.series.error(Instant::now());
    }

    /// A player ran dry for `dry`.
    pub fn stall(&mut self, dry: Duration) {
        self.stalls += 1;
        self.stalled += dry;
        self.series.stall(Instant::now());
    }

    /// A player began (`+1`) or ended (`-1`) its run: the series' active-viewer count.
    pub fn viewer_active(&mut self, delta: i64) {
        self.series.active(Instant::now(), delta);
    }

    pub fn live_latency(&mut self, behind: Duration) {
        let _ = self.live_latency.record(us(behind));
    }

    pub fn merge(&mut self, other: &Stats) {
        for (k, h) in &other.latency {
            if let Some(mine) = self.latency.get_mut(k) {
                let _ = mine.add(h);
            }
        }
        let _ = self.live_latency.add(&other.live_latency);
        self.bytes += other.bytes;
        self.requests += other.requests;
        for (s, n) in &other.errors {
            *self.errors.entry(*s).or_default() += n;
        }
        self.stalls += other.stalls;
        self.stalled += other.stalled;
        self.viewers_started += other.viewers_started;
        self.series.merge(&other.series);
    }

    /// The machine-readable summary.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Summary {
            elapsed_s: secs,
            viewers: self.viewers_started,
            requests: self.requests,
            requests_per_s: self.requests as f64 / secs,
            bytes: self.bytes,
            mbytes_per_s: self.bytes as f64 / secs / 1e6,
            by_kind: self
                .latency
                .iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(k, h)| KindSummary {
                    kind: *k,
                    count: h.len(),
                    p50_ms: ms(h, 0.5),
                    p90_ms: ms(h, 0.9),
                    p99_ms: ms(h, 0.99),
                    max_ms: h.max() as f64 / 1000.0,
                })
                .collect(),
            errors: self
                .errors
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            stalls: self.stalls,
            stalled_s: self.stalled.as_secs_f64(),
            live_latency_p50_s: (!self.live_latency.is_empty())
                .then(|| ms(&self.live_latency, 0.5) / 1000.0),
            live_latency_p99_s: (!self.live_latency.is_empty())
                .then(|| ms(&self.live_latency, 0.99) / 1000.0),
            series: self.series.points(elapsed),
        }
    }
}

/// Latency of one request kind, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub kind: Kind,
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a run reports (`--json` prints this).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub elapsed_s: f64,
    pub viewers: u64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes: u64,
    pub mbytes_per_s: f64,
    pub by_kind: Vec<KindSummary>,
    /// Status code (0 = transport error) → count.
    pub errors: BTreeMap<String, u64>,
    pub stalls: u64,
    pub stalled_s: f64,
    pub live_latency_p50_s: Option<f64>,
    pub live_latency_p99_s: Option<f64>,
    /// The run second by second.
    pub series: TimeSeries,
}

impl Summary {
    /// The human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} viewers, {:.1} s: {} requests ({:.0}/s), {:.1} MB/s, stalls {} ({:.1} s)\n",
            self.viewers,
            self.elapsed_s,
            self.requests,
            self.requests_per_s,
            self.mbytes_per_s,
            self.stalls,
            self.stalled_s
        );
        s.push_str(&format!(
            "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "kind", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        for k in &self.by_kind {
            s.push_str(&format!(
                "{:<18} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                k.kind.name(),
                k.count,
                k.p50_ms,
                k.p90_ms,
                k.p99_ms,
                k.max_ms
            ));
        }
        s.push_str(&crate::report::errors_line(&self.errors));
        if let (Some(p50), Some(p99)) = (self.live_latency_p50_s, self.live_latency_p99_s) {
            s.push_str(&format!(
                "behind live edge: p50 {p50:.3} s, p99 {p99:.3} s\n"
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_summarises() {
        let mut a = Stats::default();
        a.record(Kind::Segment, Duration::from_millis(10), 1000);
        a.record(Kind::Segment, Duration::from_millis(30), 1000);
        let mut b = Stats::default();
        b.record(Kind::Playlist, Duration::from_millis(2), 100);
        b.error(404);
        b.stalls = 1;
        a.merge(&b);
        let s = a.summary(Duration::from_secs(2));
        assert_eq!(s.requests, 4);
        assert_eq!(s.bytes, 2100);
        assert_eq!(s.errors.get("404"), Some(&1));
        assert_eq!(s.stalls, 1);
        let seg = s
            .by_kind
            .iter()
            .find(|k| k.kind == Kind::Segment)
            .expect("segments");
        assert_eq!(seg.count, 2);
        assert!((seg.max_ms - 30.0).abs() < 0.1, "{}", seg.max_ms);
        assert!(s.table().contains("segment"));
        // The series holds the same requests.
        let in_series: u64 = s.series.points.iter().map(|p| p.requests).sum();
        assert_eq!(in_series, 4);
        assert_eq!(s.series.points.iter().map(|p| p.bytes).sum::<u64>(), 2100);
    }

    #[test]
    fn kind_names_follow_kind_order() {
        for k in Kind::ALL {
            assert_eq!(Kind::NAMES[k.index()], k.name());
        }
    }
}
