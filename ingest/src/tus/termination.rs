//! tus Termination: `DELETE /files/{id}` ends an upload for good — its spool, its state and its
//! progress entry in Redis are deleted, and later requests for it get 404. Only the upload's
//! owner (or an admin) may; a request still writing the upload is taken over first, like a new
//! PATCH would ([`crate::tus::lock`]), so its bytes cannot land after the delete. A finished
//! upload's video is not touched: deleting videos is the videos API's job.

use ringcast_infra::platform::versions::Versions;
use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::tus::check_resumable;

use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use crate::tus::upload_store::UploadPhase;
use ringcast_server::Response;

pub async fn delete(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    id: &str,
) -> Result<Response, IngestError> {
    check_resumable(head.header("tus-resumable"))?;
    let lock = app
        .uploads
        .acquire(id)
        .await
        .ok_or_else(|| IngestError::Locked(id.to_string()))?;
    if lock.took_over() {
        app.metrics.lock_takeover();
    }
    // Expired or rejected uploads may still be deleted: only existence and ownership count.
    let state = crate::tus::ownership::owned_upload(app, caller, id).await?;
    app.uploads.remove_upload(id).await?;
    if let Some(bucket) = state.expiry_bucket {
        app.uploads.forget_expiry_entry(id, bucket);
    }
    if state.phase == UploadPhase::Uploading {
        crate::admission::quota::release(app, &state).await;
        let versions = Versions::new(&app.queue);
        if let Err(e) = with_timeout(versions.end_upload(state.video(), id, None)).await {
            tracing::warn!(error = %e, "terminated upload's progress entry not cleared (it expires)");
        }
    }
    app.metrics.upload_terminated();
    tracing::info!(upload = %id, offset = state.offset, owner = %state.owner, "upload terminated");
    Ok(Response::new(204))
}
