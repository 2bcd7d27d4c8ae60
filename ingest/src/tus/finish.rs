//! Finishing a complete upload: sniff the container, inspect the file with ffprobe and hold it
//! to the media limits ([`crate::tus::probe`]), store the spool file as
//! `sources/{video}/{version}/source` (linked into a filesystem store on the same filesystem,
//! not copied: `ObjectStore::put_sealed_file`), enqueue the transcode job, then mark the upload
//! finished and drop the spool file. A refused file (415 not a video, 422 over a limit or unreadable in
//! time) is marked rejected and its spool removed: no object, no job, and later requests on
//! the upload get 410 with the reason.
//!
//! An upload whose metadata names a `video_id` becomes that video's next version (ownership is
//! checked again here: [`crate::versions::check_target`]); any other is a new video whose id is
//! the upload id. Before anything else, the source's sha256 (computed while spooling,
//! [`crate::tus::dedup`]) is looked up: the same owner's same bytes, without `video_id`, finish
//! as a duplicate of the existing video — no object, no version, no job, spool dropped. Each
//! stored version gets its record (`rc:video:{id}:versions`) before its job is queued.
//!
//! Every step is safe to repeat. The chosen version and job id are persisted (the upload's
//! [`FinishPlan`]) before anything leaves the machine, so a retry after a store or queue failure
//! re-puts the same key (objects are replaced atomically) and re-enqueues the same job id instead
//! of burning a version number or creating a second job.

use ringcast_proto::auth::Caller;
use ringcast_proto::container::{self, SNIFF_LEN};
use ringcast_proto::job::{now_ms, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_proto::progress::{OUTCOME_DUPLICATE, OUTCOME_REJECTED};
use ringcast_proto::trace_context::TraceContext;
use ringcast_proto::versions::VersionRecord;
use ringcast_proto::videos::sanitize_title;

use ringcast_infra::platform::versions::Versions;
use ringcast_infra::platform::videos::{Registered, Videos};

use crate::app::App;
use crate::error::IngestError;
use crate::metrics::UploadErrorKind;
use crate::redis_call::with_timeout;
use crate::tus::upload_store::{FinishPlan, UploadPhase, UploadState};
use crate::tus::{dedup, probe};

/// What the client learns from a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub video_id: String,
    /// `None` for a duplicate (no job).
    pub job_id: Option<String>,
    pub version: Option<u32>,
    /// The bytes were already the owner's video `video_id`.
    pub duplicate: bool,
}

/// The message a rejected upload gets (and keeps in its state).
pub const NOT_A_VIDEO: &str = "the file does not start with a known video container signature \
     (MP4/MOV, Matroska/WebM, MPEG-TS or AVI)";

/// Finish `state` (complete: offset == length) for `caller`. The caller holds the upload's
/// lock.
pub async fn finish(
    app: &App,
    caller: &Caller,
    state: &mut UploadState,
    trace: Option<TraceContext>,
) -> Result<Finished, IngestError> {
    let id = state.id.clone();
    let target = state.target_video().map(str::to_string);
    // The video's owner (an admin may add versions to anyone's video); re-checked because the
    // video may have been deleted since the upload was created.
    let video_owner = match &target {
        Some(video) => match crate::versions::check_target(app, caller, video).await {
            Ok(owner) => owner,
            // Deleted meanwhile: the upload can never finish; refuse it for good (404 now,
            // 410 with the reason later).
            Err(e @ IngestError::NotFound(_)) if state.plan.is_none() => {
                let reason = format!("video {video} no longer exists");
                return Err(reject(app, state, reason, e).await);
            }
            Err(e) => return Err(e),
        },
        None => state.owner.clone(),
    };
    let video = target.clone().unwrap_or_else(|| id.clone());
    let versions = Versions::new(&app.queue);
    let plan = match state.plan.clone() {
        Some(plan) => plan,
        None => {
            let sha = dedup::digest(app, state).await?;
            let allow = ringcast_proto::versions::ALLOW_DUPLICATES;
            let duplicates_allowed =
                state.metadata.get(allow.0).map(String::as_str) == Some(allow.1);
            if target.is_none() && !duplicates_allowed {
                if let Some(existing) =
                    with_timeout(versions.duplicate_of(&state.owner, &sha)).await?
                {
                    return duplicate(app, state, existing, &sha).await;
                }
            }
            // Virus scan (crate::scan) before anything is decided or stored.
            match crate::scan::check(app, state).await {
                Ok(()) => {}
                Err(crate::scan::ScanFailed::Unavailable(e)) => return Err(e),
                Err(crate::scan::ScanFailed::Infected(signature)) => {
                    let reason = format!("malware found: {signature}");
                    let answer = crate::scan::infected(signature);
                    let answer = reject(app, state, reason, answer).await;
                    crate::scan::forget(app, state);
                    return Err(answer);
                }
            }
            let prefix = app.uploads.read_prefix(&id, SNIFF_LEN).await?;
            let Some(container) = container::detect(&prefix) else {
                let reason = NOT_A_VIDEO.to_string();
                return Err(
                    reject(app, state, reason.clone(), IngestError::NotAVideo(reason)).await,
                );
            };
            // Before anything is stored or queued: ffprobe must read it as that container, and
            // it must be within the limits. Nothing is persisted when the probe itself fails to
            // run, so the client's retry of the final PATCH probes again.
            let uploads = &app.config.uploads;
            let verdict = probe::inspect(
                uploads.ffprobe_path.clone(),
                uploads.probe_timeout(),
                &app.config.limits,
                app.uploads.spool_path(&id),
                container,
            )
            .await?;
            let info = match verdict {
                Ok(info) => info,
                Err(rejection) => {
                    let reason = rejection.reason();
                    return Err(reject(app, state, reason, rejection.into_error()).await);
                }
            };
            let plan = FinishPlan {
                version: crate::versions::next_version(app, &video).await?,
                job_id: uuid::Uuid::new_v4().to_string(),
                container,
                video_id: target.clone(),
                source_sha256: Some(sha),
                duration_ms: info
                    .duration
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .map(|d| (d * 1000.0).round() as u64),
            };
            state.plan = Some(plan.clone());
            app.uploads.save(state).await?;
            plan
        }
    };

    let spool = app.uploads.spool_path(&id);
    let size = app.uploads.spool_len(&id).await?;
    if size != state.length {
        // Writes never go past the length and offsets are only recorded after fdatasync, so this
        // means the spool was damaged outside the server; storing it would publish garbage.
        return Err(IngestError::CorruptState {
            id,
            message: format!("spool holds {size} bytes, expected {}", state.length),
        });
    }

    let key = keys::source(&video, plan.version);
    if let Err(e) = app
        .store
        // The spool is complete and only deleted from here on: on a filesystem store on the
        // same filesystem it is linked into place, not copied (ObjectStore::put_sealed_file).
        .put_sealed_file(&key, &spool, "application/octet-stream")
        .await
    {
        app.metrics.upload_error(UploadErrorKind::Store);
        tracing::error!(error = %e, key = %key, "storing the source failed; the client may retry");
        return Err(e.into());
    }
    // A new version keeps the video's title (the videos API changes it); a new video's title
    // is held to the same rules as one set with PATCH /v1/videos/{id}.
    let title = match target {
        Some(_) => String::new(),
        None => sanitize_title(state.metadata.get("title").map_or("", String::as_str)),
    };
    let videos = Videos::new(&app.queue);
    if with_timeout(videos.register(&video, &video_owner, &title, now_ms())).await?
        == Registered::OtherOwner
    {
        return Err(IngestError::Forbidden(format!(
            "video {video} belongs to another owner"
        )));
    }
    let record = VersionRecord {
        version: plan.version,
        upload_id: id.clone(),
        source_sha256: plan.source_sha256.clone().unwrap_or_default(),
        container: Some(plan.container),
        job_id: plan.job_id.clone(),
        created_ms: state.created_ms,
    };
    if !record.source_sha256.is_empty() {
        with_timeout(versions.record(&video, &video_owner, &record)).await?;
    }
    crate::admission::quota::stored(app, state, &video, &video_owner, plan.version).await?;
    if let Some(ms) = plan.duration_ms {
        with_timeout(videos.record_duration(&video, plan.version, ms)).await?;
    }
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: plan.job_id.clone(),
        video_id: video.clone(),
        version: plan.version,
        source_key: key.clone(),
        priority: state.priority,
        created_ms: now_ms(),
        live: None,
        container: Some(plan.container),
    };
    let traceparent = trace.map(|t| t.traceparent());
    let entry = match with_timeout(app.queue.enqueue_traced(&job, traceparent)).await {
        Ok(entry) => entry,
        Err(e) => {
            app.metrics.upload_error(UploadErrorKind::Queue);
            tracing::error!(error = %e, "enqueueing the job failed; the client may retry");
            return Err(e);
        }
    };

    state.phase = UploadPhase::Finished;
    app.uploads.save(state).await?;
    // The job references the stored object, not the spool; a leftover file is swept at start-up.
    if let Err(e) = app.uploads.remove_spool(&id) {
        tracing::warn!(error = %e, "could not delete the spool file");
    }
    app.uploads.hashers.forget(&id);
    // After the enqueue: a progress stream that no longer sees the upload finds the new job.
    if let Err(e) = with_timeout(versions.end_upload(&video, &id, None)).await {
        tracing::warn!(error = %e, "could not clear the upload's progress entry (it expires)");
    }
    app.metrics.upload_completed();
    tracing::info!(
        video = %video,
        upload = %id,
        version = plan.version,
        job = %plan.job_id,
        stream_entry = %entry,
        container = plan.container.as_str(),
        bytes = state.length,
        key = %key,
        "upload finished; transcode job queued"
    );
    Ok(Finished {
        video_id: video,
        job_id: Some(plan.job_id),
        version: Some(plan.version),
        duplicate: false,
    })
}

/// The upload is `existing`'s bytes again: finish it as a duplicate (kept in its state, so a
/// retry or HEAD answers the same) and drop the spool; nothing is stored or queued.
async fn duplicate(
    app: &App,
    state: &mut UploadState,
    existing: String,
    sha: &str,
) -> Result<Finished, IngestError> {
    state.phase = UploadPhase::Finished;
    state.duplicate_of = Some(existing.clone());
    app.uploads.save(state).await?;
    crate::admission::quota::release(app, state).await;
    if let Err(e) = app.uploads.remove_spool(&state.id) {
        tracing::warn!(error = %e, "could not delete the duplicate's spool file");
    }
    app.uploads.hashers.forget(&state.id);
    let versions = Versions::new(&app.queue);
    let outcome = format!("{OUTCOME_DUPLICATE}{existing}");
    if let Err(e) = with_timeout(versions.end_upload(&state.id, &state.id, Some(&outcome))).await {
        tracing::warn!(error = %e, "could not record the duplicate for progress streams");
    }
    app.metrics.upload_completed();
    tracing::info!(
        upload = %state.id,
        video = %existing,
        sha256 = sha,
        bytes = state.length,
        "upload is a duplicate of an existing video; no new version, no job"
    );
    Ok(Finished {
        video_id: existing,
        job_id: None,
        version: None,
        duplicate: true,
    })
}

/// Mark the upload rejected for good (keeping `reason` for later requests) and free its spool;
/// returns `answer`, the error the final PATCH gets.
async fn reject(
    app: &App,
    state: &mut UploadState,
    reason: String,
    answer: IngestError,
) -> IngestError {
    app.metrics.upload_error(UploadErrorKind::Rejected);
    crate::admission::quota::release(app, state).await;
    state.phase = UploadPhase::Rejected;
    state.reject_reason = Some(reason.clone());
    if let Err(e) = app.uploads.save(state).await {
        return e;
    }
    if let Err(e) = app.uploads.remove_spool(&state.id) {
        tracing::warn!(error = %e, "could not delete the rejected spool file");
    }
    app.uploads.hashers.forget(&state.id);
    let outcome = format!("{OUTCOME_REJECTED}{reason}");
    let versions = Versions::new(&app.queue);
    if let Err(e) =
        with_timeout(versions.end_upload(state.video(), &state.id, Some(&outcome))).await
    {
        tracing::warn!(error = %e, "could not record the rejection for progress streams");
    }
    tracing::info!(bytes = state.length, %reason, status = answer.status(), "upload rejected");
    answer
}
