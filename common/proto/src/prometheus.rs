//! The Prometheus text exposition format 0.0.4, as a writer over a `String`: every service's
//! `/metrics` (edge, ingest, transcoder) renders through it, so `# HELP`/`# TYPE` lines, label
//! quoting and histogram series are written one way. Pure formatting: the counters live with
//! each service (relaxed atomics), which keeps this usable from the tokio transcoder and the
//! monoio servers alike. See `docs/adr/0007-server-shell.md` for why not `prometheus-client`.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Appends families and samples to a text exposition.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            out: String::with_capacity(bytes),
        }
    }

    /// Continue an exposition that already has text (e.g. one rendered by another module).
    pub fn from_string(out: String) -> Self {
        Self { out }
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow with [`Writer::sample`].
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        let _ = write!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} {}\n",
            kind.as_str()
        );
        self
    }

    /// One sample line: `name{label="value",...} value`. Label values are escaped.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: impl Display) -> &mut Self {
        self.family(name, help, kind).sample(name, &[], value)
    }

    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.single(name, help, Kind::Counter, value)
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: impl Display) -> &mut Self {
        self.single(name, help, Kind::Gauge, value)
    }

    /// A histogram from per-bucket (not cumulative) counts: `counts[i]` observations fell in
    /// `(bounds[i-1], bounds[i]]`, `counts[bounds.len()]` above the last bound (`+Inf`).
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> &mut Self {
        self.family(name, help, Kind::Histogram);
        let mut cumulative = 0;
        for (i, n) in counts.iter().enumerate() {
            cumulative += n;
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(self.out, "{name}_sum {sum}\n{name}_count {cumulative}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A histogram over fixed bounds kept in relaxed atomics: per-bucket counts (+Inf last) and a
/// sum in microseconds. Any thread (tokio, monoio cores) observes; the scrape reads.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// One observation in seconds; negative and non-finite values count as 0 (a clock step
    /// must not lose the observation).
    pub fn observe(&self, seconds: f64) {
        let s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((s * 1e6) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// `_bucket`, `_sum` and `_count` samples with `labels` (the family line comes first).
    pub fn samples(&self, w: &mut Writer, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            w.sample(&bucket, &l, cumulative);
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        w.sample(&format!("{name}_sum"), labels, format!("{sum:.6}"));
        w.sample(&format!("{name}_count"), labels, cumulative);
    }
}

/// One histogram family split by the value of one label (e.g. `rendition`), series created on
/// first use. Callers on a hot path keep the `Arc` of [`HistogramFamily::get`].
#[derive(Debug)]
pub struct HistogramFamily {
    bounds: &'static [f64],
    series: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl HistogramFamily {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// The series of label value `value`.
    pub fn get(&self, value: &str) -> Arc<Histogram> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = series.get(value) {
            return Arc::clone(h);
        }
        let h = Arc::new(Histogram::new(self.bounds));
        series.insert(value.to_string(), Arc::clone(&h));
        h
    }

    /// `# HELP`/`# TYPE` and every series, labelled `label="value"` (the family is written
    /// even without series, so a scrape shows it exists).
    pub fn render(&self, w: &mut Writer, name: &str, help: &str, label: &str) {
        w.family(name, help, Kind::Histogram);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (value, h) in series.iter() {
            h.samples(w, name, &[(label, value)]);
        }
    }
}

/// Counters split by two labels (e.g. `rendition` and `rule`), created on first use.
#[derive(Debug, Default)]
pub struct CounterFamily {
    series: Mutex<BTreeMap<(String, String), u64>>,
}

impl CounterFamily {
    pub fn add(&self, a: &str, b: &str, n: u64) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        *series.entry((a.to_string(), b.to_string())).or_insert(0) += n;
    }

    /// The count of one series (0 when never added to).
    pub fn get(&self, a: &str, b: &str) -> u64 {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .get(&(a.to_string(), b.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The family and every series, labelled `labels.0="a",labels.1="b"`; `zero` lists series
    /// written as 0 when never added to (so a dashboard sees the rule exists).
    pub fn render(
        &self,
        w: &mut Writer,
        name: &str,
        help: &str,
        labels: (&str, &str),
        zero: &[(&str, &str)],
    ) {
        w.family(name, help, Kind::Counter);
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (a, b) in zero {
            series.entry((a.to_string(), b.to_string())).or_insert(0);
        }
        for ((a, b), n) in series {
            w.sample(name, &[(labels.0, &a), (labels.1, &b)], n);
        }
    }
}

/// Label values escape `\`, `"` and newline (exposition format 0.0.4).
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_families_write_one_series_per_label_value() {
        static B: [f64; 2] = [0.1, 1.0];
        let f = HistogramFamily::new(&B);
        f.get("720p").observe(0.05);
        f.get("720p").observe(2.0);
        f.get("360p").observe(f64::NAN);
        let mut w = Writer::default();
        f.render(&mut w, "x_seconds", "Xs.", "rendition");
        let text = w.finish();
        assert!(
            text.contains("x_seconds_bucket{rendition=\"720p\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{rendition=\"720p\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_sum{rendition=\"720p\"} 2.050000\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_count{rendition=\"360p\"} 1\n"),
            "{text}"
        );
        let c = CounterFamily::default();
        c.add("720p", "a", 2);
        let mut w = Writer::default();
        c.render(
            &mut w,
            "y_total",
            "Ys.",
            ("rendition", "rule"),
            &[("720p", "b")],
        );
        let text = w.finish();
        assert!(text.contains("y_total{rendition=\"720p\",rule=\"a\"} 2\ny_total{rendition=\"720p\",rule=\"b\"} 0\n"), "{text}");
    }

    #[test]
    fn writes_families_samples_and_histograms() {
        let mut w = Writer::default();
        w.counter("a_total", "As.", 3)
            .gauge("b", "Bs.", -1)
            .family("c_total", "Cs by kind.", Kind::Counter)
            .sample("c_total", &[("kind", "x\"y"), ("z", "1")], 7)
            .histogram("d_seconds", "Ds.", &[0.5, 1.0], &[1, 0, 2], 4.25);
        assert_eq!(
            w.finish(),
            "# HELP a_total As.\n# TYPE a_total counter\na_total 3\n\
             # HELP b Bs.\n# TYPE b gauge\nb -1\n\
             # HELP c_total Cs by kind.\n# TYPE c_total counter\nc_total{kind=\"x\\\"y\",z=\"1\"} 7\n\
             # HELP d_seconds Ds.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{le=\"0.5\"} 1\nd_seconds_bucket{le=\"1\"} 1\nd_seconds_bucket{le=\"+Inf\"} 3\n\
             d_seconds_sum 4.25\nd_seconds_count 3\n"
        );
    }
}
