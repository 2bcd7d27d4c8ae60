//! One upload's trace, ingest → transcoder → edge, received by a minimal OTLP/HTTP collector (an
//! in-test HTTP server taking `POST /v1/traces` JSON): the ingest's span continues the client's
//! `traceparent` (same trace id, the client's span as parent), the transcoder's job span is the
//! child of the ingest's span, the edge's first origin fetch of the video is the child of the
//! job span, and the JSON logs of the ingest and the transcoder carry the trace id.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringcast_testkit::clips::Clip;
use ringcast_testkit::{wait_until, EdgeOptions, IngestOptions, Service, Stack, TranscoderOptions};
use serde_json::Value;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Every span received so far, with the `service.name` it came from.
type Spans = Arc<Mutex<Vec<(String, Value)>>>;

/// A collector on a free port; answers every request 200 and keeps the spans.
fn collector() -> (SocketAddr, Spans) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
    let addr = listener.local_addr().expect("addr");
    let spans: Spans = Arc::default();
    let keep = Arc::clone(&spans);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || serve(stream, &keep));
        }
    });
    (addr, spans)
}

/// Requests on one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, spans: &Spans) {
    let mut out = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if line.starts_with("POST /v1/traces") {
            let v: Value = serde_json::from_slice(&body).expect("OTLP JSON");
            for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["key"] == "service.name"))
                    .and_then(|x| x["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_string();
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for s in ss["spans"].as_array().into_iter().flatten() {
                        spans
                            .lock()
                            .expect("lock")
                            .push((service.clone(), s.clone()));
                    }
                }
            }
        }
        let _ = out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        );
    }
}

fn find(spans: &Spans, service: &str, name: &str) -> Option<Value> {
    spans
        .lock()
        .expect("lock")
        .iter()
        .find(|(svc, s)| svc == service && s["name"] == name)
        .map(|(_, s)| s.clone())
}

fn telemetry(addr: SocketAddr) -> String {
    format!("log_json = true\n[telemetry]\notlp_endpoint = \"http://{addr}\"")
}

fn upload(ingest: &Service, bytes: &[u8], traceparent: &str) -> String {
    let tus = ("Tus-Resumable", "1.0.0");
    let len = bytes.len().to_string();
    let r = ingest
        .conn()
        .request("POST", "/files/", &[tus, ("Upload-Length", &len)], b"")
        .expect("POST /files/");
    assert_eq!(r.status, 201, "{}", r.text());
    let loc = r.header("location").expect("Location").to_string();
    let r = ingest
        .conn()
        .request(
            "PATCH",
            &loc,
            &[
                tus,
                ("Content-Type", "application/offset+octet-stream"),
                ("Upload-Offset", "0"),
                ("traceparent", traceparent),
            ],
            bytes,
        )
        .expect("PATCH");
    assert_eq!(r.status, 204, "{}", r.text());
    r.header("ringcast-job-id").expect("job id").to_string()
}

#[test]
fn one_upload_is_one_trace_from_the_ingest_to_the_transcoder_and_the_edge() {
    let (addr, spans) = collector();
    let stack = Stack::builder()
        .ingest(IngestOptions::new().toml(telemetry(addr)))
        .transcoder(
            TranscoderOptions::new()
                .name("tc-trace")
                .toml(telemetry(addr)),
        )
        .edge(EdgeOptions::new().toml(telemetry(addr)))
        .start();
    let clip = Clip::new(320, 240)
        .seconds(1)
        .write(stack.dir(), "trace.mp4");
    let bytes = std::fs::read(clip).expect("clip");
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let job = upload(stack.ingest(), &bytes, &traceparent);

    wait_until(Duration::from_secs(120), "the ingest and job spans", || {
        find(&spans, "ringcast-ingest", "ingest.upload.finish").is_some()
            && find(&spans, "ringcast-transcoder", "transcoder.job").is_some()
    });
    let ingest = find(&spans, "ringcast-ingest", "ingest.upload.finish").expect("ingest span");
    let job_span = find(&spans, "ringcast-transcoder", "transcoder.job").expect("job span");
    assert_eq!(ingest["traceId"], TRACE_ID, "{ingest}");
    assert_eq!(ingest["parentSpanId"], CLIENT_SPAN, "{ingest}");
    assert_eq!(job_span["traceId"], TRACE_ID, "{job_span}");
    assert_eq!(job_span["parentSpanId"], ingest["spanId"], "{job_span}");
    assert_ne!(job_span["spanId"], ingest["spanId"]);
    let has = |span: &Value, key: &str, value: &str| {
        span["attributes"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["key"] == key && x["value"]["stringValue"] == value)
        })
    };
    assert!(has(&ingest, "job.id", &job), "{ingest}");
    assert!(has(&job_span, "job.id", &job), "{job_span}");
    let (start, end) = (
        job_span["startTimeUnixNano"].as_str().expect("start"),
        job_span["endTimeUnixNano"].as_str().expect("end"),
    );
    assert!(
        end.parse::<u64>().expect("end") > start.parse::<u64>().expect("start"),
        "{job_span}"
    );

    // Published: the edge's first origin fetch of the video continues the job's span.
    let video = job_video(&stack, &job);
    let edge = stack.edge();
    wait_until(
        Duration::from_secs(120),
        "the video to be published",
        || edge.get(&format!("/v/{video}/master.m3u8")).status == 200,
    );
    wait_until(
        Duration::from_secs(30),
        "the edge's origin fetch span",
        || find(&spans, "ringcast-edge", "edge.origin.fetch").is_some(),
    );
    // The job's start events carry its span's context too (beside the event, field
    // `traceparent`), for readers of the event streams.
    let master = edge.get(&format!("/v/{video}/master.m3u8")).text();
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a variant");
    let rendition = variant
        .split('/')
        .nth(1)
        .expect("{version}/{rendition}/index.m3u8");
    let mut conn = redis::Client::open(stack.redis_url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("rc:events:{video}:1:{rendition}"))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query(&mut conn)
        .expect("XRANGE");
    let job_tp = format!(
        "00-{TRACE_ID}-{}-01",
        job_span["spanId"].as_str().expect("span id")
    );
    assert_eq!(
        first
            .ids
            .first()
            .and_then(|e| e.get::<String>("traceparent")),
        Some(job_tp),
        "{master}"
    );

    let fetch = find(&spans, "ringcast-edge", "edge.origin.fetch").expect("edge span");
    assert_eq!(fetch["traceId"], TRACE_ID, "{fetch}");
    assert_eq!(fetch["parentSpanId"], job_span["spanId"], "{fetch}");
    assert!(has(&fetch, "video.id", &video), "{fetch}");
    // One span per video and edge, not per object.
    assert_eq!(edge.get(&format!("/v/{video}/master.m3u8")).status, 200);
    // Checking that nothing more arrives: wait out a few export flushes.
    std::thread::sleep(ringcast_infra::trace_export::FLUSH_EVERY * 3);
    let edge_spans = spans
        .lock()
        .expect("lock")
        .iter()
        .filter(|(svc, _)| svc == "ringcast-edge")
        .count();
    assert_eq!(edge_spans, 1);

    // The JSON logs carry the trace id on the lines logged inside the spans.
    for service in [stack.ingest(), stack.transcoder()] {
        assert!(
            service
                .log_text()
                .lines()
                .any(|l| l.starts_with('{') && l.contains(TRACE_ID)),
            "{} logs without trace id:\n{}",
            service.name,
            service.log_text()
        );
    }
}

/// The video id of job `job` (its job hash).
fn job_video(stack: &Stack, job: &str) -> String {
    let (rt, _store, queue) = support::clients(stack);
    let status = rt
        .block_on(queue.job_status(job))
        .expect("job_status")
        .expect("job exists");
    status.video_id
}
