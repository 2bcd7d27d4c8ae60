//! Live push and pull endpoints.
//!
//! - `PUT|POST /live/{key}`: a publisher streams MPEG-TS (chunked or with a Content-Length,
//!   e.g. `ffmpeg -re … -f mpegts -method PUT http://ingest/live/{key}`). The key is checked
//!   against `live.keys` before a byte of the body is read (403); a key with a publisher
//!   already attached answers 409. The first publisher of a stream gets a new version of the
//!   key's video and a live job on `rc:jobs:live` (the transcoder's live slots) whose `pull_url` points at the pull endpoint;
//!   a publisher reconnecting within the grace period continues the same stream.
//! - `GET /live/{key}/pull?token=…`: the stream's bytes as they arrive (chunked response, from
//!   the oldest byte still buffered), ending with the stream (after the grace period). The
//!   token comes from the job, so only the transcoder handed the job pulls.
//!
//! Cross-core fan-out and the buffer bound are in [`crate::live::fanout`].

use ringcast_infra::trace_export::Span;
use ringcast_proto::trace_context::{self, SpanKind};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::job::{now_ms, LiveSource, Priority, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_proto::secret::{constant_time_eq, redact};

use crate::app::App;
use crate::error::IngestError;
use crate::live::fanout::{Attached, LiveStream, PublishError, PullRead};
use crate::live::metrics::LiveMetrics;
use crate::redis_call::with_timeout;
use ringcast_server::Conn;
use ringcast_server::Response;

/// Largest piece of a push body read at once (one chunk of the pull log).
const READ_MAX: usize = 64 * 1024;

/// Route a `/live/…` request. `Ok(None)`: the handler wrote the response itself (a pull) or the
/// client is gone; the connection closes.
pub async fn handle(
    app: &App,
    head: &RequestHead,
    method: &Method,
    rest: &str,
    conn: &mut Conn,
) -> Result<Option<Response>, IngestError> {
    if let Some(key) = rest.strip_suffix("/pull") {
        return match method {
            Method::Get => pull(app, head, key, conn).await.map(|()| None),
            other => Err(IngestError::MethodNotAllowed {
                method: other.as_str().to_string(),
                allow: "GET",
            }),
        };
    }
    match method {
        Method::Put | Method::Post => push(app, head, rest, conn).await,
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "PUT, POST",
        }),
    }
}

/// The video id `key` publishes as, or 403.
fn authorise<'a>(app: &'a App, key: &str) -> Result<&'a str, IngestError> {
    if !keys::is_valid_id(key) {
        return Err(IngestError::Forbidden("unknown stream key".into()));
    }
    app.config
        .live
        .keys
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| IngestError::Forbidden("unknown stream key".into()))
}

async fn push(
    app: &App,
    head: &RequestHead,
    key: &str,
    conn: &mut Conn,
) -> Result<Option<Response>, IngestError> {
    let video_id = authorise(app, key)?.to_string();
    if !head.chunked && head.content_length.is_none() {
        return Err(IngestError::BadRequest(
            "a live push needs a chunked body or a Content-Length".into(),
        ));
    }
    let hub = &app.live;
    // A version is reserved (asynchronously, in Redis and the store) only when this publisher
    // starts a new stream; if the grace period of the old one runs out between the look and the
    // attach, the hub asks again.
    let mut fresh = None;
    let attached = loop {
        if fresh.is_none() && hub.needs_new_stream(key, Instant::now()) {
            let version = crate::versions::next_version(app, &video_id).await?;
            let token = uuid::Uuid::new_v4().simple().to_string();
            fresh = Some((video_id.clone(), version, token));
        }
        match hub.publish(key, Instant::now(), || fresh.take()) {
            Ok(attached) => break attached,
            Err(PublishError::NeedsIdentity) => continue,
            Err(PublishError::Busy(k)) => {
                return Err(IngestError::Conflict(format!(
                    "stream key {} already has a publisher",
                    redact(&k)
                )))
            }
        }
    };
    let stream = match attached {
        Attached::New(stream) => {
            hub.sweep();
            if let Err(e) = enqueue(app, &stream, head.header(trace_context::HEADER)).await {
                hub.end_now(&stream);
                return Err(e);
            }
            LiveMetrics::add(&app.metrics.live.streams_started, 1);
            tracing::info!(key = %redact(key), video = %stream.video_id, version = stream.version, "live stream started");
            stream
        }
        Attached::Resumed(stream) => {
            LiveMetrics::add(&app.metrics.live.reconnects, 1);
            // The transcoder watches this count to mark a discontinuity. Best effort: the
            // stream goes on without the tag if Redis is slow.
            if let Err(e) = with_timeout(app.queue.set_live_publishes(
                &stream.video_id,
                stream.version,
                stream.publishes(),
            ))
            .await
            {
                tracing::warn!(key = %redact(key), error = %e, "cannot record the live reconnect");
            }
            tracing::info!(
                key, video = %stream.video_id, version = stream.version,
                publishes = stream.publishes(), "live publisher reconnected; stream continues"
            );
            stream
        }
    };
    conn.set_body_read_timeout(app.config.live.publisher_timeout());
    let result = receive(app, head, conn, &stream).await;
    hub.publisher_left(&stream, Instant::now());
    schedule_expiry(app, Arc::clone(&stream));
    match result {
        Ok(bytes) => {
            tracing::info!(
                key = %redact(key),
                bytes,
                "live publisher finished its body; grace period started"
            );
            Ok(Some(Response::new(204).header("Cache-Control", "no-store")))
        }
        Err(e) => {
            tracing::info!(key = %redact(key), error = %e, "live publisher disconnected; grace period started");
            Err(IngestError::ClientGone(e))
        }
    }
}

/// Move the body into the stream's log; the byte count once the body is complete.
async fn receive(
    app: &App,
    head: &RequestHead,
    conn: &mut Conn,
    stream: &LiveStream,
) -> std::io::Result<u64> {
    let mut total = 0u64;
    if head.chunked {
        let mut decoder = ChunkedDecoder::new();
        let mut out = Vec::with_capacity(READ_MAX);
        while conn.read_chunked(&mut decoder, &mut out).await? {
            total += out.len() as u64;
            LiveMetrics::add(&app.metrics.live.bytes_received, out.len() as u64);
            stream.push(Bytes::copy_from_slice(&out));
        }
    } else {
        let mut buf = Vec::with_capacity(READ_MAX);
        loop {
            let (res, b) = conn.read_body(buf, READ_MAX).await;
            let n = res?;
            if n == 0 {
                break;
            }
            total += n as u64;
            LiveMetrics::add(&app.metrics.live.bytes_received, n as u64);
            stream.push(Bytes::copy_from_slice(&b[..n]));
            buf = b;
        }
    }
    Ok(total)
}

/// End the stream once the grace period is over, unless a publisher came back.
fn schedule_expiry(app: &App, stream: Arc<LiveStream>) {
    let grace = app.live.grace();
    let hub = Arc::clone(&app.live);
    monoio::spawn(async move {
        monoio::time::sleep(grace).await;
        if hub.expire(&stream, Instant::now()) {
            tracing::info!(key = %redact(&stream.key), video = %stream.video_id, version = stream.version,
                "live stream ended (grace period over)");
        }
    });
}

/// XADD the live job to `rc:jobs:live` (`Queue::enqueue` routes it; state first, like VOD jobs),
/// in span `ingest.live.start`: it continues the publisher's `traceparent` (or starts the
/// stream's trace), and the job carries it on to the transcoder.
async fn enqueue(
    app: &App,
    stream: &LiveStream,
    traceparent: Option<&str>,
) -> Result<(), IngestError> {
    let mut span = Span::continue_from("ingest.live.start", SpanKind::Server, traceparent);
    span.attr("video.id", &stream.video_id);
    span.attr("video.version", stream.version);
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: uuid::Uuid::new_v4().to_string(),
        video_id: stream.video_id.clone(),
        version: stream.version,
        source_key: String::new(),
        priority: Priority::High,
        created_ms: now_ms(),
        live: Some(LiveSource {
            pull_url: format!(
                "{}/live/{}/pull?token={}",
                pull_base(app),
                stream.key,
                stream.token
            ),
        }),
        container: None,
    };
    span.attr("job.id", &job.job_id);
    let tp = Some(span.context().traceparent());
    if let Err(e) = with_timeout(app.queue.enqueue_traced(&job, tp)).await {
        span.fail(&e);
        return Err(e);
    }
    Ok(())
}

fn pull_base(app: &App) -> String {
    if let Some(base) = &app.config.live.pull_base_url {
        return base.trim_end_matches('/').to_string();
    }
    let mut addr = app.config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    format!("http://{addr}")
}

async fn pull(
    app: &App,
    head: &RequestHead,
    key: &str,
    conn: &mut Conn,
) -> Result<(), IngestError> {
    let token = head
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap_or("");
    let stream = match app.live.get(key) {
        // Constant time: the token is the only secret between the pull URL and the stream.
        Some(s) if !token.is_empty() && constant_time_eq(s.token.as_bytes(), token.as_bytes()) => s,
        _ => {
            return Err(IngestError::NotFound(format!(
                "live stream {}",
                redact(key)
            )))
        }
    };
    let head_bytes = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-store\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    conn.write_raw(head_bytes)
        .await
        .map_err(IngestError::ClientGone)?;
    let mut rx = stream.subscribe();
    let mut offset = stream.first_offset();
    loop {
        rx.borrow_and_update();
        match stream.read(offset) {
            PullRead::Data(chunks, next) => {
                let len: usize = chunks.iter().map(Bytes::len).sum();
                let mut frame = Vec::with_capacity(len + 16);
                frame.extend_from_slice(format!("{len:x}\r\n").as_bytes());
                for c in &chunks {
                    frame.extend_from_slice(c);
                }
                frame.extend_from_slice(b"\r\n");
                conn.write_raw(frame)
                    .await
                    .map_err(IngestError::ClientGone)?;
                LiveMetrics::add(&app.metrics.live.bytes_pulled, len as u64);
                offset = next;
            }
            PullRead::Wait => {
                // The sender lives in the stream we hold, so this never errors.
                let _ = rx.changed().await;
            }
            PullRead::Eof => {
                let _ = conn.write_raw(b"0\r\n\r\n".to_vec()).await;
                tracing::info!(key = %redact(key), bytes = offset, "live pull finished (stream ended)");
                return Ok(());
            }
            PullRead::Lagged => {
                LiveMetrics::add(&app.metrics.live.pullers_dropped, 1);
                // Closing without the last chunk tells the puller the stream is truncated.
                tracing::warn!(
                    key = %redact(key),
                    offset,
                    "live puller fell behind the buffer; disconnecting it"
                );
                return Ok(());
            }
        }
    }
}
