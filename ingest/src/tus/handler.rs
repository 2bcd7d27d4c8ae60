//! tus 1.0.0 endpoints (https://tus.io/protocols/resumable-upload): core protocol — HEAD and
//! PATCH on `/files/{id}`, OPTIONS discovery — and the Creation extension — POST `/files/`.
//!
//! PATCH bodies stream from the socket into the spool file at the upload's offset, one buffer
//! at a time, never held whole in memory. The offset the server acknowledges (204
//! `Upload-Offset`, HEAD) is always durable: spool bytes are fdatasync'ed before the state file
//! records them. When a client disconnects or stalls mid-body, the bytes received so far are
//! kept and recorded, so HEAD + PATCH resumes from there. The PATCH that completes an upload
//! also finishes it ([`crate::tus::finish`]) before answering.

use ringcast_infra::trace_export::Span;
use ringcast_proto::trace_context::{self, SpanKind};
use std::collections::BTreeMap;

use ringcast_proto::auth::Caller;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::job::Priority;
use ringcast_proto::tus::{
    check_offset, check_patch_content_type, check_resumable, parse_length, parse_metadata,
    parse_offset, TusError, TUS_EXTENSIONS, TUS_VERSION,
};
use ringcast_proto::versions::ALLOW_DUPLICATES;
use tracing::Instrument as _;

use crate::app::App;
use crate::error::IngestError;
use crate::metrics::UploadErrorKind;
use crate::tus::dedup;
use crate::tus::finish::{self, Finished};
use crate::tus::upload_store::{UploadPhase, UploadState};
use ringcast_server::Conn;
use ringcast_server::Response;
use sha2::Digest as _;

/// The 403 message for a `priority` other than normal from a caller who is not an admin.
pub const PRIORITY_REFUSED: &str =
    "only admin keys may choose a job priority; uploads by other keys run at normal";

/// During one long PATCH (tus-js-client sends a whole file in one by default), make the offset
/// durable every this many bytes so a server crash loses at most this much.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// The tus discovery headers (OPTIONS).
pub fn discovery_headers(app: &App, resp: Response) -> Response {
    resp.header("Tus-Resumable", TUS_VERSION)
        .header("Tus-Version", TUS_VERSION)
        .header("Tus-Extension", TUS_EXTENSIONS)
        .header("Tus-Max-Size", app.config.max_upload_bytes.to_string())
}

/// `/files/`: POST creates an upload.
pub async fn collection(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    method: &Method,
) -> Result<Response, IngestError> {
    match method {
        Method::Post => create(app, caller, head).await,
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "OPTIONS, POST",
        }),
    }
}

/// `/files/{id}`: HEAD reports the offset, PATCH appends.
pub async fn upload(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    method: &Method,
    id: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    let span = tracing::info_span!("upload", id = %id);
    match method {
        Method::Head => offset(app, caller, head, id).instrument(span).await,
        Method::Patch => patch(app, caller, head, id, conn).instrument(span).await,
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "OPTIONS, HEAD, PATCH",
        }),
    }
}

/// Parse the creation request's metadata: every pair is kept (values as lossy UTF-8), and
/// `priority` must name a queue when present. Only admin keys choose a priority (DESIGN.md
/// "The platform model": priorities come from the caller's role, never from anonymous
/// metadata); anyone else asking for one other than `normal` gets 403.
fn creation_metadata(
    head: &RequestHead,
    admin: bool,
) -> Result<(BTreeMap<String, String>, Priority), IngestError> {
    let pairs = parse_metadata(head.header("upload-metadata"))?;
    let mut meta = BTreeMap::new();
    for (key, value) in pairs {
        meta.insert(key, String::from_utf8_lossy(&value).into_owned());
    }
    let priority = match meta.get("priority").map(String::as_str) {
        None | Some("") | Some("normal") => Priority::Normal,
        Some("high" | "low") if !admin => {
            return Err(IngestError::Forbidden(PRIORITY_REFUSED.into()));
        }
        Some("high") => Priority::High,
        Some("low") => Priority::Low,
        Some(other) => {
            return Err(TusError::BadMetadata(format!(
                "priority must be high, normal or low, not {other:?}"
            ))
            .into())
        }
    };
    match meta.get(ALLOW_DUPLICATES.0).map(String::as_str) {
        None => {}
        Some(v) if v == ALLOW_DUPLICATES.1 => {}
        Some(other) => {
            return Err(TusError::BadMetadata(format!(
                "duplicates may only be \"allow\", not {other:?}"
            ))
            .into())
        }
    }
    Ok((meta, priority))
}

async fn create(app: &App, caller: &Caller, head: &RequestHead) -> Result<Response, IngestError> {
    check_resumable(head.header("tus-resumable"))?;
    if !caller.role.may_write() {
        return Err(IngestError::Forbidden(format!(
            "a {} key may not upload",
            caller.role
        )));
    }
    // Extensions we do not advertise get a clear refusal instead of a silently wrong upload.
    if head.header("upload-defer-length").is_some() {
        return Err(IngestError::BadRequest(
            "Upload-Defer-Length is not supported; send Upload-Length".into(),
        ));
    }
    if head.header("upload-concat").is_some() {
        return Err(IngestError::BadRequest(
            "the concatenation extension is not supported".into(),
        ));
    }
    let length = parse_length(head.header("upload-length"), app.config.max_upload_bytes)?;
    if length == 0 {
        return Err(IngestError::BadRequest(
            "Upload-Length must be at least 1: an empty file is not a video".into(),
        ));
    }
    let (meta, priority) = creation_metadata(head, caller.role.is_admin())?;
    // A new version of an existing video: the caller must own it (or be an admin). Checked
    // again at the finish (the video may be deleted meanwhile).
    if let Some(video) = meta
        .get(UploadState::VIDEO_ID_KEY)
        .filter(|v| !v.is_empty())
    {
        crate::versions::check_target(app, caller, video).await?;
    }
    let raw = head
        .header("upload-metadata")
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string);
    crate::admission::space::check(app, length)?;
    let state = app
        .uploads
        .create(length, meta, raw, priority, &caller.owner)
        .await?;
    crate::admission::quota::admit_new(app, &state).await?;
    app.metrics.upload_created();
    report_progress(app, &state, 0).await;
    tracing::info!(
        upload = %state.id,
        video = %state.video(),
        owner = %state.owner,
        length,
        priority = priority.as_str(),
        filename = state.metadata.get("filename").map(String::as_str).unwrap_or(""),
        "upload created"
    );
    Ok(Response::new(201)
        .header("Location", app.config.upload_location(&state.id))
        .header("Upload-Offset", "0"))
}

/// The upload's state or 404 (403 when it is another owner's, 410 once rejected).
async fn existing(app: &App, caller: &Caller, id: &str) -> Result<UploadState, IngestError> {
    let state = app
        .uploads
        .load(id)
        .await?
        .ok_or_else(|| IngestError::NotFound(format!("upload {id}")))?;
    if !caller.may_change(Some(&state.owner)) {
        return Err(IngestError::Forbidden(format!(
            "upload {id} belongs to another owner"
        )));
    }
    if state.phase == UploadPhase::Rejected {
        return Err(IngestError::Rejected {
            id: state.id,
            reason: state.reject_reason.unwrap_or_default(),
        });
    }
    Ok(state)
}

/// HEAD: the durable offset.
async fn offset(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    id: &str,
) -> Result<Response, IngestError> {
    check_resumable(head.header("tus-resumable"))?;
    let state = existing(app, caller, id).await?;
    let mut resp = Response::new(200)
        .header("Upload-Offset", state.offset.to_string())
        .header("Upload-Length", state.length.to_string())
        // tus: HEAD responses must not be cached; the offset moves.
        .header("Cache-Control", "no-store");
    if let Some(raw) = &state.raw_metadata {
        resp = resp.header("Upload-Metadata", raw.clone());
    }
    if state.phase == UploadPhase::Finished {
        resp = finished_headers(resp, &state);
    }
    Ok(resp)
}

/// `Ringcast-Video-Id` / `Ringcast-Job-Id` of a finished upload (`Ringcast-Duplicate: true`
/// and the existing video's id, no job, for a duplicate).
fn finished_headers(resp: Response, state: &UploadState) -> Response {
    if let Some(existing) = &state.duplicate_of {
        return resp
            .header("Ringcast-Video-Id", existing.clone())
            .header("Ringcast-Duplicate", "true");
    }
    match &state.plan {
        Some(plan) => resp
            .header("Ringcast-Video-Id", plan.video(&state.id).to_string())
            .header("Ringcast-Job-Id", plan.job_id.clone()),
        None => resp,
    }
}

/// Status of the final PATCH: 204, or 200 for a duplicate (DESIGN.md "Duplicate uploads": the
/// existing video comes back; tus clients accept any 2xx).
fn finished_status(state: &UploadState) -> u16 {
    if state.duplicate_of.is_some() {
        200
    } else {
        204
    }
}

/// Minimum time between two progress reports of one PATCH (`rc:video:{id}:upload`).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Tell progress streams how far the upload is (best effort: a failure costs the streams an
/// update, never the upload).
async fn report_progress(app: &App, state: &UploadState, offset: u64) {
    let progress = ringcast_proto::progress::UploadProgress {
        upload_id: state.id.clone(),
        offset,
        length: state.length,
        outcome: None,
    };
    let versions = ringcast_infra::platform::versions::Versions::new(&app.queue);
    let call = versions.set_upload_progress(state.video(), &state.owner, &progress);
    if let Err(e) = crate::redis_call::with_timeout(call).await {
        tracing::debug!(error = %e, "upload progress not recorded");
    }
}

async fn patch(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    id: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    check_resumable(head.header("tus-resumable"))?;
    check_patch_content_type(head.header("content-type"))?;
    let claimed = parse_offset(head.header("upload-offset"))?;
    // Lock before reading the state so the offset check and the writes see the same state.
    let _lock = app
        .uploads
        .try_lock(id)
        .ok_or_else(|| IngestError::Locked(id.to_string()))?;
    let mut state = existing(app, caller, id).await?;
    check_offset(claimed, state.offset)?;
    let Some(body_len) = conn.body_remaining() else {
        return Err(IngestError::LengthRequired);
    };
    if body_len > state.remaining() {
        // Refused before a byte is written: the upload stays exactly as it was.
        return Err(IngestError::BodyTooLarge {
            body: body_len,
            remaining: state.remaining(),
        });
    }
    if state.phase == UploadPhase::Finished {
        // A retry of the final PATCH whose response was lost: same answer again.
        let resp = Response::new(finished_status(&state))
            .header("Upload-Offset", state.offset.to_string());
        return Ok(finished_headers(resp, &state));
    }
    if body_len > 0 {
        crate::admission::space::check(app, body_len)?;
        receive(app, &mut state, conn).await?;
    }
    if state.offset < state.length {
        return Ok(Response::new(204).header("Upload-Offset", state.offset.to_string()));
    }
    // Complete: store and enqueue before acknowledging, so a 204 means "a job exists". A body-less
    // PATCH at offset == length lands here too and retries a finish that failed earlier.
    // One upload, one trace: the client's `traceparent` (on the completing PATCH) is
    // continued, or a trace starts here; the job carries this span's context on.
    let mut span = Span::continue_from(
        "ingest.upload.finish",
        SpanKind::Server,
        head.header(trace_context::HEADER),
    );
    span.attr("upload.id", &state.id);
    let log_span = tracing::info_span!("upload", trace_id = %span.trace_id());
    let finished = finish::finish(app, caller, &mut state, Some(span.context()))
        .instrument(log_span)
        .await;
    let Finished {
        video_id, job_id, ..
    } = match finished {
        Ok(f) => f,
        Err(e) => {
            span.fail(&e);
            return Err(e);
        }
    };
    span.attr("video.id", &video_id);
    if let Some(job) = &job_id {
        span.attr("job.id", job);
    }
    span.end();
    let mut resp = Response::new(finished_status(&state))
        .header("Upload-Offset", state.offset.to_string())
        .header("Ringcast-Video-Id", video_id);
    resp = match job_id {
        Some(job) => resp.header("Ringcast-Job-Id", job),
        None => resp.header("Ringcast-Duplicate", "true"),
    };
    Ok(resp)
}

/// Why the body stopped early.
enum Interrupted {
    Client(std::io::Error),
    Disk(std::io::Error),
}

/// Stream the request body into the spool at `state.offset`, then make it durable and record
/// the new offset — also when the body was cut short, so the client can resume.
async fn receive(app: &App, state: &mut UploadState, conn: &mut Conn) -> Result<(), IngestError> {
    // The source's sha256 follows the bytes as they are written (crate::tus::dedup).
    let mut hasher = dedup::hasher_at(app, state).await?;
    let file = app.uploads.open_spool(&state.id).await?;
    let start = state.offset;
    let mut pos = start;
    let mut checkpoint_at = start + CHECKPOINT_BYTES;
    let mut reported = std::time::Instant::now();
    // Pooled per worker (bounded memory) and paced (minimum rate, deadline): crate::admission.
    let (mut buf, chunk, lease) = crate::admission::buffers::take(app);
    let mut pace = crate::admission::pace::BodyPace::start(app, conn);
    let outcome = loop {
        let (res, b) = conn.read_body(buf, chunk).await;
        buf = b;
        let n = match res {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(Interrupted::Client(pace.explain(e))),
        };
        let (res, b) = file.write_all_at(buf, pos).await;
        buf = b;
        if let Err(e) = res {
            break Err(Interrupted::Disk(e));
        }
        hasher.update(&buf[..n]);
        pos += n as u64;
        if let Err(e) = pace.observe(conn, n) {
            break Err(Interrupted::Client(e));
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = std::time::Instant::now();
            report_progress(app, state, pos).await;
        }
        if pos >= checkpoint_at {
            checkpoint_at = pos + CHECKPOINT_BYTES;
            file.sync_data().await?;
            state.offset = pos;
            app.uploads.save(state).await?;
        }
    };
    // Whatever happened to the connection, what reached the file is kept: durable first, then
    // claimed in the state. A failed write left `pos` at the last complete write.
    lease.give_back(buf);
    let synced = file.sync_data().await;
    let _ = file.close().await;
    // A full disk usually shows here too (the state file is written after the data): counted as
    // a spool error like a failed data write.
    let recorded = match synced {
        Ok(()) => {
            state.offset = pos;
            app.uploads.save(state).await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = recorded {
        app.metrics.upload_error(UploadErrorKind::Spool);
        tracing::error!(offset = pos, error = %e, "recording the spooled bytes failed");
        return Err(e);
    }
    // Kept at the offset just recorded: the next PATCH (any core) continues it.
    app.uploads.hashers.put(&state.id, pos, hasher);
    if pos < state.length {
        report_progress(app, state, pos).await;
    }
    app.metrics.bytes_received(pos - start);
    match outcome {
        Ok(()) => {
            tracing::debug!(offset = pos, length = state.length, "chunk stored");
            Ok(())
        }
        Err(Interrupted::Client(e)) => {
            app.metrics.upload_error(UploadErrorKind::Interrupted);
            tracing::info!(offset = pos, error = %e, "PATCH body interrupted; offset kept for resume");
            if let Some(slow) = crate::admission::pace::too_slow(app, &e) {
                return Err(slow.into());
            }
            if e.kind() == std::io::ErrorKind::TimedOut {
                Err(IngestError::RequestTimeout)
            } else {
                Err(IngestError::ClientGone(e))
            }
        }
        Err(Interrupted::Disk(e)) => {
            app.metrics.upload_error(UploadErrorKind::Spool);
            tracing::error!(offset = pos, error = %e, "spool write failed");
            Err(IngestError::Io(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::http::{parse_request, Limits};

    fn head_with_metadata(meta: &str) -> RequestHead {
        let raw = format!("POST /files/ HTTP/1.1\r\nHost: t\r\nUpload-Metadata: {meta}\r\n\r\n");
        parse_request(raw.as_bytes(), &Limits::default())
            .expect("parse")
            .expect("complete")
            .0
    }

    #[test]
    fn metadata_and_priority() {
        // filename "clip.mp4", priority "low"
        let (meta, p) = creation_metadata(
            &head_with_metadata("filename Y2xpcC5tcDQ=,priority bG93"),
            true,
        )
        .expect("ok");
        assert_eq!(meta.get("filename").map(String::as_str), Some("clip.mp4"));
        assert_eq!(p, Priority::Low);
        let (_, p) = creation_metadata(&head_with_metadata("title VA=="), false).expect("ok");
        assert_eq!(p, Priority::Normal, "default");
        // priority "urgent" is not a queue; a broken pair is malformed.
        for bad in ["priority dXJnZW50", "filename !!"] {
            let e = creation_metadata(&head_with_metadata(bad), true).expect_err(bad);
            assert_eq!(e.status(), 400);
        }
        // priority "high" or "low": admins only.
        let high = head_with_metadata("priority aGlnaA==");
        let e = creation_metadata(&high, false).expect_err("high refused");
        assert_eq!((e.status(), e.to_string()), (403, PRIORITY_REFUSED.into()));
        let (_, p) = creation_metadata(&high, true).expect("admin");
        assert_eq!(p, Priority::High);
        let low = head_with_metadata("priority bG93");
        assert_eq!(
            creation_metadata(&low, false).expect_err("low").status(),
            403
        );
    }
}
