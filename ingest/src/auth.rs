//! Who is calling: every `/files/` and `/v1/` request names its API key in
//! `Authorization: Bearer rck_…` ([`authenticate`]); `auth.mode = "open"` turns that off for a
//! local demo, making every caller the anonymous uploader (a bearer key that is sent anyway is
//! still checked, so an admin can act as admin on an open ingest).
//!
//! The keys live in Redis (`ringcast_infra::platform::api_keys`, made with `ringcast-ingest keys
//! create`); what each role may do is decided in `ringcast_proto::auth`.

use ringcast_infra::platform::api_keys::ApiKeys;
use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::secret::bearer_token;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::IngestError;
use crate::redis_call::with_timeout;

/// `[auth]` in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `keys` (default): every `/files/` and `/v1/` request needs an API key. `open`: anonymous
    /// callers may upload and read (local demo only; the ingest logs a warning at start).
    pub mode: AuthMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Keys,
    Open,
}

/// The caller of `head`: 401 without a usable key (keys mode), or with a malformed, unknown,
/// revoked or wrong one (any mode); 503 when Redis cannot be asked.
pub async fn authenticate(app: &App, head: &RequestHead) -> Result<Caller, IngestError> {
    let token = match head.header("authorization") {
        Some(value) => Some(bearer_token(value).ok_or(IngestError::Unauthorized(
            "the Authorization header must be `Bearer <API key>`",
        ))?),
        None => None,
    };
    let Some(token) = token else {
        return match app.config.auth.mode {
            AuthMode::Open => Ok(Caller::anonymous()),
            AuthMode::Keys => Err(IngestError::Unauthorized(
                "an API key is required: Authorization: Bearer <key>",
            )),
        };
    };
    match with_timeout(ApiKeys::new(&app.queue).authenticate(token)).await? {
        Some(caller) => Ok(caller),
        None => Err(IngestError::Unauthorized(
            "the API key is not valid (unknown or revoked)",
        )),
    }
}

/// Say loudly that nobody is being asked for a key.
pub fn warn_if_open(config: &AuthConfig) {
    if config.mode == AuthMode::Open {
        tracing::warn!(
            "auth.mode = \"open\": ANYONE who can reach this ingest may upload and read videos \
             without an API key. Use this for a local demo only; set auth.mode = \"keys\" and \
             create keys with `ringcast-ingest keys create`."
        );
    }
}
