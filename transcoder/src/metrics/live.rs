//! The live latency budget of the producer, per rendition (docs/live-latency.md reads them):
//!
//! - `ringcast_transcoder_live_capture_to_cut_seconds{rendition}`: capture time of a part's last
//!   frame (its `EXT-X-PROGRAM-DATE-TIME` date: the first byte the publisher pushed plus media
//!   time) → the cutter completed the part. Publisher upload, ingest relay, ffmpeg probe,
//!   decode, encode and fMP4 muxing, and the FIFO.
//! - `…_live_cut_to_stored_seconds{rendition}`: part cut → its object stored.
//! - `…_live_stored_to_announced_seconds{rendition}`: object stored → `part` event in Redis
//!   (the XADD acknowledged).
//! - `…_live_capture_to_announced_seconds{rendition}`: the three together, what an edge can
//!   serve at the earliest.
//! - `…_live_part_fill_ratio{rendition}`: part duration / `PART-TARGET` (1 = the target).
//! - `…_live_rule_violations_total{rendition,rule}`: parts over `PART-TARGET`,
//!   `PART-HOLD-BACK` under three part targets, parts whose audio is not their video's time
//!   span (`ringcast_proto::live::rules`).

use std::sync::Arc;

use ringcast_proto::live::rules::Rule;
use ringcast_proto::prometheus::{CounterFamily, Histogram, HistogramFamily, Writer};

/// Upper bounds (s) of the per-hop buckets: milliseconds where a hop is cheap, up to the
/// seconds a stalled publisher or a slow store adds.
pub const HOP_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0,
];

/// Upper bounds of the part fill ratio buckets (duration / PART-TARGET).
pub const FILL_BUCKETS: [f64; 8] = [0.5, 0.75, 0.85, 0.95, 0.99, 1.0, 1.1, 1.5];

/// The families of the module doc.
#[derive(Debug)]
pub struct LiveMetrics {
    capture_to_cut: HistogramFamily,
    cut_to_stored: HistogramFamily,
    stored_to_announced: HistogramFamily,
    capture_to_announced: HistogramFamily,
    part_fill: HistogramFamily,
    rules: CounterFamily,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self {
            capture_to_cut: HistogramFamily::new(&HOP_BUCKETS),
            cut_to_stored: HistogramFamily::new(&HOP_BUCKETS),
            stored_to_announced: HistogramFamily::new(&HOP_BUCKETS),
            capture_to_announced: HistogramFamily::new(&HOP_BUCKETS),
            part_fill: HistogramFamily::new(&FILL_BUCKETS),
            rules: CounterFamily::default(),
        }
    }
}

/// One rendition's series, fetched once per live rendition task.
#[derive(Debug, Clone)]
pub struct RenditionLatency {
    pub rendition: String,
    pub capture_to_cut: Arc<Histogram>,
    pub cut_to_stored: Arc<Histogram>,
    pub stored_to_announced: Arc<Histogram>,
    pub capture_to_announced: Arc<Histogram>,
    pub part_fill: Arc<Histogram>,
    metrics: Arc<LiveMetrics>,
}

impl RenditionLatency {
    /// Count a broken rule.
    pub fn violation(&self, rule: Rule) {
        self.metrics.rules.add(&self.rendition, rule.label(), 1);
    }
}

impl LiveMetrics {
    /// The series of `rendition` (created on first use; the rule counters start at 0).
    pub fn rendition(self: &Arc<Self>, rendition: &str) -> RenditionLatency {
        for rule in Rule::ALL {
            self.rules.add(rendition, rule.label(), 0);
        }
        RenditionLatency {
            rendition: rendition.to_string(),
            capture_to_cut: self.capture_to_cut.get(rendition),
            cut_to_stored: self.cut_to_stored.get(rendition),
            stored_to_announced: self.stored_to_announced.get(rendition),
            capture_to_announced: self.capture_to_announced.get(rendition),
            part_fill: self.part_fill.get(rendition),
            metrics: Arc::clone(self),
        }
    }

    /// How often `rendition` broke `rule` so far.
    pub fn violations(&self, rendition: &str, rule: Rule) -> u64 {
        self.rules.get(rendition, rule.label())
    }

    pub fn render(&self, w: &mut Writer) {
        let p = "ringcast_transcoder_live_";
        for (fam, name, help) in [
            (&self.capture_to_cut, "capture_to_cut_seconds", "Capture time of a live part's last frame (its PROGRAM-DATE-TIME) to the part cut from ffmpeg's output."),
            (&self.cut_to_stored, "cut_to_stored_seconds", "Live part cut to its object stored."),
            (&self.stored_to_announced, "stored_to_announced_seconds", "Live part stored to its event in Redis."),
            (&self.capture_to_announced, "capture_to_announced_seconds", "Capture time of a live part's last frame to its event in Redis."),
            (&self.part_fill, "part_fill_ratio", "Live part duration divided by PART-TARGET."),
        ] {
            fam.render(w, &format!("{p}{name}"), help, "rendition");
        }
        self.rules.render(
            w,
            &format!("{p}rule_violations_total"),
            "Live LL-HLS rule violations: part_over_target (a part longer than PART-TARGET), hold_back_too_short (PART-HOLD-BACK under 3 x PART-TARGET).",
            ("rendition", "rule"),
            &[],
        );
    }
}
