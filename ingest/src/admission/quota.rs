//! Per-owner quotas on the ingest side: the creation of an upload reserves its length in the
//! owner's bytes in flight (403 `quota_exceeded` past `quota.max_bytes_in_flight`, or past
//! `quota.max_bytes_stored` counting what is stored and in flight); a finished upload moves its
//! bytes from in flight to stored (under the video's owner); a rejected or duplicate upload
//! only frees them; deleting a video frees its stored bytes. The counters and their atomic
//! scripts are [`ringcast_infra::platform::quota`].
//!
//! In flight is only counted for owners with a limit (a creation does not need Redis
//! otherwise); stored bytes are always counted when an upload finishes, so switching a stored
//! limit on later sees every version finished since this code runs.

use ringcast_infra::platform::quota::{Over, Quotas};

use crate::admission::metrics::Refusal;
use crate::admission::AdmissionError;
use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use crate::tus::upload_store::UploadState;

/// Reserve a new upload's length for its owner. On a refusal the upload just created is
/// removed again (spool and state) and the caller answers 403.
pub async fn admit_new(app: &App, state: &UploadState) -> Result<(), IngestError> {
    match reserve(app, state).await {
        Ok(()) => Ok(()),
        Err(e) => {
            app.uploads.hashers.forget(&state.id);
            discard_files(app, &state.id);
            Err(e)
        }
    }
}

/// Count `state.length` in flight for its owner unless a limit would be passed (also for a
/// length declared later, e.g. a deferred one). Safe to repeat for the same upload.
pub async fn reserve(app: &App, state: &UploadState) -> Result<(), IngestError> {
    let (max_in_flight, max_stored) = app.config.quota.limits_of(&state.owner);
    if max_in_flight == 0 && max_stored == 0 {
        return Ok(());
    }
    let quotas = Quotas::new(&app.queue);
    let call = quotas.reserve(
        &state.owner,
        &state.id,
        state.length,
        max_in_flight,
        max_stored,
    );
    let over = match with_timeout(call).await? {
        Ok(()) => return Ok(()),
        Err(over) => over,
    };
    app.metrics.admission.refused(Refusal::Quota);
    let (what, would_be, limit) = match over {
        Over::InFlight { would_be } => ("bytes in flight", would_be, max_in_flight),
        Over::Stored { would_be } => ("bytes stored and in flight", would_be, max_stored),
    };
    tracing::info!(owner = %state.owner, what, would_be, limit, "upload refused: quota");
    Err(AdmissionError::QuotaExceeded {
        what,
        would_be,
        limit,
    }
    .into())
}

/// The upload became version `version` of `video` (owned by `video_owner`): its bytes move
/// from in flight to stored. Part of the finish (an error fails it; the retry repeats it).
pub async fn stored(
    app: &App,
    state: &UploadState,
    video: &str,
    video_owner: &str,
    version: u32,
) -> Result<(), IngestError> {
    let quotas = Quotas::new(&app.queue);
    let call = quotas.settle(
        &state.owner,
        &state.id,
        Some((video_owner, video, version, state.length)),
    );
    with_timeout(call).await
}

/// The upload ended without a version (rejected, duplicate, terminated, expired): its bytes are
/// no longer in flight. Best effort: a failure is logged (the entry would stay counted).
pub async fn release(app: &App, state: &UploadState) {
    let quotas = Quotas::new(&app.queue);
    if let Err(e) = with_timeout(quotas.settle(&state.owner, &state.id, None)).await {
        tracing::warn!(error = %e, upload = %state.id, "could not release the upload's quota");
    }
}

/// A deleted video's stored bytes are freed. Safe to repeat.
pub async fn forget_video(app: &App, owner: &str, video: &str) -> Result<(), IngestError> {
    let freed = with_timeout(Quotas::new(&app.queue).forget_video(owner, video)).await?;
    tracing::debug!(video, owner, freed, "stored bytes freed");
    Ok(())
}

/// Remove an upload's spool and state files (refused at creation, or infected).
pub fn discard_files(app: &App, id: &str) {
    let dir = app.uploads.dir();
    for name in [format!("{id}.bin"), format!("{id}.json")] {
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, file = %name, "could not remove upload file"),
        }
    }
}
