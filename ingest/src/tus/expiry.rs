//! tus Expiration, server side: `Upload-Expires` on the responses of unfinished uploads, 410
//! for an upload past its time, and the background sweep that deletes expired uploads
//! (`uploads.expire_after_secs` after their last change) and the records of finished or
//! rejected ones (`uploads.finished_retention_secs` after they finished), every
//! `uploads.expiry_sweep_secs`. The rules — when a record is due, the header's format — are
//! sans-IO in [`ringcast_proto::tus::expiry`].
//!
//! The sweep runs on its own thread with a small runtime, so it never competes with a worker's
//! requests for its core's event loop. It reads only what is due, from the time-bucketed
//! [`crate::tus::expiry_index`], never the whole spool: a run reads at most [`SWEEP_BATCH`]
//! entries and is followed at once by another while whole batches are due, so its work is
//! proportional to what is due and it keeps up with the creation rate. It skips uploads a
//! request holds (a long PATCH records its offset only every few dozen MB), deletes spool, state
//! and progress entry like a termination does, and fsyncs the spool directory once per run.

use std::sync::Arc;
use std::time::Duration;

use ringcast_infra::platform::versions::Versions;
use ringcast_proto::job::now_ms;
use ringcast_proto::tus::expiry::{header_value, is_expired};

use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use crate::tus::upload_store::{UploadPhase, UploadState};
use ringcast_server::Response;

/// Most index entries one sweep run reads; a full run is followed at once by another.
pub const SWEEP_BATCH: usize = 2000;

/// `resp` with `Upload-Expires` when the upload is unfinished (tus: "for every response to an
/// unfinished upload").
pub fn with_expires(app: &App, state: &UploadState, resp: Response) -> Response {
    if state.phase != UploadPhase::Uploading {
        return resp;
    }
    let at = state.expires_ms(app.config.uploads.expire_after_secs);
    resp.header("Upload-Expires", header_value(at))
}

/// `error` about `state`, marked to carry `Upload-Expires` when the upload is unfinished and
/// still there (a client gone mid-request gets no answer, so it is left as it is).
pub fn on_error(app: &App, state: &UploadState, error: IngestError) -> IngestError {
    match error {
        IngestError::ClientGone(_) | IngestError::Unfinished { .. } => error,
        // Expired (410) or rejected: no longer an upload the client can resume.
        IngestError::Rejected { .. } => error,
        _ if state.phase != UploadPhase::Uploading => error,
        _ => IngestError::Unfinished {
            error: Box::new(error),
            expires_ms: state.expires_ms(app.config.uploads.expire_after_secs),
        },
    }
}

/// 410 for an unfinished upload past its expiry (the sweep may not have run yet).
pub fn refuse_expired(app: &App, state: &UploadState) -> Result<(), IngestError> {
    let at = state.expires_ms(app.config.uploads.expire_after_secs);
    if state.phase == UploadPhase::Uploading && is_expired(at, now_ms()) {
        return Err(IngestError::Rejected {
            id: state.id.clone(),
            reason: "the upload expired".into(),
        });
    }
    Ok(())
}

/// What one sweep run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepRun {
    /// Index entries read (each due, or stale).
    pub examined: usize,
    /// Records deleted (expired uploads and old finished/rejected records).
    pub deleted: usize,
    /// The run stopped at [`SWEEP_BATCH`]: more may be due.
    pub full: bool,
}

/// One sweep run: read up to [`SWEEP_BATCH`] due entries of the expiry index
/// ([`crate::tus::expiry_index`]) and delete what is due — records not yet due are never read.
pub async fn sweep_once(app: &App, now: u64) -> SweepRun {
    let index = &app.uploads.expiry;
    let policy = *index.policy();
    let entries = match index.due(now, SWEEP_BATCH) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "expiry sweep could not read its index");
            return SweepRun::default();
        }
    };
    let mut run = SweepRun {
        full: entries.len() >= SWEEP_BATCH,
        ..SweepRun::default()
    };
    for entry in entries {
        run.examined += 1;
        // Held by a request: the entry stays for the next run.
        let Some(_lock) = app.uploads.try_lock(&entry.id) else {
            continue;
        };
        let state = match app.uploads.load(&entry.id).await {
            Ok(Some(s)) => s,
            // Gone already (terminated, concatenated, discarded): a stale entry.
            Ok(None) => {
                let _ = index.forget(&entry);
                continue;
            }
            Err(e @ IngestError::CorruptState { .. }) => {
                // Kept for a human to look at, as before; not read again every run.
                tracing::warn!(upload = %entry.id, error = %e, "expiry sweep skips an unreadable state");
                let _ = index.forget(&entry);
                continue;
            }
            Err(e) => {
                tracing::warn!(upload = %entry.id, error = %e, "expiry sweep could not read a state");
                continue;
            }
        };
        let due = state.due_ms(&policy);
        if !is_expired(due, now) {
            // It moved on since it was filed here (progress, or finished): filed under its
            // bucket by the save that moved it; this entry is stale.
            if policy.bucket_end_secs(due) != entry.bucket {
                if let Err(e) = index.note(&entry.id, due) {
                    tracing::warn!(upload = %entry.id, error = %e, "expiry index entry not written");
                    continue;
                }
                let _ = index.forget(&entry);
            }
            continue;
        }
        if let Err(e) = app.uploads.remove_files(&entry.id) {
            tracing::warn!(upload = %entry.id, error = %e, "expiry sweep could not delete an upload");
            continue;
        }
        let _ = index.forget(&entry);
        run.deleted += 1;
        if state.phase == UploadPhase::Uploading {
            app.metrics.upload_expired();
            crate::admission::quota::release(app, &state).await;
            let versions = Versions::new(&app.queue);
            let id = &entry.id;
            if let Err(e) = with_timeout(versions.end_upload(state.video(), id, None)).await {
                tracing::debug!(error = %e, "expired upload's progress entry not cleared (it expires)");
            }
            tracing::info!(upload = %id, offset = state.offset, "expired upload deleted");
        } else {
            app.metrics.upload_record_swept();
        }
    }
    app.metrics.sweep_examined(run.examined as u64);
    if run.deleted > 0 {
        if let Err(e) = app.uploads.sync_spool_dir().await {
            tracing::warn!(error = %e, "expiry sweep could not sync the spool directory");
        }
    }
    run
}

/// Start the sweep thread (runs until the process exits).
pub fn spawn_sweeper(app: Arc<App>) -> std::io::Result<()> {
    let every = app.config.uploads.expiry_sweep();
    std::thread::Builder::new()
        .name("upload-expiry".into())
        .spawn(move || {
            let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build();
            let mut rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "expiry sweep not started: no runtime");
                    return;
                }
            };
            rt.block_on(async move {
                loop {
                    monoio::time::sleep(every).await;
                    // Keep going while whole batches are due, so the sweep keeps up with any
                    // creation rate; a short pause between batches lets the workers' disk
                    // requests through.
                    loop {
                        let run = sweep_once(&app, now_ms()).await;
                        if run.deleted > 0 {
                            tracing::debug!(
                                deleted = run.deleted,
                                examined = run.examined,
                                "expiry sweep"
                            );
                        }
                        if !run.full {
                            break;
                        }
                        monoio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            });
        })
        .map(|_| ())
}
