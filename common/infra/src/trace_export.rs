//! Spans of one upload's trace (ingest → job → transcoder) and their OpenTelemetry export over
//! OTLP/HTTP JSON (`POST {otlp_endpoint}/v1/traces`), off by default.
//!
//! Why hand-rolled instead of `opentelemetry-otlp`: the services create a handful of spans per
//! upload (not one per request), the OTLP JSON encoding is small and stable, and the official
//! exporter pulls in an HTTP stack (reqwest/hyper, or tonic) the services do not otherwise
//! need. The body is built in `ringcast_proto::trace_context::otlp_json`; this module only
//! generates ids, times spans and ships them.
//!
//! Off (`otlp_endpoint = ""`, the default): [`Span`] still creates ids so the `traceparent`
//! travels with the job (two random numbers per span), but nothing is recorded or sent. On: a
//! finished span goes into a bounded channel (full: dropped and counted, never blocking a
//! request); one thread batches them (up to [`BATCH`] spans or every [`FLUSH_EVERY`]) and POSTs
//! each batch once (a failed export is logged at debug and dropped: traces are best effort).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringcast_proto::trace_context::{otlp_json, FinishedSpan, SpanKind, TraceContext};
use serde::{Deserialize, Serialize};

/// Most spans waiting for export; more are dropped.
const QUEUE: usize = 4096;
/// Most spans in one export request.
pub const BATCH: usize = 256;
/// A partial batch is sent after this long.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// `[telemetry]` of every service's config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL of a collector, e.g. `http://127.0.0.1:4318` (spans go to
    /// `{otlp_endpoint}/v1/traces`, JSON). Empty (the default): no export. Plain `http://` only:
    /// run a collector or agent next to the service.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans; empty: `ringcast-{service}`.
    pub service_name: String,
}

impl TelemetryConfig {
    /// `Err` names the field when the endpoint is not an `http://` URL.
    pub fn check(&self) -> Result<(), String> {
        if !self.otlp_endpoint.is_empty() && !self.otlp_endpoint.starts_with("http://") {
            return Err(format!(
                "telemetry.otlp_endpoint must start with http:// (got {:?})",
                self.otlp_endpoint
            ));
        }
        Ok(())
    }
}

struct Exporter {
    tx: SyncSender<FinishedSpan>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Start exporting when `cfg` has an endpoint (once per process; later calls are no-ops).
/// `service` is the default `service.name` suffix (`ingest`, `edge`, `transcoder`).
pub fn init(service: &str, cfg: &TelemetryConfig) -> Result<(), String> {
    cfg.check()?;
    if cfg.otlp_endpoint.is_empty() || EXPORTER.get().is_some() {
        return Ok(());
    }
    let name = if cfg.service_name.is_empty() {
        format!("ringcast-{service}")
    } else {
        cfg.service_name.clone()
    };
    let url = format!("{}/v1/traces", cfg.otlp_endpoint.trim_end_matches('/'));
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || export_loop(&rx, &url, &name))
        .map_err(|e| format!("starting the OTLP export thread: {e}"))?;
    let _ = EXPORTER.set(Exporter { tx });
    tracing::info!(endpoint = %cfg.otlp_endpoint, "exporting trace spans (OTLP/HTTP JSON)");
    Ok(())
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Spans dropped because the export queue was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn export_loop(rx: &mpsc::Receiver<FinishedSpan>, url: &str, service: &str) {
    block_termination_signals();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(span) => {
                batch.push(span);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(s) => batch.push(s),
                        Err(_) => break,
                    }
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !batch.is_empty() {
            let body = otlp_json(service, &batch).to_string();
            let sent = agent
                .post(url)
                .set("Content-Type", "application/json")
                .send_string(&body);
            if let Err(e) = sent {
                tracing::debug!(error = %e, spans = batch.len(), "OTLP export failed; spans dropped");
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// SIGINT/SIGTERM must reach the services' signal threads (`sigwait`), never this one: a
/// thread started before the mask was set would take them with their default action (exit).
fn block_termination_signals() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn random_trace_id() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

fn random_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    id.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One operation of a trace: started now, exported when dropped (or [`Span::end`]ed).
pub struct Span {
    context: TraceContext,
    parent: Option<[u8; 8]>,
    name: &'static str,
    kind: SpanKind,
    start: u64,
    attributes: Vec<(String, String)>,
    error: Option<String>,
}

impl Span {
    /// A span named `name`, the child of `parent` (the caller's `traceparent`) or the root of
    /// a new trace.
    pub fn start(name: &'static str, kind: SpanKind, parent: Option<TraceContext>) -> Self {
        let span_id = random_span_id();
        let (context, parent) = match parent {
            Some(p) => (p.child(span_id), Some(p.span_id)),
            None => (
                TraceContext::root(random_trace_id(), span_id).unwrap_or(TraceContext {
                    trace_id: [1; 16],
                    span_id,
                    flags: 1,
                }),
                None,
            ),
        };
        Self {
            context,
            parent,
            name,
            kind,
            start: if enabled() { unix_nanos() } else { 0 },
            attributes: Vec::new(),
            error: None,
        }
    }

    /// [`Span::start`] continuing a `traceparent` value (ignored when malformed).
    pub fn continue_from(name: &'static str, kind: SpanKind, traceparent: Option<&str>) -> Self {
        Self::start(name, kind, traceparent.and_then(TraceContext::parse))
    }

    /// This span's context: what its children and the next hop continue.
    pub fn context(&self) -> TraceContext {
        self.context
    }

    /// The trace id as hex (for log fields).
    pub fn trace_id(&self) -> String {
        self.context.trace_id_hex()
    }

    /// Add a string attribute (recorded only when exporting).
    pub fn attr(&mut self, key: &str, value: impl std::fmt::Display) {
        if enabled() {
            self.attributes.push((key.to_string(), value.to_string()));
        }
    }

    /// Mark the operation failed.
    pub fn fail(&mut self, message: impl std::fmt::Display) {
        if enabled() {
            self.error = Some(message.to_string());
        }
    }

    /// End the span now.
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(exporter) = EXPORTER.get() else {
            return;
        };
        if !self.context.sampled() {
            return;
        }
        let span = FinishedSpan {
            name: self.name.to_string(),
            context: self.context,
            parent: self.parent,
            kind: self.kind,
            start_unix_nanos: self.start,
            end_unix_nanos: unix_nanos(),
            attributes: std::mem::take(&mut self.attributes),
            error: self.error.take(),
        };
        if exporter.tx.try_send(span).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_continue_a_traceparent_or_start_a_trace() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = Span::continue_from("x", SpanKind::Server, Some(tp));
        assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            child.parent,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_ne!(child.context().span_id_hex(), "00f067aa0ba902b7");

        let root = Span::continue_from("x", SpanKind::Server, Some("garbage"));
        assert_eq!(root.parent, None);
        assert_ne!(root.trace_id(), child.trace_id());
        assert!(TraceContext::parse(&root.context().traceparent()).is_some());
    }

    #[test]
    fn config_needs_an_http_url() {
        let mut c = TelemetryConfig::default();
        assert!(c.check().is_ok());
        c.otlp_endpoint = "https://collector:4318".into();
        assert!(c.check().unwrap_err().contains("telemetry.otlp_endpoint"));
        c.otlp_endpoint = "http://127.0.0.1:4318".into();
        assert!(c.check().is_ok());
    }
}
