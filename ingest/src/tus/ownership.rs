//! Whose an upload is: the one lookup every tus request on an existing upload starts with.

use ringcast_proto::auth::Caller;

use crate::app::App;
use crate::error::IngestError;
use crate::tus::upload_store::UploadState;

/// The state of upload `id` if `caller` may change it: 404 when there is none, 403 when it is
/// another owner's (or the key may not write).
pub async fn owned_upload(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<UploadState, IngestError> {
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
    Ok(state)
}
