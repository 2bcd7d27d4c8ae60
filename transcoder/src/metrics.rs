//! Process counters and a tiny HTTP endpoint for them: `GET /metrics` (Prometheus text format
//! 0.0.4, names `ringcast_transcoder_*`), `GET /healthz` (alive) and `GET /readyz` (Redis, the
//! object store and `work_dir` usable, every job worker running, not draining: 200, else 503;
//! the JSON shape every service shares, `ringcast_proto::health`). One request per
//! connection; the scraper is the only client, so no HTTP library is pulled in for it.
//!
//! Job outcomes, processing and pickup histograms and busy workers: [`jobs`]; the queue's
//! gauges read from Redis at scrape time, and the readiness checks: [`queue`]; the live
//! latency budget per hop and rendition and the LL-HLS rule counters: [`live`].

pub mod jobs;
pub mod live;
pub mod queue;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringcast_proto::prometheus::{Kind, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::jobs::JobMetrics;
use crate::metrics::queue::Probes;

/// Counters shared by the workers.
#[derive(Debug, Default)]
pub struct Metrics {
    pub jobs_started: AtomicU64,
    pub jobs_done: AtomicU64,
    pub jobs_failed: AtomicU64,
    pub jobs_retried: AtomicU64,
    pub jobs_abandoned: AtomicU64,
    pub jobs_running: AtomicI64,
    /// Checks that found too little free space under `work_dir` to start a job.
    pub jobs_deferred_no_space: AtomicU64,
    /// Microseconds of ffmpeg wall time (exported as seconds).
    pub transcode_micros: AtomicU64,
    /// Microseconds of source media transcoded by successful jobs.
    pub media_micros: AtomicU64,
    pub segments_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    /// Outcomes, processing and pickup histograms, busy workers ([`jobs`]).
    pub jobs: Arc<JobMetrics>,
    /// Stall, wall-clock limit and cancel ([`JobControlMetrics`]).
    pub job_control: JobControlMetrics,
    /// Live latency per hop and rule counters ([`live`]).
    pub live: Arc<live::LiveMetrics>,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_seconds(counter: &AtomicU64, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            counter.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition (the shared writer of `ringcast_proto::prometheus`).
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        let secs = |c: &AtomicU64| format!("{:.3}", c.load(Ordering::Relaxed) as f64 / 1e6);
        let running = self.jobs_running.load(Ordering::Relaxed).to_string();
        let rows: [(&str, Kind, &str, String); 11] = [
            (
                "jobs_started_total",
                Kind::Counter,
                "Jobs taken from the queue.",
                get(&self.jobs_started),
            ),
            (
                "jobs_done_total",
                Kind::Counter,
                "Jobs published completely.",
                get(&self.jobs_done),
            ),
            (
                "jobs_failed_total",
                Kind::Counter,
                "Jobs marked failed and dead-lettered.",
                get(&self.jobs_failed),
            ),
            (
                "jobs_retried_total",
                Kind::Counter,
                "Attempts retried after a transient failure.",
                get(&self.jobs_retried),
            ),
            (
                "jobs_abandoned_total",
                Kind::Counter,
                "Jobs given up for shutdown, left for redelivery.",
                get(&self.jobs_abandoned),
            ),
            (
                "jobs_running",
                Kind::Gauge,
                "Jobs in progress now.",
                running,
            ),
            (
                "transcode_seconds_total",
                Kind::Counter,
                "Wall-clock seconds spent in ffmpeg.",
                secs(&self.transcode_micros),
            ),
            (
                "media_seconds_total",
                Kind::Counter,
                "Seconds of source media transcoded by successful jobs.",
                secs(&self.media_micros),
            ),
            (
                "segments_uploaded_total",
                Kind::Counter,
                "Media segments uploaded.",
                get(&self.segments_uploaded),
            ),
            (
                "uploaded_bytes_total",
                Kind::Counter,
                "Bytes of init segments and media segments uploaded.",
                get(&self.bytes_uploaded),
            ),
            (
                "jobs_deferred_no_space_total",
                Kind::Counter,
                "Job starts put off because work_dir had less than min_free_bytes free.",
                get(&self.jobs_deferred_no_space),
            ),
        ];
        let mut w = Writer::default();
        for (name, kind, help, value) in rows {
            w.single(&format!("ringcast_transcoder_{name}"), help, kind, value);
        }
        self.jobs.render(&mut w, self);
        self.job_control.render(&mut w);
        self.live.render(&mut w);
        w.finish()
    }
}

// --- Job control: stall detection, wall-clock limit, cancel, ffmpeg speed. ---

/// What the watchdog and operator cancels did, and how fast ffmpeg runs.
#[derive(Debug, Default)]
pub struct JobControlMetrics {
    /// ffmpeg runs killed for making no progress for `stall_timeout_secs` (each attempt).
    pub stalled: AtomicU64,
    /// VOD ffmpeg runs killed at their wall-clock limit (each attempt).
    pub timed_out: AtomicU64,
    /// Jobs ended `cancelled` by an operator (running or still queued).
    pub cancelled: AtomicU64,
    /// `f64` bits: media seconds per wall second of the last finished VOD job's ffmpeg run.
    ffmpeg_speed_bits: AtomicU64,
}

impl JobControlMetrics {
    /// Record the speed of a finished VOD job's ffmpeg run (media s / wall s).
    pub fn set_ffmpeg_speed(&self, speed: f64) {
        if speed.is_finite() && speed >= 0.0 {
            self.ffmpeg_speed_bits
                .store(speed.to_bits(), Ordering::Relaxed);
        }
    }

    /// The last recorded speed (0 before the first finished VOD job).
    pub fn ffmpeg_speed(&self) -> f64 {
        f64::from_bits(self.ffmpeg_speed_bits.load(Ordering::Relaxed))
    }

    fn render(&self, w: &mut Writer) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        let rows: [(&str, Kind, &str, String); 4] = [
            (
                "ffmpeg_speed",
                Kind::Gauge,
                "Media seconds per wall second of the last finished VOD job's ffmpeg run.",
                format!("{:.3}", self.ffmpeg_speed()),
            ),
            (
                "jobs_stalled_total",
                Kind::Counter,
                "ffmpeg runs killed for making no progress for stall_timeout_secs.",
                get(&self.stalled),
            ),
            (
                "jobs_timed_out_total",
                Kind::Counter,
                "VOD ffmpeg runs killed at their wall-clock limit.",
                get(&self.timed_out),
            ),
            (
                "jobs_cancelled_total",
                Kind::Counter,
                "Jobs cancelled by an operator.",
                get(&self.cancelled),
            ),
        ];
        for (name, kind, help, value) in rows {
            w.single(&format!("ringcast_transcoder_{name}"), help, kind, value);
        }
    }
}

/// Bind `addr` and serve until the process exits. Returns the bound address (port 0 works).
/// Without `probes` there are no queue gauges and `/readyz` answers 200.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    probes: Option<Arc<Probes>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let m = Arc::clone(&metrics);
                    let p = probes.clone();
                    tokio::spawn(async move {
                        // A stuck client must not hold a task forever.
                        let _ = tokio::time::timeout(
                            Duration::from_secs(5),
                            answer(stream, &m, p.as_deref()),
                        )
                        .await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(local)
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    probes: Option<&Probes>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    // Read until the end of the request head (or the buffer is full: then answer anyway).
    while len < buf.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => {
            let mut w = Writer::from_string(metrics.render());
            if let Some(p) = probes {
                p.render(&mut w).await;
            }
            ("200 OK", "text/plain; version=0.0.4", w.finish())
        }
        ("GET", "/healthz") => (
            "200 OK",
            "text/plain",
            ringcast_proto::health::ALIVE_BODY.to_string(),
        ),
        ("GET", "/readyz") => {
            let r = match probes {
                Some(p) => p.readiness().await,
                None => ringcast_proto::health::Readiness::new("transcoder"),
            };
            if !r.is_ready() {
                tracing::warn!(status = r.verdict(), problems = %r.problems(), "not ready");
            }
            let status = if r.is_ready() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", r.to_json().to_string())
        }
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.jobs_done);
        Metrics::add_seconds(&m.transcode_micros, 1.5);
        let text = m.render();
        assert!(text.contains("# TYPE ringcast_transcoder_jobs_done_total counter\nringcast_transcoder_jobs_done_total 1\n"));
        assert!(text.contains("ringcast_transcoder_transcode_seconds_total 1.500\n"));
        assert!(text.contains("ringcast_transcoder_jobs_running 0\n"));
    }

    #[test]
    fn renders_job_control_metrics() {
        let m = Metrics::default();
        Metrics::inc(&m.job_control.stalled);
        Metrics::inc(&m.job_control.stalled);
        Metrics::inc(&m.job_control.cancelled);
        m.job_control.set_ffmpeg_speed(1.75);
        m.job_control.set_ffmpeg_speed(f64::NAN);
        let text = m.render();
        assert!(text.contains("# TYPE ringcast_transcoder_ffmpeg_speed gauge\nringcast_transcoder_ffmpeg_speed 1.750\n"), "{text}");
        assert!(text.contains("ringcast_transcoder_jobs_stalled_total 2\n"));
        assert!(text.contains("ringcast_transcoder_jobs_timed_out_total 0\n"));
        assert!(text.contains("ringcast_transcoder_jobs_cancelled_total 1\n"));
    }

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let m = Arc::new(Metrics::default());
        Metrics::inc(&m.jobs_started);
        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&m), None)
            .await
            .expect("bind");
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        let metrics = get("/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("ringcast_transcoder_jobs_started_total 1\n"));
        assert!(get("/healthz").await.ends_with("\r\n\r\nok\n"));
        let ready = get("/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 200 OK\r\n"), "{ready}");
        assert!(
            ready.ends_with(r#"{"checks":{},"service":"transcoder","status":"ready"}"#),
            "{ready}"
        );
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
    }
}
