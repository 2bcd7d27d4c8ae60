//! Counters of the CMCD warm-ups, and the bound on how many run at once.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_proto::prometheus::{Kind, Writer};

/// Most warm-ups running at once in one edge process.
pub const MAX_IN_FLIGHT: u64 = 64;

/// Warm-up counters (process-wide).
#[derive(Debug, Default)]
pub struct Prefetch {
    in_flight: AtomicU64,
    /// Warm-ups whose lookup succeeded (the object is cached, or known not to exist).
    warmed: AtomicU64,
    /// Warm-ups whose lookup failed (origin error or timeout).
    failed: AtomicU64,
    /// Hints not followed: outside the video, malformed, or already cached.
    ignored: AtomicU64,
    /// Hints dropped because [`MAX_IN_FLIGHT`] warm-ups were running.
    dropped: AtomicU64,
}

impl Prefetch {
    /// Count a hint that is not followed.
    pub fn ignored(&self) {
        self.ignored.fetch_add(1, Relaxed);
    }

    /// Reserve a warm-up slot; `false` (counted as dropped) when all are taken.
    pub fn try_start(&self) -> bool {
        if self.in_flight.fetch_add(1, Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Relaxed);
            self.dropped.fetch_add(1, Relaxed);
            return false;
        }
        true
    }

    /// Release the slot of a finished warm-up.
    pub fn finished(&self, ok: bool) {
        if ok {
            self.warmed.fetch_add(1, Relaxed);
        } else {
            self.failed.fetch_add(1, Relaxed);
        }
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Series for `/metrics`.
    pub fn render_metrics(&self, w: &mut Writer) {
        let name = "ringcast_edge_cmcd_prefetches_total";
        w.family(
            name,
            "Objects warmed from players' CMCD next-object hints, by outcome.",
            Kind::Counter,
        );
        for (outcome, v) in [
            ("warmed", self.warmed.load(Relaxed)),
            ("failed", self.failed.load(Relaxed)),
            ("ignored", self.ignored.load(Relaxed)),
            ("dropped", self.dropped.load(Relaxed)),
        ] {
            w.sample(name, &[("outcome", outcome)], v);
        }
        w.family(
            "ringcast_edge_cmcd_prefetches_in_flight",
            "CMCD warm-ups running now.",
            Kind::Gauge,
        );
        w.sample(
            "ringcast_edge_cmcd_prefetches_in_flight",
            &[],
            self.in_flight.load(Relaxed),
        );
    }
}
