//! tus Expiration, server side: `Upload-Expires` on the responses of unfinished uploads, 410
//! for an upload past its time, and the background sweep that deletes expired uploads
//! (`uploads.expire_after_secs` after their last change; `uploads.expiry_sweep_secs` between
//! runs). The rules — when an upload expires, the header's format — are sans-IO in
//! [`ringcast_proto::tus::expiry`].
//!
//! The sweep runs on its own thread with a small runtime, so it never competes with a worker's
//! requests for its core's event loop. Each run deletes at most [`SWEEP_BATCH`] uploads (the rest
//! wait for the next run), skips uploads a request holds (a long PATCH records its offset only
//! every few dozen MB), and deletes spool, state and progress entry like a termination does.

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

/// Most uploads one sweep run deletes.
pub const SWEEP_BATCH: usize = 1000;

/// `resp` with `Upload-Expires` when the upload is unfinished (tus: "for every response to an
/// unfinished upload").
pub fn with_expires(app: &App, state: &UploadState, resp: Response) -> Response {
    if state.phase != UploadPhase::Uploading {
        return resp;
    }
    let at = state.expires_ms(app.config.uploads.expire_after_secs);
    resp.header("Upload-Expires", header_value(at))
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

/// Whether the sweep deletes this upload at `now`: an unfinished one past its expiry, or the
/// leftover record of a finished or rejected one older than the same lifetime.
fn sweepable(state: &UploadState, lifetime_secs: u64, now: u64) -> bool {
    is_expired(state.expires_ms(lifetime_secs), now)
}

/// One sweep run: delete up to [`SWEEP_BATCH`] expired uploads; returns how many.
pub async fn sweep_once(app: &App, now: u64) -> usize {
    let lifetime = app.config.uploads.expire_after_secs;
    let ids = match app.uploads.list_ids() {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "expiry sweep could not list the spool");
            return 0;
        }
    };
    let mut deleted = 0;
    for id in ids {
        if deleted >= SWEEP_BATCH {
            break;
        }
        let Some(_lock) = app.uploads.try_lock(&id) else {
            continue;
        };
        let state = match app.uploads.load(&id).await {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(upload = %id, error = %e, "expiry sweep skips an unreadable state");
                continue;
            }
        };
        if !sweepable(&state, lifetime, now) {
            continue;
        }
        if let Err(e) = app.uploads.remove_upload(&id).await {
            tracing::warn!(upload = %id, error = %e, "expiry sweep could not delete an upload");
            continue;
        }
        if state.phase == UploadPhase::Uploading {
            app.metrics.upload_expired();
            crate::admission::quota::release(app, &state).await;
            let versions = Versions::new(&app.queue);
            if let Err(e) = with_timeout(versions.end_upload(state.video(), &id, None)).await {
                tracing::debug!(error = %e, "expired upload's progress entry not cleared (it expires)");
            }
            tracing::info!(upload = %id, offset = state.offset, "expired upload deleted");
        }
        deleted += 1;
    }
    deleted
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
                    let n = sweep_once(&app, now_ms()).await;
                    if n > 0 {
                        tracing::info!(deleted = n, "expiry sweep");
                    }
                    // A full batch: more may be waiting; go on soon instead of a whole period.
                    if n >= SWEEP_BATCH {
                        monoio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn finished_records_and_unfinished_uploads_expire_after_the_lifetime() {
        let mut s = UploadState::new(
            "u".into(),
            10,
            BTreeMap::new(),
            None,
            ringcast_proto::job::Priority::Normal,
            "o",
        );
        s.updated_ms = 1_000;
        assert!(!sweepable(&s, 60, 60_999));
        assert!(sweepable(&s, 60, 61_000));
        s.phase = UploadPhase::Finished;
        assert!(sweepable(&s, 60, 61_000));
    }
}
