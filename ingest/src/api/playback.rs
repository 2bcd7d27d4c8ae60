//! `POST /v1/videos/{id}/playback`: a signed playback URL for a video the caller may read
//! (any role, viewers included) — what a private video needs to play at an edge, and what any
//! video may be given.
//!
//! The URL is the path-token form of `ringcast_proto::signed_url` (the same
//! [`signed_url::signed_path`] that `ringcast-edge sign` prints), signing the prefix
//! `/v/{id}/` (ending in `/`, so it never covers `/v/{id}x/…`) with `[playback]
//! signing_secret`, which must equal the edges' `[signed_urls] secret`:
//! `/s/{exp}/{len}/{sig}/v/{id}/master.m3u8`. A player resolves the playlists' relative URIs
//! under the same token. Body (optional, JSON): `{"ttl_secs": N}` for a shorter lifetime than
//! `[playback] ttl_secs`. Without a configured secret: 503 `playback_signing_disabled`.

use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_infra::config::ConfigError;
use ringcast_proto::auth::Caller;
use ringcast_proto::http::RequestHead;
use ringcast_proto::secret::check_strength;
use ringcast_proto::signed_url;
use ringcast_proto::videos::{playback_prefix, playback_ttl};
use ringcast_proto::visibility::{self, Visibility};
use ringcast_server::{Conn, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::body::read_json;
use crate::api::videos::{load, Access};
use crate::app::App;
use crate::error::IngestError;

/// Longest playback URL lifetime a configuration may set (7 days).
pub const MAX_TTL_SECS: u64 = 7 * 24 * 3600;

/// `[playback]` in the ingest config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybackConfig {
    /// HMAC secret of playback URLs: the same value as the edges' `[signed_urls] secret`.
    /// Empty (default): `POST /v1/videos/{id}/playback` answers 503. At least 16 characters,
    /// not one repeated (prefer the env var `RINGCAST_INGEST_PLAYBACK__SIGNING_SECRET`).
    pub signing_secret: String,
    /// Lifetime of a playback URL in seconds (a request may ask for less); 1 to 604800.
    pub ttl_secs: u64,
    /// Base URL the players reach the edges at (e.g. `https://cdn.example.com`): URLs are
    /// absolute under it; unset → a path (`/s/…/v/{id}/master.m3u8`).
    pub public_base_url: Option<String>,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        Self {
            signing_secret: String::new(),
            ttl_secs: 3600,
            public_base_url: None,
        }
    }
}

impl PlaybackConfig {
    /// Check the secret's strength, the TTL bounds and the base URL (trailing `/` trimmed).
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !self.signing_secret.is_empty() {
            check_strength("playback.signing_secret", &self.signing_secret)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        if !(1..=MAX_TTL_SECS).contains(&self.ttl_secs) {
            return invalid(format!(
                "playback.ttl_secs must be from 1 to {MAX_TTL_SECS}"
            ));
        }
        if let Some(url) = &self.public_base_url {
            let url = url.trim_end_matches('/');
            if url.is_empty() {
                self.public_base_url = None;
            } else if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid(
                    "playback.public_base_url must start with http:// or https://".into(),
                );
            } else {
                self.public_base_url = Some(url.to_string());
            }
        }
        Ok(())
    }
}

pub async fn create(
    app: &App,
    caller: &Caller,
    head: &RequestHead,
    id: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    let video = load(app, caller, id, Access::Read).await?;
    let cfg = &app.config.playback;
    if cfg.signing_secret.is_empty() {
        return Err(IngestError::NotConfigured {
            code: "playback_signing_disabled",
            message: "this ingest has no [playback] signing_secret; it cannot issue playback URLs",
        });
    }
    let body = read_json(head, conn).await?;
    let ttl =
        playback_ttl(&body, cfg.ttl_secs).map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let expires = now.saturating_add(ttl);
    let prefix = playback_prefix(id);
    let path = signed_url::signed_path(
        cfg.signing_secret.as_bytes(),
        &prefix,
        expires,
        &format!("{prefix}master.m3u8"),
    );
    let url = match &cfg.public_base_url {
        Some(base) => format!("{base}{path}"),
        None => path.clone(),
    };
    let visibility = Visibility::from_field(video.get(visibility::FIELD).map(String::as_str));
    let body = json!({
        "video_id": id,
        "url": url,
        "path": path,
        "prefix": prefix,
        "expires": expires,
        "ttl_secs": ttl,
        "visibility": visibility.as_str(),
    });
    Ok(Response::json(200, &body).header("Cache-Control", "no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds() {
        let mut ok = PlaybackConfig {
            signing_secret: "k3y-for-playback-urls-0001".into(),
            public_base_url: Some("https://cdn.example.com/".into()),
            ..PlaybackConfig::default()
        };
        ok.validate().expect("valid");
        assert_eq!(
            ok.public_base_url.as_deref(),
            Some("https://cdn.example.com")
        );
        for bad in [
            PlaybackConfig {
                signing_secret: "short".into(),
                ..PlaybackConfig::default()
            },
            PlaybackConfig {
                ttl_secs: 0,
                ..PlaybackConfig::default()
            },
            PlaybackConfig {
                ttl_secs: MAX_TTL_SECS + 1,
                ..PlaybackConfig::default()
            },
            PlaybackConfig {
                public_base_url: Some("cdn.example.com".into()),
                ..PlaybackConfig::default()
            },
        ] {
            let mut b = bad.clone();
            assert!(b.validate().is_err(), "{bad:?}");
        }
        let mut off = PlaybackConfig::default();
        off.validate().expect("no secret: valid, disabled");
    }
}
