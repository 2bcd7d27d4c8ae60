//! The refusals of [`crate::admission`] and [`crate::scan`]: status, code, message and the
//! headers a client needs to act on them.

use ringcast_proto::upload_pace::TooSlow;
use ringcast_server::Response;

/// Why an upload was refused by a limit or the virus scan.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// clamd found a signature in the finished upload: rejected and deleted.
    #[error("the upload contains malware ({signature}); it was rejected and deleted")]
    Infected { signature: String },
    /// clamd could not give a verdict (unreachable, timed out, failed): the upload is kept and
    /// its final PATCH can be retried.
    #[error("the virus scanner is unavailable; retry later")]
    ScanUnavailable(String),
    /// The owner's bytes in flight or stored would pass their limit.
    #[error("quota exceeded: {what} would be {would_be} bytes, the limit is {limit}")]
    QuotaExceeded {
        what: &'static str,
        would_be: u64,
        limit: u64,
    },
    /// Taking these bytes would leave less than the configured reserve free on the spool's
    /// filesystem.
    #[error("the server's upload spool is full; retry later")]
    InsufficientStorage,
    /// The PATCH body broke the minimum rate or the total deadline; the bytes that arrived are
    /// kept (the upload resumes at its offset).
    #[error("{0}; the upload resumes at its current offset")]
    TooSlow(TooSlow),
}

impl AdmissionError {
    pub fn status(&self) -> u16 {
        match self {
            AdmissionError::Infected { .. } => 422,
            AdmissionError::ScanUnavailable(_) => 503,
            AdmissionError::QuotaExceeded { .. } => 403,
            AdmissionError::InsufficientStorage => 507,
            AdmissionError::TooSlow(_) => 408,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::Infected { .. } => "infected",
            AdmissionError::ScanUnavailable(_) => "scan_unavailable",
            AdmissionError::QuotaExceeded { .. } => "quota_exceeded",
            AdmissionError::InsufficientStorage => "insufficient_storage",
            AdmissionError::TooSlow(_) => "body_too_slow",
        }
    }

    /// The JSON error (`{"error":{"code","message"}}`, plus `signature` for an infected upload)
    /// with `Retry-After` where retrying helps.
    pub fn to_response(&self) -> Response {
        let resp = match self {
            AdmissionError::Infected { signature } => {
                let body = serde_json::json!({
                    "error": {
                        "code": self.code(),
                        "message": self.to_string(),
                        "signature": signature,
                    }
                });
                Response::json(self.status(), &body).header("Cache-Control", "no-store")
            }
            _ => Response::error_parts(self.status(), self.code(), &self.to_string()),
        };
        match self {
            AdmissionError::ScanUnavailable(_) => resp.header("Retry-After", "10"),
            AdmissionError::InsufficientStorage => resp.header("Retry-After", "30"),
            // The connection closes after it: the body may still be arriving.
            AdmissionError::TooSlow(_) => {
                let mut resp = resp;
                resp.close = true;
                resp
            }
            _ => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_codes_and_headers() {
        let r = AdmissionError::Infected {
            signature: "Eicar-Test".into(),
        }
        .to_response();
        assert_eq!(r.status, 422);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"]["code"], "infected");
        assert_eq!(v["error"]["signature"], "Eicar-Test");
        let r = AdmissionError::ScanUnavailable("refused".into()).to_response();
        assert_eq!((r.status, r.get_header("Retry-After")), (503, Some("10")));
        assert!(!String::from_utf8_lossy(&r.body).contains("refused"));
        let r = AdmissionError::InsufficientStorage.to_response();
        assert_eq!((r.status, r.get_header("Retry-After")), (507, Some("30")));
        let e = AdmissionError::QuotaExceeded {
            what: "bytes in flight",
            would_be: 2,
            limit: 1,
        };
        assert_eq!((e.status(), e.code()), (403, "quota_exceeded"));
    }
}
