//! Counters of the admission limits and the virus scan, rendered with the other ingest metrics:
//! `ringcast_ingest_admission_refusals_total{reason}` and
//! `ringcast_ingest_scans_total{verdict}`.

use std::sync::atomic::{AtomicU64, Ordering};

use ringcast_proto::prometheus::{Kind, Writer};

/// Why an upload request was refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Spool free-space reserve (507).
    Storage,
    /// Owner quota (403).
    Quota,
    /// PATCH body below the minimum rate or past its deadline (408).
    TooSlow,
}

impl Refusal {
    const ALL: [Refusal; 3] = [Refusal::Storage, Refusal::Quota, Refusal::TooSlow];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Storage => "storage",
            Refusal::Quota => "quota",
            Refusal::TooSlow => "too_slow",
        }
    }
}

/// A scan's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutcome {
    Clean,
    Infected,
    /// No verdict (clamd unreachable, timed out or failed): 503.
    Unavailable,
}

impl ScanOutcome {
    const ALL: [ScanOutcome; 3] = [
        ScanOutcome::Clean,
        ScanOutcome::Infected,
        ScanOutcome::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ScanOutcome::Clean => "clean",
            ScanOutcome::Infected => "infected",
            ScanOutcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Default)]
pub struct AdmissionMetrics {
    refusals: [AtomicU64; Refusal::ALL.len()],
    scans: [AtomicU64; ScanOutcome::ALL.len()],
    /// PATCHes that streamed through a small buffer because the worker's pool was in use.
    pub small_buffer_patches: AtomicU64,
    /// PATCHes that took a full-size buffer from the worker's pool.
    pub pooled_buffer_patches: AtomicU64,
}

impl AdmissionMetrics {
    pub fn refused(&self, why: Refusal) {
        self.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn scanned(&self, outcome: ScanOutcome) {
        self.scans[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, w: &mut Writer) {
        let name = "ringcast_ingest_admission_refusals_total";
        w.family(
            name,
            "Upload requests refused by a limit (storage reserve, quota, body pace).",
            Kind::Counter,
        );
        for r in Refusal::ALL {
            let n = self.refusals[r as usize].load(Ordering::Relaxed);
            w.sample(name, &[("reason", r.as_str())], n);
        }
        let name = "ringcast_ingest_scans_total";
        w.family(
            name,
            "Virus scans of finished uploads by verdict.",
            Kind::Counter,
        );
        for o in ScanOutcome::ALL {
            let n = self.scans[o as usize].load(Ordering::Relaxed);
            w.sample(name, &[("verdict", o.as_str())], n);
        }
        w.counter(
            "ringcast_ingest_patch_small_buffer_total",
            "PATCHes streamed through a 16 KiB buffer because the worker's buffer pool was in use.",
            self.small_buffer_patches.load(Ordering::Relaxed),
        );
        w.counter(
            "ringcast_ingest_patch_pooled_buffer_total",
            "PATCHes that took a full-size buffer from the worker's pool (and may spool through \
             aligned O_DIRECT buffers).",
            self.pooled_buffer_patches.load(Ordering::Relaxed),
        );
    }
}
