//! Counters of the admission limits and the virus scan, rendered with the other ingest metrics:
//! `ringcast_ingest_admission_refusals_total{reason}` and
//! `ringcast_ingest_scans_total{verdict}`.

use std::sync::atomic::{AtomicU64, Ordering};

use ringcast_proto::prometheus::{Kind, Writer};

/// The values of one label of a counter family: every value, and its label text.
trait LabelValue: Copy + Into<usize> + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

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

impl From<Refusal> for usize {
    fn from(r: Refusal) -> usize {
        r as usize
    }
}

impl LabelValue for Refusal {
    const ALL: &'static [Refusal] = &[Refusal::Storage, Refusal::Quota, Refusal::TooSlow];

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

impl From<ScanOutcome> for usize {
    fn from(o: ScanOutcome) -> usize {
        o as usize
    }
}

impl LabelValue for ScanOutcome {
    const ALL: &'static [ScanOutcome] = &[
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

/// A counter per value of one label (`V::ALL`, indexed by the value; `N` is its length).
#[derive(Debug)]
struct LabelledCounter<V: LabelValue, const N: usize> {
    counts: [AtomicU64; N],
    _values: std::marker::PhantomData<V>,
}

impl<V: LabelValue, const N: usize> Default for LabelledCounter<V, N> {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            _values: std::marker::PhantomData,
        }
    }
}

impl<V: LabelValue, const N: usize> LabelledCounter<V, N> {
    fn add(&self, v: V) {
        self.counts[v.into()].fetch_add(1, Ordering::Relaxed);
    }

    /// The family (`name`, `help`), one sample per value with the label `label`.
    fn render(&self, w: &mut Writer, name: &str, help: &str, label: &str) {
        w.family(name, help, Kind::Counter);
        for &v in V::ALL {
            let n = self.counts[v.into()].load(Ordering::Relaxed);
            w.sample(name, &[(label, v.as_str())], n);
        }
    }
}

#[derive(Debug, Default)]
pub struct AdmissionMetrics {
    refusals: LabelledCounter<Refusal, { <Refusal as LabelValue>::ALL.len() }>,
    scans: LabelledCounter<ScanOutcome, { <ScanOutcome as LabelValue>::ALL.len() }>,
    /// PATCHes that streamed through a small buffer because the worker's pool was in use.
    pub small_buffer_patches: AtomicU64,
    /// PATCHes that took a full-size buffer from the worker's pool.
    pub pooled_buffer_patches: AtomicU64,
}

impl AdmissionMetrics {
    pub fn refused(&self, why: Refusal) {
        self.refusals.add(why);
    }

    pub fn scanned(&self, outcome: ScanOutcome) {
        self.scans.add(outcome);
    }

    pub fn render(&self, w: &mut Writer) {
        self.refusals.render(
            w,
            "ringcast_ingest_admission_refusals_total",
            "Upload requests refused by a limit (storage reserve, quota, body pace).",
            "reason",
        );
        self.scans.render(
            w,
            "ringcast_ingest_scans_total",
            "Virus scans of finished uploads by verdict.",
            "verdict",
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_value_is_rendered_with_its_count() {
        let m = AdmissionMetrics::default();
        m.refused(Refusal::Quota);
        m.refused(Refusal::Quota);
        m.scanned(ScanOutcome::Unavailable);
        let mut w = Writer::default();
        m.render(&mut w);
        let text = w.finish();
        for line in [
            "ringcast_ingest_admission_refusals_total{reason=\"storage\"} 0",
            "ringcast_ingest_admission_refusals_total{reason=\"quota\"} 2",
            "ringcast_ingest_admission_refusals_total{reason=\"too_slow\"} 0",
            "ringcast_ingest_scans_total{verdict=\"clean\"} 0",
            "ringcast_ingest_scans_total{verdict=\"unavailable\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
