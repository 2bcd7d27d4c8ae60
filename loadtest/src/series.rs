//! Per-second time series of a run, for the JSON output and the plot ([`crate::plot`]).
//!
//! Each thread records into its own [`Series`] (no sharing on the hot path): the second in
//! which a request completed picks a bucket; the bucket holds, per request kind, a small
//! latency histogram and the bytes; plus errors, stalls and the change in active clients. The
//! histogram (hdrhistogram, 1 significant digit — values within 1/16 ≈ 6 %, plenty for a
//! per-second trend; the run's totals in [`crate::stats`] keep 3 digits — `u32` counts) takes
//! ≈1.7 KiB, allocated on the kind's first request in that second: a 1 h run with 4 request
//! kinds costs ≈25 MiB per thread. Threads' series are merged bucket by bucket at the end and turned into
//! [`TimeSeries`] points (p50/p99 per kind, requests/s, active clients at the bucket's end).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Width of one bucket.
pub const BUCKET: Duration = Duration::from_secs(1);

/// Buckets past this (a day) land in the last one; bounds the memory of a runaway run.
const MAX_BUCKETS: usize = 86_400;

/// Latency bounds of a bucket histogram, µs: 1 µs .. 10 min.
const MAX_US: u64 = 600_000_000;

fn histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_US, 1).unwrap_or_else(|_| {
        Histogram::new(1).unwrap_or_else(|_| unreachable!("1 significant digit is valid"))
    })
}

/// One request kind within one bucket.
#[derive(Clone)]
struct KindBucket {
    latency: Histogram<u32>,
    bytes: u64,
}

#[derive(Clone, Default)]
struct Bucket {
    /// Indexed like [`Series::names`]; `None` until the kind's first request in this second.
    kinds: Vec<Option<KindBucket>>,
    errors: u64,
    stalls: u64,
    /// Clients started minus clients stopped in this second.
    active_delta: i64,
}

/// One thread's (or the merged) time series.
#[derive(Clone)]
pub struct Series {
    start: Instant,
    names: &'static [&'static str],
    buckets: Vec<Bucket>,
}

impl Series {
    /// A series whose bucket 0 begins at `start`, for the request kinds `names` (a kind is
    /// recorded by its index in `names`).
    pub fn new(start: Instant, names: &'static [&'static str]) -> Self {
        Self {
            start,
            names,
            buckets: Vec::new(),
        }
    }

    fn bucket(&mut self, at: Instant) -> &mut Bucket {
        let i = (at.saturating_duration_since(self.start).as_secs() as usize).min(MAX_BUCKETS - 1);
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        &mut self.buckets[i]
    }

    /// A request of kind `kind` completed at `at` after `took`, with `bytes` of body.
    pub fn record(&mut self, at: Instant, kind: usize, took: Duration, bytes: u64) {
        if let Some(k) = self.kind_bucket(at, kind) {
            let _ = k.latency.record((took.as_micros() as u64).clamp(1, MAX_US));
            k.bytes += bytes;
        }
    }

    fn kind_bucket(&mut self, at: Instant, kind: usize) -> Option<&mut KindBucket> {
        let n = self.names.len();
        if kind >= n {
            return None;
        }
        let b = self.bucket(at);
        if b.kinds.len() < n {
            b.kinds.resize(n, None);
        }
        Some(b.kinds[kind].get_or_insert_with(|| KindBucket {
            latency: histogram(),
            bytes: 0,
        }))
    }

    /// `bytes` of kind `kind` moved at `at`, outside a [`Series::record`]ed request (e.g. an
    /// upload's confirmed bytes).
    pub fn bytes(&mut self, at: Instant, kind: usize, bytes: u64) {
        if let Some(k) = self.kind_bucket(at, kind) {
            k.bytes += bytes;
        }
    }

    /// A failed request (any kind) ended at `at`.
    pub fn error(&mut self, at: Instant) {
        self.bucket(at).errors += 1;
    }

    /// A player ran dry at `at`.
    pub fn stall(&mut self, at: Instant) {
        self.bucket(at).stalls += 1;
    }

    /// `delta` clients started (positive) or stopped (negative) at `at`.
    pub fn active(&mut self, at: Instant, delta: i64) {
        self.bucket(at).active_delta += delta;
    }

    /// Add `other`'s buckets into these (both must share the start and the kinds).
    pub fn merge(&mut self, other: &Series) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets
                .resize_with(other.buckets.len(), Bucket::default);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.errors += theirs.errors;
            mine.stalls += theirs.stalls;
            mine.active_delta += theirs.active_delta;
            if mine.kinds.len() < theirs.kinds.len() {
                mine.kinds.resize(theirs.kinds.len(), None);
            }
            for (m, t) in mine.kinds.iter_mut().zip(&theirs.kinds) {
                match (m.as_mut(), t) {
                    (_, None) => {}
                    (None, Some(t)) => *m = Some(t.clone()),
                    (Some(m), Some(t)) => {
                        let _ = m.latency.add(&t.latency);
                        m.bytes += t.bytes;
                    }
                }
            }
        }
    }

    /// The points of a run that lasted `elapsed`: one per bucket from 0 through the one that
    /// holds `elapsed` (or the last recorded one), empty seconds included.
    pub fn points(&self, elapsed: Duration) -> TimeSeries {
        let width = BUCKET.as_secs_f64();
        let secs = elapsed.as_secs_f64();
        let n = self
            .buckets
            .len()
            .max((secs / width).ceil() as usize)
            .min(MAX_BUCKETS);
        let empty = Bucket::default();
        let mut active = 0i64;
        let points = (0..n)
            .map(|i| {
                let b = self.buckets.get(i).unwrap_or(&empty);
                let t = i as f64 * width;
                // The last bucket may be cut short by the end of the run.
                let span = (secs - t).clamp(0.0, width);
                let span = if span > 0.0 { span } else { width };
                active += b.active_delta;
                let kinds: Vec<KindPoint> = b
                    .kinds
                    .iter()
                    .enumerate()
                    .filter_map(|(k, kb)| {
                        let kb = kb.as_ref().filter(|kb| !kb.latency.is_empty())?;
                        let ms = |q: f64| kb.latency.value_at_quantile(q) as f64 / 1000.0;
                        Some(KindPoint {
                            kind: self.names[k],
                            count: kb.latency.len(),
                            p50_ms: ms(0.5),
                            p99_ms: ms(0.99),
                            bytes: kb.bytes,
                        })
                    })
                    .collect();
                let ok: u64 = kinds.iter().map(|k| k.count).sum();
                let requests = ok + b.errors;
                Point {
                    t_s: t,
                    span_s: span,
                    active: active.max(0) as u64,
                    requests,
                    requests_per_s: requests as f64 / span,
                    bytes: b.kinds.iter().flatten().map(|k| k.bytes).sum(),
                    errors: b.errors,
                    stalls: b.stalls,
                    kinds,
                }
            })
            .collect();
        TimeSeries {
            bucket_s: width,
            points,
        }
    }
}

/// One request kind in one second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindPoint {
    pub kind: &'static str,
    /// Successful requests that completed in this second.
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: u64,
}

/// One second of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Start of the bucket, seconds since the run began.
    pub t_s: f64,
    /// Seconds of the run this bucket covers (less than `bucket_s` only for the last one).
    pub span_s: f64,
    /// Clients (viewers, uploaders) active at the end of the bucket.
    pub active: u64,
    /// Requests that ended in this bucket, failed ones included.
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes: u64,
    pub errors: u64,
    pub stalls: u64,
    /// Kinds with at least one successful request in this bucket.
    pub kinds: Vec<KindPoint>,
}

/// A run's time series (`--json` prints it under `series`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeSeries {
    pub bucket_s: f64,
    pub points: Vec<Point>,
}

impl TimeSeries {
    /// Names of the kinds that occur anywhere in the series, in first-seen order.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for p in &self.points {
            for k in &p.kinds {
                if !out.contains(&k.kind) {
                    out.push(k.kind);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["playlist", "segment"];

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn requests_land_in_the_second_they_complete() {
        let t0 = Instant::now();
        let mut s = Series::new(t0, NAMES);
        s.record(at(t0, 100), 1, Duration::from_millis(10), 1000);
        s.record(at(t0, 900), 1, Duration::from_millis(30), 1000);
        s.record(at(t0, 2500), 0, Duration::from_millis(2), 50);
        s.error(at(t0, 2600));
        s.stall(at(t0, 2700));
        let ts = s.points(Duration::from_millis(3500));
        assert_eq!(ts.points.len(), 4, "0..1, 1..2 (empty), 2..3, 3..3.5");
        let p0 = &ts.points[0];
        assert_eq!((p0.requests, p0.bytes), (2, 2000));
        assert_eq!(p0.kinds.len(), 1);
        assert_eq!(p0.kinds[0].kind, "segment");
        // Within the bucket histograms' 1/16 resolution.
        assert!((p0.kinds[0].p50_ms - 10.0).abs() < 0.7, "{:?}", p0.kinds[0]);
        assert!((p0.kinds[0].p99_ms - 30.0).abs() < 2.0, "{:?}", p0.kinds[0]);
        assert_eq!(ts.points[1].requests, 0);
        assert!(ts.points[1].kinds.is_empty());
        let p2 = &ts.points[2];
        assert_eq!((p2.requests, p2.errors, p2.stalls), (2, 1, 1));
        assert_eq!(p2.kinds[0].kind, "playlist");
        let p3 = &ts.points[3];
        assert!((p3.span_s - 0.5).abs() < 1e-9);
        assert_eq!(ts.kinds(), vec!["segment", "playlist"]);
    }

    #[test]
    fn bytes_without_requests_count_in_the_total_only() {
        let t0 = Instant::now();
        let mut s = Series::new(t0, NAMES);
        s.bytes(t0, 1, 4096);
        s.bytes(t0, 9, 1);
        let ts = s.points(Duration::from_secs(1));
        assert_eq!(ts.points[0].bytes, 4096);
        assert_eq!(ts.points[0].requests, 0);
        assert!(
            ts.points[0].kinds.is_empty(),
            "no latency point without a request"
        );
    }

    #[test]
    fn active_clients_are_a_running_sum() {
        let t0 = Instant::now();
        let mut s = Series::new(t0, NAMES);
        for ms in [0, 200, 1200] {
            s.active(at(t0, ms), 1);
        }
        s.active(at(t0, 2100), -1);
        s.active(at(t0, 2900), -2);
        let active: Vec<u64> = s
            .points(Duration::from_secs(4))
            .points
            .iter()
            .map(|p| p.active)
            .collect();
        assert_eq!(active, vec![2, 3, 0, 0]);
    }

    #[test]
    fn merging_adds_buckets_and_histograms() {
        let t0 = Instant::now();
        let mut a = Series::new(t0, NAMES);
        let mut b = Series::new(t0, NAMES);
        a.record(at(t0, 10), 1, Duration::from_millis(1), 10);
        b.record(at(t0, 20), 1, Duration::from_millis(100), 10);
        b.record(at(t0, 1500), 0, Duration::from_millis(5), 7);
        b.active(at(t0, 0), 4);
        a.merge(&b);
        let ts = a.points(Duration::from_secs(2));
        assert_eq!(ts.points.len(), 2);
        let seg = &ts.points[0].kinds[0];
        assert_eq!((seg.count, seg.bytes), (2, 20));
        assert!(seg.p99_ms > 90.0, "{seg:?}");
        assert_eq!(ts.points[1].kinds[0].kind, "playlist");
        assert_eq!(ts.points[1].active, 4);
        // A rate over a full bucket is its count.
        assert!((ts.points[0].requests_per_s - 2.0).abs() < 1e-9);
    }

    #[test]
    fn bucket_histograms_stay_small() {
        // 1 µs .. 10 min: 26 power-of-two ranges × 16 sub-buckets of 4 bytes.
        let h = histogram();
        assert!(
            h.distinct_values() <= 448,
            "{} counters",
            h.distinct_values()
        );
    }

    #[test]
    fn out_of_range_kinds_and_late_times_are_safe() {
        let t0 = Instant::now();
        let mut s = Series::new(t0, NAMES);
        s.record(t0, 7, Duration::from_millis(1), 1);
        s.record(t0 + Duration::from_secs(10 * 86_400), 0, Duration::MAX, 1);
        assert_eq!(s.buckets.len(), MAX_BUCKETS);
        let ts = s.points(Duration::from_secs(1));
        assert_eq!(ts.points.iter().map(|p| p.requests).sum::<u64>(), 1);
    }
}
