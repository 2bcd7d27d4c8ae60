//! The Prometheus text exposition format 0.0.4, as a writer over a `String`: every service's
//! `/metrics` (edge, ingest, transcoder) renders through it, so `# HELP`/`# TYPE` lines, label
//! quoting and histogram series are written one way. Pure formatting: the counters live with
//! each service (relaxed atomics), which keeps this usable from the tokio transcoder and the
//! monoio servers alike. See `docs/adr/0007-server-shell.md` for why not `prometheus-client`.

use std::fmt::{Display, Write as _};

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
