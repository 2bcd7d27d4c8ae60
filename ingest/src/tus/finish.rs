//! Finishing a complete upload: sniff the container, inspect the file with ffprobe and hold it
//! to the media limits ([`crate::tus::probe`]), store the spool file as
//! `sources/{video}/{version}/source`, enqueue the transcode job, then mark the upload finished
//! and drop the spool file. A refused file (415 not a video, 422 over a limit or unreadable in
//! time) is marked rejected and its spool removed: no object, no job, and later requests on
//! the upload get 410 with the reason.
//!
//! Every step is safe to repeat. The chosen version and job id are persisted (the upload's
//! [`FinishPlan`]) before anything leaves the machine, so a retry after a store or queue failure
//! re-puts the same key (objects are replaced atomically) and re-enqueues the same job id instead
//! of burning a version number or creating a second job.

use ringcast_proto::container::{self, SNIFF_LEN};
use ringcast_proto::job::{now_ms, TranscodeJob, JOB_SCHEMA_VERSION};
use ringcast_proto::keys;
use ringcast_proto::videos::sanitize_title;

use ringcast_infra::platform::videos::{Registered, Videos};

use crate::app::App;
use crate::error::IngestError;
use crate::metrics::UploadErrorKind;
use crate::redis_call::with_timeout;
use crate::tus::probe;
use crate::tus::upload_store::{FinishPlan, UploadPhase, UploadState};

/// What the client learns from a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub video_id: String,
    pub job_id: String,
    pub version: u32,
}

/// The message a rejected upload gets (and keeps in its state).
pub const NOT_A_VIDEO: &str = "the file does not start with a known video container signature \
     (MP4/MOV, Matroska/WebM, MPEG-TS or AVI)";

/// Finish `state` (complete: offset == length). The caller holds the upload's lock.
pub async fn finish(app: &App, state: &mut UploadState) -> Result<Finished, IngestError> {
    let id = state.id.clone();
    let plan = match state.plan.clone() {
        Some(plan) => plan,
        None => {
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
                version: crate::versions::next_version(app, &id).await?,
                job_id: uuid::Uuid::new_v4().to_string(),
                container,
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

    let key = keys::source(&id, plan.version);
    if let Err(e) = app
        .store
        .put_file(&key, &spool, "application/octet-stream")
        .await
    {
        app.metrics.upload_error(UploadErrorKind::Store);
        tracing::error!(error = %e, key = %key, "storing the source failed; the client may retry");
        return Err(e.into());
    }
    // Held to the same rules as a title set with PATCH /v1/videos/{id}.
    let title = sanitize_title(state.metadata.get("title").map_or("", String::as_str));
    let videos = Videos::new(&app.queue);
    if with_timeout(videos.register(&id, &state.owner, &title, now_ms())).await?
        == Registered::OtherOwner
    {
        return Err(IngestError::Forbidden(format!(
            "video {id} belongs to another owner"
        )));
    }
    if let Some(ms) = plan.duration_ms {
        with_timeout(videos.record_duration(&id, plan.version, ms)).await?;
    }
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: plan.job_id.clone(),
        video_id: id.clone(),
        version: plan.version,
        source_key: key.clone(),
        priority: state.priority,
        created_ms: now_ms(),
        live: None,
        container: Some(plan.container),
    };
    let entry = match with_timeout(app.queue.enqueue(&job)).await {
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
    app.metrics.upload_completed();
    tracing::info!(
        video = %id,
        version = plan.version,
        job = %plan.job_id,
        stream_entry = %entry,
        container = plan.container.as_str(),
        bytes = state.length,
        key = %key,
        "upload finished; transcode job queued"
    );
    Ok(Finished {
        video_id: id,
        job_id: plan.job_id,
        version: plan.version,
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
    state.phase = UploadPhase::Rejected;
    state.reject_reason = Some(reason.clone());
    if let Err(e) = app.uploads.save(state).await {
        return e;
    }
    if let Err(e) = app.uploads.remove_spool(&state.id) {
        tracing::warn!(error = %e, "could not delete the rejected spool file");
    }
    tracing::info!(bytes = state.length, %reason, status = answer.status(), "upload rejected");
    answer
}
