//! Who may do what: the admin key of the purge API (`Authorization: Bearer`) and signed
//! playback URLs (`ringcast_proto::signed_url`), both switchable in config.
//!
//! - No `admin_key` configured → purge is off (403 `purge_disabled`); a missing bearer → 401;
//!   a wrong one → 403. Keys are compared in constant time.
//! - `[signed_urls] enabled = true` → every `/v/...` object request needs a valid query
//!   signature, or comes through the path-token form `/s/{exp}/{len}/{sig}/v/...`; anything
//!   else is 403 with a JSON error.
//! - `enabled = false` with a `secret` → `/v/` is open, signatures are verified when present
//!   (a private video's objects need one: `routes::playback`), and `/s/` URLs work. Without a
//!   secret `/s/` does not exist (404).

use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_proto::http::RequestHead;
use ringcast_proto::secret::{bearer_token, constant_time_eq};
use ringcast_proto::signed_url::{self, SignError, PATH_TOKEN_PREFIX};
use ringcast_server::MetricsAccess;
use serde::{Deserialize, Serialize};

use crate::error::EdgeError;

/// `[signed_urls]` in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignedUrlConfig {
    /// Require signed URLs for every object request.
    pub enabled: bool,
    /// HMAC-SHA256 key shared with whatever issues playback URLs (the ingest's `[playback]
    /// signing_secret`; prefer the env var `RINGCAST_EDGE_SIGNED_URLS__SECRET` over the file).
    /// Required when `enabled`; without it private videos cannot play through this edge.
    pub secret: String,
}

/// What a request proved about its right to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A valid signature covering the requested path.
    Signed,
    /// No valid signature, and why (`Missing` when there was none).
    Unsigned(SignError),
}

/// The access rules of a running edge.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Empty: purge disabled.
    pub admin_key: String,
    /// `None`: no secret, signed URLs do not exist.
    pub url_secret: Option<Vec<u8>>,
    /// Every object request must be signed (`signed_urls.enabled`).
    pub require_signed: bool,
    /// Who may read `/metrics` (`metrics_key`; empty = loopback clients only).
    pub metrics: MetricsAccess,
}

impl Access {
    pub fn new(admin_key: &str, metrics_key: &str, signed: &SignedUrlConfig) -> Self {
        Self {
            admin_key: admin_key.to_string(),
            url_secret: (!signed.secret.is_empty()).then(|| signed.secret.as_bytes().to_vec()),
            require_signed: signed.enabled,
            metrics: MetricsAccess::new(metrics_key),
        }
    }

    /// Check `Authorization: Bearer <admin_key>`.
    pub fn authorize_admin(&self, req: &RequestHead) -> Result<(), EdgeError> {
        if self.admin_key.is_empty() {
            return Err(EdgeError::PurgeDisabled);
        }
        let given = req
            .header("authorization")
            .and_then(bearer_token)
            .ok_or(EdgeError::Unauthorized)?;
        if constant_time_eq(given.as_bytes(), self.admin_key.as_bytes()) {
            Ok(())
        } else {
            Err(EdgeError::Forbidden)
        }
    }

    /// Whether the purge API is configured.
    pub fn purge_enabled(&self) -> bool {
        !self.admin_key.is_empty()
    }

    /// What the query of a plain `/v/...` request proves: [`Proof::Signed`] for a valid
    /// signature covering the path; otherwise why not, which is an error at once when every
    /// request must be signed, and for a private video later (`routes::playback`).
    pub fn query_proof(&self, req: &RequestHead) -> Result<Proof, EdgeError> {
        let Some(secret) = &self.url_secret else {
            return Ok(Proof::Unsigned(SignError::Missing));
        };
        match signed_url::verify_query(secret, req.path(), req.query(), unix_now()) {
            Ok(()) => Ok(Proof::Signed),
            Err(e) if self.require_signed => Err(e.into()),
            Err(e) => Ok(Proof::Unsigned(e)),
        }
    }

    /// Verify a `/s/...` path token and return the inner `/v/...` path.
    pub fn strip_path_token<'a>(&self, path: &'a str) -> Result<&'a str, EdgeError> {
        debug_assert!(path.starts_with(PATH_TOKEN_PREFIX));
        match &self.url_secret {
            None => Err(EdgeError::NotFound),
            Some(secret) => Ok(signed_url::verify_path(secret, path, unix_now())?),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::http::{parse_request, Limits};

    fn req(target: &str, extra: &str) -> RequestHead {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_request(raw.as_bytes(), &Limits::default())
            .expect("valid")
            .expect("complete")
            .0
    }

    #[test]
    fn admin_key() {
        let off = Access::default();
        assert_eq!(
            off.authorize_admin(&req("/purge", ""))
                .unwrap_err()
                .status(),
            403
        );
        let on = Access::new("k3y", "", &SignedUrlConfig::default());
        let status = |h: &str| on.authorize_admin(&req("/purge", h)).map_err(|e| e.code());
        assert_eq!(status("Authorization: Bearer k3y\r\n"), Ok(()));
        assert_eq!(status("Authorization: bearer  k3y\r\n"), Ok(()));
        assert_eq!(status(""), Err("unauthorized"));
        assert_eq!(status("Authorization: Basic k3y\r\n"), Err("unauthorized"));
        assert_eq!(status("Authorization: Bearer k3z\r\n"), Err("forbidden"));
        assert_eq!(status("Authorization: Bearer k3\r\n"), Err("forbidden"));
    }

    #[test]
    fn signed_urls() {
        let cfg = SignedUrlConfig {
            enabled: true,
            secret: "s".into(),
        };
        let a = Access::new("", "", &cfg);
        let exp = unix_now() + 60;
        let q = signed_url::signed_query(b"s", "/v/vid/", exp);
        let signed = req(&format!("/v/vid/x.m4s?{q}"), "");
        assert_eq!(a.query_proof(&signed).ok(), Some(Proof::Signed));
        let e = a.query_proof(&req("/v/vid/x.m4s", "")).unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "signature_missing"));
        let p = signed_url::signed_path(b"s", "/v/vid/", exp, "/v/vid/x.m4s");
        assert_eq!(a.strip_path_token(&p).ok(), Some("/v/vid/x.m4s"));
        // A secret without `enabled`: unsigned requests pass with their reason, signed ones
        // are recognised, path tokens work.
        let optional = Access::new(
            "",
            "",
            &SignedUrlConfig {
                enabled: false,
                secret: "s".into(),
            },
        );
        assert_eq!(
            optional.query_proof(&req("/v/vid/x.m4s", "")).ok(),
            Some(Proof::Unsigned(SignError::Missing))
        );
        assert_eq!(optional.query_proof(&signed).ok(), Some(Proof::Signed));
        let elsewhere = req(&format!("/v/vidx/x.m4s?{q}"), "");
        assert_eq!(
            optional.query_proof(&elsewhere).ok(),
            Some(Proof::Unsigned(SignError::OutsidePrefix))
        );
        assert_eq!(optional.strip_path_token(&p).ok(), Some("/v/vid/x.m4s"));
        let off = Access::default();
        assert_eq!(
            off.query_proof(&signed).ok(),
            Some(Proof::Unsigned(SignError::Missing))
        );
        assert_eq!(off.strip_path_token(&p).unwrap_err().status(), 404);
    }
}
