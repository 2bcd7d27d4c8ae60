//! W3C Trace Context (`traceparent`, <https://www.w3.org/TR/trace-context/>) and the OTLP/HTTP
//! JSON body of finished spans (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>).
//!
//! One upload is one trace: the ingest continues the client's `traceparent` (or starts a trace),
//! passes its span's context on with the job (the `traceparent` field of the job's stream
//! entry), and the transcoder's job span is its child. Ids come from the caller (random bytes
//! from the I/O side), so everything here is pure.

use serde_json::{json, Value};

/// `traceparent` header / field name.
pub const HEADER: &str = "traceparent";

/// Field of the video hash `rc:video:{id}` holding the `traceparent` of the video's latest
/// transcode job span (written by a transcoder that exports spans), which an edge's first origin
/// fetch of the video continues.
pub const VIDEO_FIELD: &str = "traceparent";

/// A span's place in a trace: trace id, its own span id and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// W3C `trace-flags` (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// A new trace rooted at span `span_id` (sampled).
    pub fn root(trace_id: [u8; 16], span_id: [u8; 8]) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(Self {
            trace_id,
            span_id,
            flags: 1,
        })
    }

    /// A child span `span_id` in the same trace.
    pub fn child(&self, span_id: [u8; 8]) -> Self {
        Self { span_id, ..*self }
    }

    /// Parse a `traceparent` value (version `00`; a higher version is read by its first four
    /// fields, as the spec asks). `None` for anything malformed, including all-zero ids.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        let mut parts = v.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let rest = parts.next();
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && rest.is_some() {
            return None;
        }
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        if !(is_lower_hex(trace) && is_lower_hex(span) && is_lower_hex(flags)) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        let ctx = Self::root(trace_id, span_id)?;
        Some(Self { flags, ..ctx })
    }

    /// The `traceparent` value of this span (version `00`).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// OTLP span kinds used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// A finished span, ready for export.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedSpan {
    pub name: String,
    pub context: TraceContext,
    /// The parent span's id (`None` for a root span).
    pub parent: Option<[u8; 8]>,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// String attributes (`video.id`, `job.id`, …).
    pub attributes: Vec<(String, String)>,
    /// Whether the operation failed (OTLP status code 2), with its message.
    pub error: Option<String>,
}

/// The OTLP/HTTP JSON body (`ExportTraceServiceRequest`) of `spans` from `service`.
pub fn otlp_json(service: &str, spans: &[FinishedSpan]) -> Value {
    let spans: Vec<Value> = spans.iter().map(span_json).collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [attr("service.name", service)]},
            "scopeSpans": [{
                "scope": {"name": "ringcast"},
                "spans": spans,
            }],
        }],
    })
}

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn span_json(s: &FinishedSpan) -> Value {
    let mut v = json!({
        "traceId": s.context.trace_id_hex(),
        "spanId": s.context.span_id_hex(),
        "name": s.name,
        "kind": s.kind as u8,
        // 64-bit integers are strings in OTLP JSON.
        "startTimeUnixNano": s.start_unix_nanos.to_string(),
        "endTimeUnixNano": s.end_unix_nanos.max(s.start_unix_nanos).to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
        "status": match &s.error {
            None => json!({"code": 1}),
            Some(m) => json!({"code": 2, "message": m}),
        },
    });
    if let Some(p) = s.parent {
        v["parentSpanId"] = Value::String(hex::encode(p));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_renders_the_spec_example() {
        let c = TraceContext::parse(TP).expect("valid");
        assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id_hex(), "00f067aa0ba902b7");
        assert!(c.sampled());
        assert_eq!(c.traceparent(), TP);
        let child = c.child([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(child.trace_id, c.trace_id);
        assert_eq!(
            child.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A future version may add fields after the fourth.
        assert!(TraceContext::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"
        )
        .is_some());
    }

    #[test]
    fn otlp_json_has_ids_parent_times_and_status() {
        let c = TraceContext::parse(TP).expect("valid");
        let span = FinishedSpan {
            name: "transcoder.job".into(),
            context: c.child([9; 8]),
            parent: Some(c.span_id),
            kind: SpanKind::Consumer,
            start_unix_nanos: 10,
            end_unix_nanos: 5,
            attributes: vec![("job.id".into(), "j1".into())],
            error: Some("boom".into()),
        };
        let v = otlp_json("ringcast-transcoder", &[span]);
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0]["value"]["stringValue"],
            "ringcast-transcoder"
        );
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["spanId"], "0909090909090909");
        assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(s["kind"], 5);
        assert_eq!(s["startTimeUnixNano"], "10");
        assert_eq!(s["endTimeUnixNano"], "10", "never before the start");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["attributes"][0]["key"], "job.id");
    }
}
