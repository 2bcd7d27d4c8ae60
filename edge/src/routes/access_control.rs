//! Who may do what: the admin key of the purge API (`Authorization: Bearer`) and signed
//! playback URLs (`ringcast_proto::signed_url`), both switchable in config.
//!
//! - No `admin_key` configured → purge is off (403 `purge_disabled`); a missing bearer → 401;
//!   a wrong one → 403. Keys are compared in constant time.
//! - `[signed_urls] enabled = true` → every `/v/...` object request needs a valid query
//!   signature, or comes through the path-token form `/s/{exp}/{len}/{sig}/v/...`; anything
//!   else is 403 with a JSON error. Disabled → `/v/` is open and `/s/` does not exist (404).

use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_proto::http::RequestHead;
use ringcast_proto::secret::{bearer_token, constant_time_eq};
use ringcast_proto::signed_url::{self, PATH_TOKEN_PREFIX};
use ringcast_server::MetricsAccess;
use serde::{Deserialize, Serialize};

use crate::error::EdgeError;

/// `[signed_urls]` in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignedUrlConfig {
    /// Require signed URLs for every object request.
    pub enabled: bool,
    /// HMAC-SHA256 key shared with whatever issues playback URLs (prefer the env var
    /// `RINGCAST_EDGE_SIGNED_URLS__SECRET` over the file). Required when `enabled`.
    pub secret: String,
}

/// The access rules of a running edge.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Empty: purge disabled.
    pub admin_key: String,
    /// `None`: signed URLs off.
    pub url_secret: Option<Vec<u8>>,
    /// Who may read `/metrics` (`metrics_key`; empty = loopback clients only).
    pub metrics: MetricsAccess,
}

impl Access {
    pub fn new(admin_key: &str, metrics_key: &str, signed: &SignedUrlConfig) -> Self {
        Self {
            admin_key: admin_key.to_string(),
            url_secret: signed.enabled.then(|| signed.secret.as_bytes().to_vec()),
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

    /// Check the query signature of a plain `/v/...` request (no-op when signing is off).
    pub fn check_query(&self, req: &RequestHead) -> Result<(), EdgeError> {
        match &self.url_secret {
            None => Ok(()),
            Some(secret) => {
                signed_url::verify_query(secret, req.path(), req.query(), unix_now())?;
                Ok(())
            }
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
        assert!(a
            .check_query(&req(&format!("/v/vid/x.m4s?{q}"), ""))
            .is_ok());
        let e = a.check_query(&req("/v/vid/x.m4s", "")).unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "signature_missing"));
        let p = signed_url::signed_path(b"s", "/v/vid/", exp, "/v/vid/x.m4s");
        assert_eq!(a.strip_path_token(&p).ok(), Some("/v/vid/x.m4s"));
        let off = Access::default();
        assert!(off.check_query(&req("/v/vid/x.m4s", "")).is_ok());
        assert_eq!(off.strip_path_token(&p).unwrap_err().status(), 404);
    }
}
