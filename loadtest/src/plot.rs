//! The SVG report of a run (`--plot FILE.svg`), written by hand: no plotting crate, no
//! runtime dependency, one self-contained file a browser or a Markdown page shows.
//!
//! Three panels share the time axis (seconds since the run began; a point sits at the middle
//! of its one-second bucket):
//! 1. latency per request kind, p50 solid and p99 dashed, on a log (default) or linear axis;
//! 2. requests per second (and failed requests per second when there are any);
//! 3. active clients (viewers or uploaders), with a red mark under each second that had stalls.
//!
//! Every line is one `<polyline>` whose `data-series` attribute names it (`segment p99`,
//! `requests/s`, …) and which has one point per bucket that holds data for it.

use std::fmt::Write;

use crate::series::{Point, TimeSeries};

/// Latency axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scale {
    #[default]
    Log,
    Linear,
}

/// What to draw besides the data.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// First line of the image, e.g. the command's target and viewer count.
    pub title: String,
    /// Legend of the third panel: "active viewers", "active uploaders".
    pub active_label: String,
    pub latency_scale: Scale,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 78.0;
const LEGEND: f64 = 200.0;
const PLOT_W: f64 = WIDTH - LEFT - LEGEND;
const PANEL_GAP: f64 = 62.0;
const TOP: f64 = 58.0;
const HEIGHTS: [f64; 3] = [280.0, 150.0, 150.0];
const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#7f7f7f",
];
const RED: &str = "#d62728";

/// Escape text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// A "nice" tick step (1, 2 or 5 × 10^k) near `rough`.
fn nice_step(rough: f64) -> f64 {
    if !rough.is_finite() || rough <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(rough.log10().floor());
    let f = rough / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// A number for a tick label: no trailing zeros, at most three decimals.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn ms_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", num(v / 1000.0))
    } else {
        format!("{} ms", num(v))
    }
}

/// A vertical axis: value → pixel, and its ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    Linear { max: f64, step: f64 },
    Log { lo: f64, hi: f64 },
}

impl Axis {
    /// A linear axis from 0 that holds `max`, about five ticks.
    fn linear(max: f64) -> Self {
        let step = nice_step(max.max(1e-9) / 5.0);
        let max = ((max / step).ceil() * step).max(step);
        Axis::Linear { max, step }
    }

    /// A log axis over whole decades that hold `[min, max]` (positive values).
    fn log(min: f64, max: f64) -> Self {
        let lo = 10f64.powf(min.max(1e-3).log10().floor());
        let mut hi = 10f64.powf(max.max(1e-3).log10().ceil());
        if hi <= lo {
            hi = lo * 10.0;
        }
        Axis::Log { lo, hi }
    }

    /// 0 at the bottom .. 1 at the top.
    fn frac(&self, v: f64) -> f64 {
        let f = match *self {
            Axis::Linear { max, .. } => v / max,
            Axis::Log { lo, hi } => (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()),
        };
        f.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        match *self {
            Axis::Linear { max, step } => {
                let n = (max / step).round() as usize;
                (0..=n).map(|i| i as f64 * step).collect()
            }
            Axis::Log { lo, hi } => {
                let n = (hi / lo).log10().round() as i32;
                (0..=n).map(|i| lo * 10f64.powi(i)).collect()
            }
        }
    }
}

/// One panel's frame: where it is and how it maps values.
struct Panel {
    top: f64,
    height: f64,
    t_max: f64,
    axis: Axis,
}

impl Panel {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t / self.t_max).clamp(0.0, 1.0) * PLOT_W
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.height * (1.0 - self.axis.frac(v))
    }

    /// Frame, grid, tick labels and the panel title.
    fn frame(&self, out: &mut String, title: &str, label: impl Fn(f64) -> String) {
        let bottom = self.top + self.height;
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
            self.top - 10.0,
            esc(title)
        );
        for v in self.axis.ticks() {
            let y = self.y(v);
            let _ = writeln!(
                out,
                r##"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                LEFT + PLOT_W
            );
            let _ = writeln!(
                out,
                r#"<text class="ytick" x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                esc(&label(v))
            );
        }
        let step = nice_step(self.t_max / 8.0);
        let mut t = 0.0;
        while t <= self.t_max + 1e-9 {
            let x = self.x(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/>"##,
                bottom + 4.0
            );
            let _ = writeln!(
                out,
                r#"<text class="xtick" x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{} s</text>"#,
                bottom + 16.0,
                num(t)
            );
            t += step;
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{:.1}" width="{PLOT_W}" height="{:.1}" fill="none" stroke="#333"/>"##,
            self.top, self.height
        );
    }

    /// One named line through `(t, v)` points.
    fn line(&self, out: &mut String, name: &str, color: &str, dashed: bool, pts: &[(f64, f64)]) {
        let coords: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", self.x(*t), self.y(*v)))
            .collect();
        let dash = if dashed {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline data-series="{}" fill="none" stroke="{color}" stroke-width="1.6"{dash} points="{}"/>"#,
            esc(name),
            coords.join(" ")
        );
    }
}

/// A legend entry right of a panel, `row` lines below its top.
fn legend(out: &mut String, panel_top: f64, row: usize, color: &str, dashed: bool, text: &str) {
    let x = LEFT + PLOT_W + 14.0;
    let y = panel_top + 8.0 + row as f64 * 17.0;
    let dash = if dashed {
        r#" stroke-dasharray="6 3""#
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
        x + 24.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
        x + 30.0,
        y + 4.0,
        esc(text)
    );
}

/// The middle of a point's bucket.
fn mid(p: &Point) -> f64 {
    p.t_s + p.span_s / 2.0
}

/// The whole report.
pub fn svg(ts: &TimeSeries, opts: &PlotOptions) -> String {
    let height = TOP + 14.0 + HEIGHTS.iter().sum::<f64>() + 2.0 * PANEL_GAP + 46.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&opts.title));
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        esc(&opts.title)
    );
    let t_max = ts.points.last().map_or(1.0, |p| p.t_s + p.span_s).max(1.0);
    let kinds = ts.kinds();
    let color = |i: usize| PALETTE[i % PALETTE.len()];

    // 1. Latency.
    let lat = |f: fn(&crate::series::KindPoint) -> f64| {
        ts.points
            .iter()
            .flat_map(move |p| p.kinds.iter().map(f))
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let (lo, hi) = (
        lat(|k| k.p50_ms).fold(f64::INFINITY, f64::min),
        lat(|k| k.p99_ms).fold(0.0, f64::max),
    );
    let (lo, hi) = if hi > 0.0 {
        (lo.min(hi), hi)
    } else {
        (1.0, 10.0)
    };
    let axis = match opts.latency_scale {
        Scale::Log => Axis::log(lo, hi),
        Scale::Linear => Axis::linear(hi),
    };
    let mut top = TOP + 14.0;
    let p1 = Panel {
        top,
        height: HEIGHTS[0],
        t_max,
        axis,
    };
    let scale = match opts.latency_scale {
        Scale::Log => "log",
        Scale::Linear => "linear",
    };
    p1.frame(
        &mut out,
        &format!("latency per request kind, per second ({scale} axis)"),
        ms_label,
    );
    for (i, kind) in kinds.iter().enumerate() {
        for (q, dashed) in [("p50", false), ("p99", true)] {
            let pts: Vec<(f64, f64)> = ts
                .points
                .iter()
                .filter_map(|p| {
                    let k = p.kinds.iter().find(|k| k.kind == *kind)?;
                    Some((mid(p), if dashed { k.p99_ms } else { k.p50_ms }))
                })
                .collect();
            p1.line(&mut out, &format!("{kind} {q}"), color(i), dashed, &pts);
            legend(
                &mut out,
                top,
                2 * i + usize::from(dashed),
                color(i),
                dashed,
                &format!("{kind} {q}"),
            );
        }
    }
    if kinds.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">no successful requests</text>"#,
            LEFT + PLOT_W / 2.0,
            top + HEIGHTS[0] / 2.0
        );
    }

    // 2. Requests per second; a bucket cut short by the end of the run is left out (a few
    // requests in a sliver of a second would draw a spike).
    top += HEIGHTS[0] + PANEL_GAP;
    let full: Vec<&Point> = ts
        .points
        .iter()
        .filter(|p| p.span_s >= ts.bucket_s / 2.0)
        .collect();
    let max_rate = full.iter().map(|p| p.requests_per_s).fold(0.0, f64::max);
    let p2 = Panel {
        top,
        height: HEIGHTS[1],
        t_max,
        axis: Axis::linear(max_rate.max(1.0)),
    };
    p2.frame(&mut out, "requests per second", num);
    let rate: Vec<(f64, f64)> = full.iter().map(|p| (mid(p), p.requests_per_s)).collect();
    p2.line(&mut out, "requests/s", PALETTE[0], false, &rate);
    legend(&mut out, top, 0, PALETTE[0], false, "requests/s");
    if full.iter().any(|p| p.errors > 0) {
        let errs: Vec<(f64, f64)> = full
            .iter()
            .map(|p| (mid(p), p.errors as f64 / p.span_s))
            .collect();
        p2.line(&mut out, "errors/s", RED, false, &errs);
        legend(&mut out, top, 1, RED, false, "failed requests/s");
    }

    // 3. Active clients and stalls.
    top += HEIGHTS[1] + PANEL_GAP;
    let max_active = ts.points.iter().map(|p| p.active).max().unwrap_or(0);
    let p3 = Panel {
        top,
        height: HEIGHTS[2],
        t_max,
        axis: Axis::linear((max_active as f64).max(1.0)),
    };
    p3.frame(&mut out, &opts.active_label, num);
    let active: Vec<(f64, f64)> = ts
        .points
        .iter()
        .map(|p| (mid(p), p.active as f64))
        .collect();
    p3.line(&mut out, &opts.active_label, PALETTE[2], false, &active);
    legend(&mut out, top, 0, PALETTE[2], false, &opts.active_label);
    let stalls: u64 = ts.points.iter().map(|p| p.stalls).sum();
    if stalls > 0 {
        let bottom = top + HEIGHTS[2];
        for p in ts.points.iter().filter(|p| p.stalls > 0) {
            let x = p3.x(mid(p));
            let _ = writeln!(
                out,
                r#"<line class="stall" data-stalls="{}" x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="{RED}" stroke-width="3"><title>{} stalls</title></line>"#,
                p.stalls,
                bottom - 10.0,
                p.stalls
            );
        }
        legend(
            &mut out,
            top,
            1,
            RED,
            false,
            &format!("stalls ({stalls} in all)"),
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">seconds since the start of the run (1 s buckets)</text>"#,
        LEFT + PLOT_W / 2.0,
        top + HEIGHTS[2] + 34.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Series;
    use quick_xml::events::Event;
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    /// Every element with its attributes, after checking the document is well-formed XML
    /// (one root, every start tag closed by its own end tag, attributes parse).
    fn elements(svg: &str) -> Vec<(String, HashMap<String, String>)> {
        let mut r = quick_xml::Reader::from_str(svg);
        r.config_mut().check_end_names = true;
        let mut out = Vec::new();
        let (mut depth, mut roots) = (0i32, 0);
        loop {
            let ev = r.read_event().expect("well-formed XML");
            let e = match &ev {
                Event::Eof => break,
                Event::End(_) => {
                    depth -= 1;
                    continue;
                }
                Event::Start(e) | Event::Empty(e) => e.clone(),
                _ => continue,
            };
            if depth == 0 {
                roots += 1;
            }
            if matches!(ev, Event::Start(_)) {
                depth += 1;
            }
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.expect("attribute");
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("value");
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        v.into_owned(),
                    )
                })
                .collect();
            out.push((name, attrs));
        }
        assert_eq!(depth, 0, "unclosed elements");
        assert_eq!(roots, 1, "one root element");
        out
    }

    fn sample() -> TimeSeries {
        const NAMES: &[&str] = &["playlist", "segment"];
        let t0 = Instant::now();
        let mut s = Series::new(t0, NAMES);
        s.active(t0, 3);
        for sec in 0..6u64 {
            let at = t0 + Duration::from_millis(sec * 1000 + 300);
            s.record(at, 1, Duration::from_millis(10 + sec * 10), 100_000);
            s.record(at, 1, Duration::from_millis(200), 100_000);
            if sec % 2 == 0 {
                s.record(at, 0, Duration::from_micros(800), 500);
            }
        }
        s.stall(t0 + Duration::from_millis(4100));
        s.error(t0 + Duration::from_millis(2100));
        s.points(Duration::from_secs(6))
    }

    fn opts() -> PlotOptions {
        PlotOptions {
            title: "viewers <http://127.0.0.1/x?a=1&b=2>".into(),
            active_label: "active viewers".into(),
            latency_scale: Scale::Log,
        }
    }

    #[test]
    fn one_polyline_per_series_with_a_point_per_bucket() {
        let ts = sample();
        let svg = svg(&ts, &opts());
        let els = elements(&svg);
        assert_eq!(els[0].0, "svg");
        let lines: HashMap<&str, &str> = els
            .iter()
            .filter(|(n, _)| n == "polyline")
            .map(|(_, a)| (a["data-series"].as_str(), a["points"].as_str()))
            .collect();
        let mut names: Vec<&str> = lines.keys().copied().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec![
                "active viewers",
                "errors/s",
                "playlist p50",
                "playlist p99",
                "requests/s",
                "segment p50",
                "segment p99"
            ]
        );
        let n = |s: &str| lines[s].split(' ').count();
        assert_eq!(n("segment p50"), 6);
        assert_eq!(n("segment p99"), 6);
        assert_eq!(n("playlist p50"), 3, "seconds 0, 2 and 4 only");
        assert_eq!(n("requests/s"), 6);
        assert_eq!(n("active viewers"), 6);
        // x grows with time; on the segment p50 line latency rises, so y falls.
        let pts: Vec<(f64, f64)> = lines["segment p50"]
            .split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect();
        assert!(
            pts.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 < w[0].1),
            "{pts:?}"
        );
        // One stall mark, in the bucket that had it.
        let stalls: Vec<&HashMap<String, String>> = els
            .iter()
            .filter(|(n, a)| n == "line" && a.get("class").is_some_and(|c| c == "stall"))
            .map(|(_, a)| a)
            .collect();
        assert_eq!(stalls.len(), 1);
        assert_eq!(stalls[0]["data-stalls"], "1");
    }

    #[test]
    fn axes_are_labelled() {
        let svg = svg(&sample(), &opts());
        // Latency from 0.8 ms to 200 ms: decades 0.1 ms .. 1 s.
        for label in ["0.1 ms", "1 ms", "10 ms", "100 ms", "1 s"] {
            assert!(svg.contains(&format!(">{label}</text>")), "no {label} tick");
        }
        for label in ["0 s", "1 s", "5 s"] {
            assert!(
                svg.contains(&format!(r#"text-anchor="middle">{label}</text>"#)),
                "no x tick {label}"
            );
        }
        assert!(svg.contains("&lt;http://127.0.0.1/x?a=1&amp;b=2&gt;"));
        assert!(svg.contains(">requests per second</text>"));
        let linear = super::svg(
            &sample(),
            &PlotOptions {
                latency_scale: Scale::Linear,
                ..opts()
            },
        );
        elements(&linear);
        assert!(
            linear.contains(">200 ms</text>"),
            "linear ticks up to 200 ms"
        );
    }

    #[test]
    #[should_panic(expected = "unclosed elements")]
    fn the_xml_check_catches_a_truncated_document() {
        let svg = svg(&sample(), &opts());
        elements(svg.trim_end().trim_end_matches("</svg>"));
    }

    #[test]
    #[should_panic(expected = "well-formed XML")]
    fn the_xml_check_catches_mismatched_tags() {
        elements("<svg><text>x</tspan></svg>");
    }

    #[test]
    fn everything_fits_in_the_image() {
        let els = elements(&svg(&sample(), &opts()));
        let size = |k: &str| -> f64 { els[0].1[k].parse().expect("svg size") };
        let (w, h) = (size("width"), size("height"));
        for (name, attrs) in &els {
            for (k, v) in attrs {
                let limit = match k.as_str() {
                    "x" | "x1" | "x2" => w,
                    "y" | "y1" | "y2" => h,
                    _ => continue,
                };
                let v: f64 = v.parse().expect("coordinate");
                assert!(
                    (0.0..=limit).contains(&v),
                    "<{name} {k}={v}> outside {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn an_empty_run_still_draws() {
        let ts = Series::new(Instant::now(), &["segment"]).points(Duration::ZERO);
        let svg = svg(&ts, &opts());
        elements(&svg);
        assert!(svg.contains("no successful requests"));
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(180.0), 200.0);
        assert_eq!(Axis::linear(950.0).ticks().last().copied(), Some(1000.0));
        assert_eq!(
            Axis::log(0.8, 200.0).ticks(),
            vec![0.1, 1.0, 10.0, 100.0, 1000.0]
        );
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(ms_label(2500.0), "2.5 s");
    }
}
