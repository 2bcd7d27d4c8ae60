//! The upload swarm: N tus clients (one OS thread each: the tus client is blocking, and uploads
//! are few and long, so threads cost nothing that matters) upload files of a given size to the
//! ingest back to back until a deadline or a count per client, and report what an operator
//! asks about an upload service: finished and failed uploads, aggregate MB/s, the latency of
//! creating an upload, of each PATCH and of a whole upload, and errors by status; the same
//! per second as a [`TimeSeries`] (kinds `create`, `patch`, `upload`; bytes are confirmed
//! bytes, counted under `patch`).
//!
//! Payloads are generated per upload (unique bytes, also across runs, so the ingest's
//! duplicate detection cannot turn the run into a no-op) as a minimal ISO-BMFF file: an `ftyp` box and one `free` box filling the
//! rest. That passes the ingest's container sniffing, but a transcoder will reject it; to load
//! the whole pipeline, pass `--file` with a real clip.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report;
use crate::series::{Series, TimeSeries};
use crate::tus_client::{self, Tap, TusRequest, UploadOptions};

/// An upload swarm run.
#[derive(Debug, Clone)]
pub struct UploadSwarmConfig {
    /// Ingest base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    pub clients: usize,
    /// Bytes per upload (ignored with `file`).
    pub size: u64,
    pub chunk_size: usize,
    /// Uploads per client; `None` = until the deadline.
    pub uploads_per_client: Option<usize>,
    /// No upload starts after this; running ones finish.
    pub duration: Duration,
    /// Upload this file instead of generated payloads.
    pub file: Option<PathBuf>,
    /// Print a progress line to stderr.
    pub progress: bool,
    /// API key for every request (`None`: an open ingest).
    pub api_key: Option<String>,
    /// Ask the ingest to make a new video of every upload even when the owner already
    /// uploaded the same bytes (`duplicates=allow`).
    pub allow_duplicates: bool,
}

/// Parse `20MiB`, `1.5GB`, `512KiB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "bad size unit in {s:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size {s:?} out of range"));
    }
    Ok(bytes.round() as u64)
}

/// A real 10 s, 64x64, 1 fps H.264 MP4 (`ftyp`, `moov`, `mdat`; 1.5 KB): the ingest runs
/// ffprobe on every complete upload and refuses what it cannot read as video, so a payload must
/// be one. Made with `ffmpeg -f lavfi -i color=c=gray:size=64x64:rate=1 -t 10 -c:v libx264
/// -preset ultrafast -pix_fmt yuv420p -g 10 -map_metadata -1 -fflags +bitexact -flags:v
/// +bitexact -movflags +faststart`.
const TINY_CLIP: &[u8] = include_bytes!("tiny_clip.mp4");

/// Smallest [`synthetic_mp4`]: the clip and an empty `free` box header.
pub const MIN_SYNTHETIC_BYTES: u64 = TINY_CLIP.len() as u64 + 8;

/// A valid MP4 of exactly `size` bytes (at least [`MIN_SYNTHETIC_BYTES`]): a tiny real clip
/// followed by a `free` box of pseudo-random bytes seeded by `seed`, so every payload is unique
/// and passes the ingest's sniffing and ffprobe (the padding is skipped by demuxers; the clip's
/// sample offsets do not move).
pub fn synthetic_mp4(size: u64, seed: u64) -> Vec<u8> {
    let size = size.max(MIN_SYNTHETIC_BYTES);
    let mut v = Vec::with_capacity(size as usize);
    v.extend_from_slice(TINY_CLIP);
    let rest = size - TINY_CLIP.len() as u64;
    if let Ok(small) = u32::try_from(rest) {
        v.extend_from_slice(&small.to_be_bytes());
        v.extend_from_slice(b"free");
    } else {
        // 64-bit box size: size field 1, then the large size after the type.
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(b"free");
        v.extend_from_slice(&rest.to_be_bytes());
    }
    // xorshift64*: fast, and distinct per seed.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while (v.len() as u64) < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let word = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = ((size - v.len() as u64) as usize).min(8);
        v.extend_from_slice(&word[..take]);
    }
    v
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 3_600_000_000)
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
struct Live {
    bytes: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// One client's measurements.
struct ClientStats {
    create: Histogram<u64>,
    patch: Histogram<u64>,
    upload: Histogram<u64>,
    errors: BTreeMap<u16, u64>,
    ok: u64,
    failed: u64,
    bytes: u64,
    failures: Vec<String>,
    series: Series,
}

/// Kinds of the upload series, by index.
const SERIES_KINDS: [&str; 3] = ["create", "patch", "upload"];
const CREATE: usize = 0;
const PATCH: usize = 1;
const UPLOAD: usize = 2;

impl ClientStats {
    fn new(start: Instant) -> Self {
        Self {
            create: histogram(),
            patch: histogram(),
            upload: histogram(),
            errors: BTreeMap::new(),
            ok: 0,
            failed: 0,
            bytes: 0,
            failures: Vec::new(),
            series: Series::new(start, &SERIES_KINDS),
        }
    }
}

/// The [`Tap`] of one upload: request latencies, error statuses and confirmed bytes.
struct Recorder<'a> {
    stats: &'a mut ClientStats,
    live: &'a Live,
    confirmed: u64,
}

impl Tap for Recorder<'_> {
    fn progress(&mut self, confirmed: u64, _total: u64) {
        let gained = confirmed.saturating_sub(self.confirmed);
        self.confirmed = confirmed;
        self.stats.bytes += gained;
        self.stats.series.bytes(Instant::now(), PATCH, gained);
        self.live.bytes.fetch_add(gained, Ordering::Relaxed);
    }

    fn request(&mut self, kind: TusRequest, took: Duration, status: Option<u16>) {
        let (h, k) = match kind {
            TusRequest::Create => (&mut self.stats.create, CREATE),
            TusRequest::Patch => (&mut self.stats.patch, PATCH),
            TusRequest::Head => return,
        };
        match status {
            Some(s) if s < 400 => {
                let _ = h.record(us(took));
                self.stats.series.record(Instant::now(), k, took, 0);
            }
            other => {
                *self.stats.errors.entry(other.unwrap_or(0)).or_default() += 1;
                self.stats.series.error(Instant::now());
            }
        }
    }
}

/// Latency of one request kind, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// What an upload swarm reports (`--json` prints this).
#[derive(Debug, Clone, Serialize)]
pub struct UploadSummary {
    pub elapsed_s: f64,
    pub clients: usize,
    pub uploads_ok: u64,
    pub uploads_failed: u64,
    /// Bytes the server confirmed (`Upload-Offset`).
    pub bytes: u64,
    pub mbytes_per_s: f64,
    pub create: Latency,
    pub patch: Latency,
    /// Whole uploads, create to final PATCH.
    pub upload: Latency,
    /// Status code (0 = transport error) → count, over all requests.
    pub errors: BTreeMap<String, u64>,
    /// The first few failure messages.
    pub failures: Vec<String>,
    /// The run second by second.
    pub series: TimeSeries,
}

impl UploadSummary {
    /// The human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} clients, {:.1} s: {} uploads ok, {} failed, {:.1} MB/s confirmed\n",
            self.clients, self.elapsed_s, self.uploads_ok, self.uploads_failed, self.mbytes_per_s
        );
        s.push_str(&format!(
            "{:<8} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
            "request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        for (name, l) in [
            ("create", &self.create),
            ("patch", &self.patch),
            ("upload", &self.upload),
        ] {
            s.push_str(&format!(
                "{:<8} {:>9} {:>10.2} {:>10.2} {:>10.2} {:>10.2}\n",
                name, l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            ));
        }
        s.push_str(&report::errors_line(&self.errors));
        for f in &self.failures {
            s.push_str(&format!("failure: {f}\n"));
        }
        s
    }
}

/// Run the swarm and return the merged summary.
pub fn run(cfg: &UploadSwarmConfig) -> anyhow::Result<UploadSummary> {
    let endpoint = format!("{}/files/", cfg.url.trim_end_matches('/'));
    let fixed: Option<Arc<Vec<u8>>> = match &cfg.file {
        Some(p) => Some(Arc::new(
            std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )),
        None => None,
    };
    let start = Instant::now();
    let deadline = start + cfg.duration;
    // Generated payloads differ from run to run too, so a second run against the same Redis
    // is not answered as duplicates of the first.
    let run_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let live = Arc::new(Live::default());
    let mut handles = Vec::new();
    for c in 0..cfg.clients.max(1) {
        let (endpoint, fixed, live) = (endpoint.clone(), fixed.clone(), Arc::clone(&live));
        let (size, per_client) = (cfg.size, cfg.uploads_per_client);
        // With --allow-duplicates every upload of the same --file is a new video (and
        // transcode job); without it the ingest answers repeats as duplicates (nothing stored
        // or queued), which is what a soak of the ingest and Redis wants.
        let metadata = if cfg.allow_duplicates {
            vec![("duplicates".into(), b"allow".to_vec())]
        } else {
            Vec::new()
        };
        let opts = UploadOptions {
            chunk_size: cfg.chunk_size,
            api_key: cfg.api_key.clone(),
            metadata,
            ..Default::default()
        };
        let h = std::thread::Builder::new()
            .name(format!("uploader-{c}"))
            .spawn(move || {
                let mut stats = ClientStats::new(start);
                stats.series.active(Instant::now(), 1);
                let mut n = 0usize;
                while Instant::now() < deadline && per_client.is_none_or(|max| n < max) {
                    let payload = match &fixed {
                        Some(f) => Arc::clone(f),
                        None => Arc::new(synthetic_mp4(
                            size,
                            run_seed ^ (((c as u64) << 32) | n as u64),
                        )),
                    };
                    n += 1;
                    let total = payload.len() as u64;
                    let t0 = Instant::now();
                    let mut rec = Recorder {
                        stats: &mut stats,
                        live: &live,
                        confirmed: 0,
                    };
                    let res = tus_client::upload_from(
                        &endpoint,
                        Cursor::new(payload.as_slice()),
                        total,
                        &opts,
                        &mut rec,
                    );
                    match res {
                        Ok(_) => {
                            let took = t0.elapsed();
                            let _ = stats.upload.record(us(took));
                            stats.series.record(Instant::now(), UPLOAD, took, 0);
                            stats.ok += 1;
                            live.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            stats.failed += 1;
                            live.failed.fetch_add(1, Ordering::Relaxed);
                            if stats.failures.len() < 3 {
                                stats.failures.push(format!("{e:#}"));
                            }
                        }
                    }
                }
                stats.series.active(Instant::now(), -1);
                stats
            })
            .context("spawn uploader thread")?;
        handles.push(h);
    }
    if cfg.progress {
        report::progress_until_done(&handles, start, |el| {
            format!(
                "{:>5.1}s uploads ok {:>6} failed {:>4} {:>8.1} MB/s",
                el,
                live.ok.load(Ordering::Relaxed),
                live.failed.load(Ordering::Relaxed),
                live.bytes.load(Ordering::Relaxed) as f64 / el / 1e6,
            )
        });
    }
    let mut total = ClientStats::new(start);
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("an uploader thread panicked"))?;
        let _ = total.create.add(&s.create);
        let _ = total.patch.add(&s.patch);
        let _ = total.upload.add(&s.upload);
        for (st, n) in s.errors {
            *total.errors.entry(st).or_default() += n;
        }
        total.ok += s.ok;
        total.failed += s.failed;
        total.bytes += s.bytes;
        total.series.merge(&s.series);
        for f in s.failures {
            if total.failures.len() < 5 {
                total.failures.push(f);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    Ok(UploadSummary {
        elapsed_s: secs,
        clients: cfg.clients.max(1),
        uploads_ok: total.ok,
        uploads_failed: total.failed,
        bytes: total.bytes,
        mbytes_per_s: total.bytes as f64 / secs / 1e6,
        create: Latency::of(&total.create),
        patch: Latency::of(&total.patch),
        upload: Latency::of(&total.upload),
        errors: total
            .errors
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect(),
        failures: total.failures,
        series: total.series.points(start.elapsed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("20MiB"), Ok(20 << 20));
        assert_eq!(parse_size("1.5 KB"), Ok(1500));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn synthetic_payloads_are_sized_sniffable_and_distinct() {
        let clip = TINY_CLIP.len();
        assert_eq!(synthetic_mp4(24, 1).len() as u64, MIN_SYNTHETIC_BYTES);
        for size in [MIN_SYNTHETIC_BYTES, MIN_SYNTHETIC_BYTES + 7, 4000, 1 << 20] {
            let a = synthetic_mp4(size, 1);
            assert_eq!(a.len() as u64, size);
            assert_eq!(&a[4..8], b"ftyp");
            assert_eq!(&a[..clip], TINY_CLIP);
            // The free box covers exactly the rest of the file.
            let box_size = u32::from_be_bytes([a[clip], a[clip + 1], a[clip + 2], a[clip + 3]]);
            assert_eq!(u64::from(box_size), size - clip as u64);
            assert_eq!(&a[clip + 4..clip + 8], b"free");
        }
        assert_ne!(synthetic_mp4(4000, 1), synthetic_mp4(4000, 2));
        assert_eq!(synthetic_mp4(4000, 7), synthetic_mp4(4000, 7));
    }
}
