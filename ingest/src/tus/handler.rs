//! tus 1.0.0 endpoints (https://tus.io/protocols/resumable-upload): core protocol — HEAD and
//! PATCH on `/files/{id}`, OPTIONS discovery — and the extensions: creation (POST `/files/`),
//! creation-with-upload (a body on the POST), creation-defer-length (`Upload-Length` on a
//! later PATCH), checksum ([`crate::tus::checksum`]), expiration ([`crate::tus::expiry`]),
//! termination (DELETE, [`crate::tus::termination`]) and concatenation
//! ([`crate::tus::concat`]). A PATCH takes the upload's lock over from a request whose client
//! went silent ([`crate::tus::lock`]).
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
use ringcast_proto::tus::checksum::{parse_checksum, ExpectedChecksum, CHECKSUM_ALGORITHMS};
use ringcast_proto::tus::concat::{parse_concat, Concat};
use ringcast_proto::tus::{
    check_offset, check_patch_content_type, check_resumable, parse_creation_length, parse_metadata,
    parse_offset, parse_patch_length, TusError, TUS_EXTENSIONS, TUS_VERSION,
};
use ringcast_proto::versions::ALLOW_DUPLICATES;
use tracing::Instrument as _;

use crate::app::App;
use crate::error::IngestError;
use crate::metrics::UploadErrorKind;
use crate::tus::checksum::ChunkDigest;
use crate::tus::dedup;
use crate::tus::digests::Digests;
use crate::tus::finish::{self, Finished};
use crate::tus::lock::UploadLock;
use crate::tus::spool_writer::{SpoolWriter, DIRECT_MIN_BODY};
use crate::tus::upload_store::{ConcatRole, UploadPhase, UploadState};
use crate::tus::{concat, expiry, termination};
use ringcast_server::Conn;
use ringcast_server::Response;

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
        .header("Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS)
        .header("Tus-Max-Size", app.config.max_upload_bytes.to_string())
}

/// `/files/`: POST creates an upload.
pub async fn collection(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    method: &Method,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    match method {
        Method::Post => create(app, caller, head, conn).await,
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "OPTIONS, POST",
        }),
    }
}

/// `/files/{id}`: HEAD reports the offset, PATCH appends, DELETE terminates.
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
        Method::Delete => {
            termination::delete(app, caller, head, id)
                .instrument(span)
                .await
        }
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "OPTIONS, HEAD, PATCH, DELETE",
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

async fn create(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    check_resumable(head.header("tus-resumable"))?;
    if !caller.role.may_write() {
        return Err(IngestError::Forbidden(format!(
            "a {} key may not upload",
            caller.role
        )));
    }
    let concat = parse_concat(head.header("upload-concat"))?;
    if let Some(Concat::Final(parts)) = concat {
        let (meta, priority) = creation_metadata(head, caller.role.is_admin())?;
        return concat::create_final(app, caller, head, parts, meta, priority).await;
    }
    let partial = concat == Some(Concat::Partial);
    let length = parse_creation_length(
        head.header("upload-length"),
        head.header("upload-defer-length"),
        app.config.max_upload_bytes,
    )?;
    // A partial upload may be empty (a client splitting a tiny file); a whole one may not.
    if length == Some(0) && !partial {
        return Err(IngestError::BadRequest(
            "Upload-Length must be at least 1: an empty file is not a video".into(),
        ));
    }
    // creation-with-upload: a body must be the upload's first bytes, typed as a PATCH's would
    // be; checked before the upload exists so a refused request leaves nothing behind.
    let body_len = conn.body_remaining().ok_or(IngestError::LengthRequired)?;
    let checksum = parse_checksum(head.header("upload-checksum"))?;
    if body_len > 0 {
        check_patch_content_type(head.header("content-type"))?;
        let room = length.unwrap_or(app.config.max_upload_bytes);
        if body_len > room {
            return Err(IngestError::BodyTooLarge {
                body: body_len,
                remaining: room,
            });
        }
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
    // A deferred length is checked by its body now and by its length once declared.
    crate::admission::space::check(app, length.unwrap_or(body_len))?;
    let mut state = app
        .uploads
        .create_with(
            length.unwrap_or(0),
            meta,
            raw,
            priority,
            &caller.owner,
            |s| {
                s.length_deferred = length.is_none();
                s.concat = partial.then_some(ConcatRole::Partial);
            },
        )
        .await?;
    crate::admission::quota::admit_new(app, &state).await?;
    app.metrics.upload_created();
    report_progress(app, &state, 0).await;
    tracing::info!(
        upload = %state.id,
        video = %state.video(),
        owner = %state.owner,
        length = ?length,
        partial,
        body = body_len,
        priority = priority.as_str(),
        filename = state.metadata.get("filename").map(String::as_str).unwrap_or(""),
        "upload created"
    );
    let location = app.config.upload_location(&state.id);
    if body_len == 0 && checksum.is_none() {
        return Ok(expiry::with_expires(
            app,
            &state,
            Response::new(201)
                .header("Location", location)
                .header("Upload-Offset", "0"),
        ));
    }
    // The new upload is nobody else's yet; the lock only keeps a quick PATCH from the same
    // client (which already knows the Location) out while the body is written.
    let lock = app
        .uploads
        .try_lock(&state.id)
        .ok_or_else(|| IngestError::Locked(state.id.clone()))?;
    let resp = append(
        app,
        caller,
        &mut state,
        conn,
        &lock,
        checksum.as_ref(),
        head.header(trace_context::HEADER),
    )
    .await
    .map_err(|e| expiry::on_error(app, &state, e))?;
    Ok(resp.with_status(201).header("Location", location))
}

/// The upload's state or 404 (403 when it is another owner's, 410 once rejected).
async fn existing(app: &App, caller: &Caller, id: &str) -> Result<UploadState, IngestError> {
    let state = crate::tus::ownership::owned_upload(app, caller, id).await?;
    if state.phase == UploadPhase::Rejected {
        return Err(IngestError::Rejected {
            id: state.id,
            reason: state.reject_reason.unwrap_or_default(),
        });
    }
    expiry::refuse_expired(app, &state)?;
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
        // tus: HEAD responses must not be cached; the offset moves.
        .header("Cache-Control", "no-store");
    resp = if state.length_deferred {
        resp.header("Upload-Defer-Length", "1")
    } else {
        resp.header("Upload-Length", state.length.to_string())
    };
    if let Some(raw) = &state.raw_metadata {
        resp = resp.header("Upload-Metadata", raw.clone());
    }
    resp = concat::head_header(app, &state, resp);
    if state.phase == UploadPhase::Finished {
        resp = finished_headers(resp, &state);
    }
    Ok(expiry::with_expires(app, &state, resp))
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
    let checksum = parse_checksum(head.header("upload-checksum"))?;
    // Lock before reading the state so the offset check and the writes see the same state.
    let lock = app
        .uploads
        .acquire(id)
        .await
        .ok_or_else(|| IngestError::Locked(id.to_string()))?;
    if lock.took_over() {
        app.metrics.lock_takeover();
    }
    let mut state = existing(app, caller, id).await?;
    // From here on the upload exists: a refusal of an unfinished one says when it expires.
    let result = patch_existing(
        app, caller, head, conn, &lock, &mut state, claimed, checksum,
    );
    result.await.map_err(|e| expiry::on_error(app, &state, e))
}

/// The PATCH of an upload that exists, locked by this request.
#[allow(clippy::too_many_arguments)]
async fn patch_existing(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    conn: &mut Conn,
    lock: &UploadLock,
    state: &mut UploadState,
    claimed: u64,
    checksum: Option<ExpectedChecksum>,
) -> Result<Response, IngestError> {
    let Some(body_len) = conn.body_remaining() else {
        return Err(IngestError::LengthRequired);
    };
    if matches!(state.concat, Some(ConcatRole::Final { .. })) && body_len > 0 {
        // tus Concatenation: "The Server MUST respond with 403 Forbidden to PATCH requests
        // against a final upload URL" (a body-less one still retries a failed finish).
        return Err(IngestError::Forbidden(
            "a final upload is made of its partial uploads and takes no bytes".into(),
        ));
    }
    let max = app.config.max_upload_bytes;
    let known = (!state.length_deferred).then_some(state.length);
    if let Some(length) =
        parse_patch_length(head.header("upload-length"), known, state.offset, max)?
    {
        if state.length_deferred {
            if length == 0 && !state.is_partial() {
                return Err(TusError::BadDeferLength(
                    "Upload-Length must be at least 1: an empty file is not a video".into(),
                )
                .into());
            }
            // creation-defer-length: the length is fixed from now on, and counts for the disk
            // reserve and the owner's quota like a length given at creation.
            crate::admission::space::check(app, length.saturating_sub(state.offset))?;
            state.length = length;
            crate::admission::quota::reserve(app, state).await?;
            state.length_deferred = false;
            app.uploads.save(state).await?;
        }
    }
    check_offset(claimed, state.offset)?;
    if body_len > state.remaining(max) {
        // Refused before a byte is written: the upload stays exactly as it was.
        return Err(IngestError::BodyTooLarge {
            body: body_len,
            remaining: state.remaining(max),
        });
    }
    if state.phase == UploadPhase::Finished {
        // A retry of the final PATCH whose response was lost: same answer again.
        let resp =
            Response::new(finished_status(state)).header("Upload-Offset", state.offset.to_string());
        return Ok(finished_headers(resp, state));
    }
    append(
        app,
        caller,
        state,
        conn,
        lock,
        checksum.as_ref(),
        head.header(trace_context::HEADER),
    )
    .await
}

/// Write the request's body (if any) at the upload's offset, then answer: 204 with the new
/// offset, or — once the upload is complete — finish it. Shared by PATCH and a creation
/// request with a body.
async fn append(
    app: &App,
    caller: &Caller,
    state: &mut UploadState,
    conn: &mut Conn,
    lock: &UploadLock,
    checksum: Option<&ExpectedChecksum>,
    traceparent: Option<&str>,
) -> Result<Response, IngestError> {
    let body_len = conn.body_remaining().unwrap_or(0);
    let received = std::time::Instant::now();
    if body_len > 0 {
        crate::admission::space::check(app, body_len)?;
        receive(app, state, conn, lock, checksum, body_len).await?;
    } else if let Some(expected) = checksum {
        // An empty chunk has a digest too; a wrong one is still a mismatch.
        ChunkDigest::new(expected.algorithm).check(expected)?;
    }
    // A partial upload is complete when its bytes are stored; only a final upload made of it
    // is finished (concatenation).
    if !state.is_complete() || state.is_partial() {
        let resp = Response::new(204).header("Upload-Offset", state.offset.to_string());
        return Ok(expiry::with_expires(app, state, resp));
    }
    // Complete: store and enqueue before acknowledging, so a 204 means "a job exists". A body-less
    // PATCH at offset == length lands here too and retries a finish that failed earlier.
    // One upload, one trace: the client's `traceparent` (on the completing PATCH) is
    // continued, or a trace starts here; the job carries this span's context on.
    let mut span = Span::continue_from("ingest.upload.finish", SpanKind::Server, traceparent);
    span.attr("upload.id", &state.id);
    let log_span = tracing::info_span!("upload", trace_id = %span.trace_id());
    let receive_ms = received.elapsed().as_secs_f64() * 1000.0;
    let finish_started = std::time::Instant::now();
    let finished = finish::finish(app, caller, state, Some(span.context()))
        .instrument(log_span)
        .await;
    let finish_ms = finish_started.elapsed().as_secs_f64() * 1000.0;
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
    // How the request's time split between taking the bytes (durable) and the finish (scan,
    // probe, store, enqueue): W3C Server-Timing, read by `scripts/bench-pipeline`.
    let mut resp = Response::new(finished_status(state))
        .header("Upload-Offset", state.offset.to_string())
        .header(
            "Server-Timing",
            format!("receive;dur={receive_ms:.1}, finish;dur={finish_ms:.1}"),
        )
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
    /// A newer request holds the upload now.
    TakenOver,
}

/// Stream the request body into the spool at `state.offset`, then make it durable and record
/// the new offset — also when the body was cut short, so the client can resume.
async fn receive(
    app: &App,
    state: &mut UploadState,
    conn: &mut Conn,
    lock: &UploadLock,
    checksum: Option<&ExpectedChecksum>,
    body_len: u64,
) -> Result<(), IngestError> {
    // The source's sha256 follows the bytes as they are written (crate::tus::dedup), fed by
    // the spool writer (crate::tus::digests: hashed on another thread while the next bytes
    // arrive).
    let hasher = dedup::hasher_at(app, state).await?;
    // With a checksum the chunk is all or nothing: kept only when its digest matches, so no
    // offset is recorded before the end, and the sha256 can go back to where it was.
    let before = checksum.map(|_| hasher.clone());
    let digests = Digests {
        source: hasher,
        chunk: checksum.map(|c| ChunkDigest::new(c.algorithm)),
    };
    let start = state.offset;
    let mut pos = start;
    let mut checkpoint_at = start + CHECKPOINT_BYTES;
    let mut reported = std::time::Instant::now();
    // Pooled per worker (bounded memory) and paced (minimum rate, deadline): crate::admission.
    let (mut buf, chunk, lease) = crate::admission::buffers::take(app);
    // O_DIRECT through aligned buffers for a PATCH with a pooled buffer and a body of at least
    // one aligned buffer; smaller ones are written buffered (crate::tus::spool_writer).
    let aligned = lease.is_pooled() && body_len >= DIRECT_MIN_BODY;
    let spool = app.uploads.spool_path(&state.id);
    let mut file = SpoolWriter::open(&spool, start, aligned, digests).await?;
    let mut pace = crate::admission::pace::BodyPace::start(app, conn);
    // Through aligned buffers the body is received straight into the buffer written with
    // O_DIRECT (no copy out of a socket buffer), a whole buffer's room per read.
    let in_place = file.receives_in_place();
    let outcome = loop {
        let res = if in_place {
            file.receive(conn).await
        } else {
            let (res, b) = conn.read_body(buf, chunk).await;
            buf = b;
            res
        };
        let n = match res {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(Interrupted::Client(pace.explain(e))),
        };
        // Another request took the upload over while this one waited for its client: stop
        // before writing a byte (crate::tus::lock).
        let Some(writing) = lock.begin_write() else {
            break Err(Interrupted::TakenOver);
        };
        let res = if in_place {
            file.keep(n, lock).await
        } else {
            let (res, b) = file.write(buf, lock).await;
            buf = b;
            res
        };
        if let Err(e) = res {
            break Err(Interrupted::Disk(e));
        }
        pos += n as u64;
        if let Err(e) = pace.observe(conn, n) {
            break Err(Interrupted::Client(e));
        }
        if pos >= checkpoint_at && checksum.is_none() {
            checkpoint_at = pos + CHECKPOINT_BYTES;
            // The hashing and the buffer filling go on (SpoolWriter::checkpoint): the offset
            // recorded is the end of the bytes made durable, up to a buffer behind `pos`.
            let durable = file.checkpoint().await?;
            if durable > state.offset {
                state.offset = durable;
                app.uploads.save(state).await?;
            }
        }
        // The progress report (a Redis call) is outside the write guard: a takeover never
        // waits for Redis.
        drop(writing);
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = std::time::Instant::now();
            report_progress(app, state, pos).await;
        }
    };
    // Taken over: the new holder owns the upload and its offset; this request acknowledges
    // nothing (its unrecorded bytes lie past the recorded offset and get overwritten).
    let Some(_writing) = lock.begin_write() else {
        let _ = file.close().await;
        app.metrics.upload_error(UploadErrorKind::TakenOver);
        tracing::info!(
            offset = pos,
            "PATCH stopped: another request took the upload over"
        );
        return Err(IngestError::Locked(state.id.clone()));
    };
    // The source digest once it has consumed every byte received (taken early when the chunk
    // digest is checked).
    let mut source = None;
    if let Some(expected) = checksum {
        // All bytes or none: an interrupted or mismatching chunk is cut off again, and the
        // offset, the sha256 and the spool stay as they were before it.
        let verdict = match &outcome {
            Ok(()) => match file.catch_up_digests().await {
                Ok(()) => match file.take_digests() {
                    Some(Digests {
                        source: s,
                        chunk: Some(d),
                    }) => {
                        source = Some(s);
                        d.check(expected).map_err(IngestError::from)
                    }
                    _ => Err(IngestError::Io(std::io::Error::other(
                        "the chunk's digest was lost",
                    ))),
                },
                Err(e) => Err(IngestError::Io(e)),
            },
            Err(_) => Err(IngestError::BadRequest("interrupted".into())),
        };
        if let Err(refusal) = verdict {
            let truncated = file.close().await.and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&spool)?
                    .set_len(state.offset)
            });
            if let Err(e) = truncated {
                tracing::warn!(error = %e, "could not cut a discarded chunk off the spool");
            }
            if let Some(h) = before {
                app.uploads.hashers.put(&state.id, state.offset, h);
            }
            return match outcome {
                Err(interrupted) => Err(interrupted.into_error(app, state.offset)),
                Ok(()) if !matches!(refusal, IngestError::Tus(TusError::ChecksumMismatch)) => {
                    app.metrics.upload_error(UploadErrorKind::Spool);
                    tracing::error!(offset = state.offset, error = %refusal, "chunk discarded");
                    Err(refusal)
                }
                Ok(()) => {
                    app.metrics.upload_error(UploadErrorKind::Checksum);
                    tracing::info!(
                        offset = state.offset,
                        algorithm = expected.algorithm.name(),
                        "chunk discarded: checksum mismatch"
                    );
                    Err(refusal)
                }
            };
        }
    }
    // Whatever happened to the connection, what reached the file is kept: durable first, then
    // claimed in the state. A failed write left `pos` at the last complete write.
    lease.give_back(buf);
    // Makes the bytes durable and brings the digests up to `pos` (the ack waits for both).
    let synced = file.sync().await;
    app.metrics
        .spool_written(file.is_direct(), file.fell_back());
    let source = source.or_else(|| file.take_digests().map(|d| d.source));
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
    // Kept at the offset just recorded: the next PATCH (any core) continues it. (Without it —
    // a hash job lost — the next PATCH or the finish rehashes the stored prefix.)
    if let Some(hasher) = source {
        app.uploads.hashers.put(&state.id, pos, hasher);
    }
    if pos < state.length || state.length_deferred {
        report_progress(app, state, pos).await;
    }
    app.metrics.bytes_received(pos - start);
    match outcome {
        Ok(()) => {
            tracing::debug!(offset = pos, length = state.length, "chunk stored");
            Ok(())
        }
        Err(interrupted) => Err(interrupted.into_error(app, pos)),
    }
}

impl Interrupted {
    /// Count and log the interruption; the error the request ends with.
    fn into_error(self, app: &App, offset: u64) -> IngestError {
        match self {
            Interrupted::Client(e) => {
                app.metrics.upload_error(UploadErrorKind::Interrupted);
                tracing::info!(offset, error = %e, "PATCH body interrupted; offset kept for resume");
                if let Some(slow) = crate::admission::pace::too_slow(app, &e) {
                    return slow.into();
                }
                if e.kind() == std::io::ErrorKind::TimedOut {
                    IngestError::RequestTimeout
                } else {
                    IngestError::ClientGone(e)
                }
            }
            Interrupted::Disk(e) => {
                app.metrics.upload_error(UploadErrorKind::Spool);
                tracing::error!(offset, error = %e, "spool write failed");
                IngestError::Io(e)
            }
            Interrupted::TakenOver => {
                tracing::info!(
                    offset,
                    "PATCH stopped: another request took the upload over"
                );
                IngestError::Locked("taken over by a newer request".into())
            }
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
