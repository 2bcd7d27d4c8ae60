//! The edge's error type and the one place where errors become HTTP statuses.
//!
//! Request-path errors carry just enough to answer the client; origin errors keep their source
//! for the logs but never leak it into a response body (a CDN node must not echo bucket names,
//! endpoints or filesystem paths to viewers).

use ringcast_infra::config::ConfigError;
use ringcast_infra::store::StoreError;
use ringcast_proto::http::HttpError;
use ringcast_proto::signed_url::SignError;

use crate::origin::http::OriginError;
use crate::routes::path::PathError;

/// Everything that can go wrong in the edge, from start-up to a single request.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The request head could not be parsed or broke a limit (400/414/431/501/505).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The request path is not an acceptable object path.
    #[error("invalid path: {0}")]
    BadPath(#[from] PathError),
    /// No route or no object.
    #[error("not found")]
    NotFound,
    /// A known method on a resource that does not support it.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A method token the server does not know at all.
    #[error("method {0:?} not implemented")]
    NotImplemented(String),
    /// The request head did not arrive within the header timeout.
    #[error("request head not received in time")]
    HeaderTimeout,
    /// `If-Match` / `If-Unmodified-Since` did not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A valid single range none of whose bytes exist.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// Signed URLs are on and this one is missing, malformed, expired or wrong.
    #[error(transparent)]
    Signature(#[from] SignError),
    /// An admin request without `Authorization: Bearer`.
    #[error("admin key required (Authorization: Bearer <admin_key>)")]
    Unauthorized,
    /// An admin request with the wrong key.
    #[error("wrong admin key")]
    Forbidden,
    /// A `/metrics` request from a client that may not read them.
    #[error(transparent)]
    Metrics(#[from] ringcast_server::MetricsDenied),
    /// No admin key is configured, so the purge API is off.
    #[error("purge is disabled: no admin_key is configured")]
    PurgeDisabled,
    /// `POST /purge?fleet=1` on an edge without `[platform] enabled`.
    #[error("fleet purge is disabled: [platform] enabled is off on this edge")]
    FleetPurgeDisabled,
    /// Redis did not take a fleet purge (the reason goes to the log only).
    #[error("fleet purge could not be published: {0}")]
    FleetPurgeFailed(String),
    /// An unsigned request for a video whose visibility the edge never learned, while Redis
    /// fails: refused rather than risk serving a private video.
    #[error("the video's visibility could not be checked; retry later")]
    VisibilityUnavailable,
    /// A request body that does not make sense (purge JSON).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A request body over the limit of its route.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The worker already serves its maximum number of connections.
    #[error("too many connections, retry later")]
    TooManyConnections,
    /// A malformed live playlist request (`_HLS_` directives, rfc8216bis §6.2.5.2).
    #[error("{0}")]
    LiveBadRequest(String),
    /// A blocked live request timed out (three target durations) or its follower stopped.
    #[error("the requested part or segment did not become available in time")]
    LiveUnavailable,
    /// The origin (object store) failed.
    #[error("origin fetch failed: {0}")]
    Origin(#[source] StoreError),
    /// The origin did not answer within the origin timeout.
    #[error("origin fetch timed out")]
    OriginTimeout,
    /// A directory or HTTP origin failed (error status, broken or truncated response).
    #[error("origin fetch failed: {0}")]
    Upstream(#[source] OriginError),
    /// Start-up: the disk tier's directory could not be prepared.
    #[error("cannot open the disk cache: {0}")]
    DiskTier(#[source] std::io::Error),
    /// Start-up: the configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up: the configuration loaded but makes no sense.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Start-up: the object store could not be opened.
    #[error("cannot open the object store: {0}")]
    StoreOpen(#[source] StoreError),
    /// Start-up: a worker could not build its runtime or bind its listener.
    #[error("worker {worker}: {what}: {source}")]
    Worker {
        worker: usize,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Start-up: a worker thread died before reporting.
    #[error("worker {0} exited during start-up")]
    WorkerLost(usize),
    /// Start-up: signal handling could not be set up.
    #[error("signal setup failed: {0}")]
    Signals(#[source] std::io::Error),
}

impl EdgeError {
    /// The HTTP status a client gets for this error (the single mapping).
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::Http(e) => e.status(),
            EdgeError::BadPath(_) | EdgeError::LiveBadRequest(_) => 400,
            EdgeError::LiveUnavailable => 503,
            EdgeError::NotFound => 404,
            EdgeError::MethodNotAllowed => 405,
            EdgeError::HeaderTimeout => 408,
            EdgeError::NotImplemented(_) => 501,
            EdgeError::PreconditionFailed => 412,
            EdgeError::RangeNotSatisfiable => 416,
            EdgeError::Signature(_) | EdgeError::Forbidden | EdgeError::PurgeDisabled => 403,
            EdgeError::Unauthorized => 401,
            EdgeError::Metrics(d) => d.status(),
            EdgeError::BadRequest(_) => 400,
            EdgeError::PayloadTooLarge => 413,
            EdgeError::TooManyConnections => 503,
            EdgeError::FleetPurgeDisabled => 409,
            EdgeError::FleetPurgeFailed(_) | EdgeError::VisibilityUnavailable => 503,
            EdgeError::Origin(_) | EdgeError::Upstream(_) => 502,
            EdgeError::OriginTimeout => 504,
            EdgeError::Config(_)
            | EdgeError::InvalidConfig(_)
            | EdgeError::StoreOpen(_)
            | EdgeError::DiskTier(_)
            | EdgeError::Worker { .. }
            | EdgeError::WorkerLost(_)
            | EdgeError::Signals(_) => 500,
        }
    }

    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::Http(e) => match e.status() {
                414 => "uri_too_long",
                431 => "headers_too_large",
                501 => "not_implemented",
                505 => "version_not_supported",
                _ => "bad_request",
            },
            EdgeError::BadPath(_) => "bad_path",
            EdgeError::LiveBadRequest(_) => "bad_request",
            EdgeError::LiveUnavailable => "unavailable",
            EdgeError::NotFound => "not_found",
            EdgeError::MethodNotAllowed => "method_not_allowed",
            EdgeError::HeaderTimeout => "request_timeout",
            EdgeError::NotImplemented(_) => "not_implemented",
            EdgeError::PreconditionFailed => "precondition_failed",
            EdgeError::RangeNotSatisfiable => "range_not_satisfiable",
            EdgeError::Signature(e) => e.code(),
            EdgeError::Unauthorized => "unauthorized",
            EdgeError::Forbidden => "forbidden",
            EdgeError::Metrics(d) if d.status() == 401 => "unauthorized",
            EdgeError::Metrics(_) => "forbidden",
            EdgeError::PurgeDisabled => "purge_disabled",
            EdgeError::BadRequest(_) => "bad_request",
            EdgeError::PayloadTooLarge => "payload_too_large",
            EdgeError::TooManyConnections => "too_many_connections",
            EdgeError::FleetPurgeDisabled => "fleet_purge_disabled",
            EdgeError::FleetPurgeFailed(_) => "fleet_purge_unavailable",
            EdgeError::VisibilityUnavailable => "visibility_unavailable",
            EdgeError::Origin(_) | EdgeError::Upstream(_) => "origin_error",
            EdgeError::OriginTimeout => "origin_timeout",
            _ => "internal",
        }
    }

    /// The message a client may see: specific for client errors, generic for anything that
    /// would reveal the origin's internals.
    pub fn public_message(&self) -> String {
        match self {
            EdgeError::Origin(_) | EdgeError::Upstream(_) => {
                "the origin could not be reached".to_string()
            }
            EdgeError::OriginTimeout => "the origin did not answer in time".to_string(),
            EdgeError::NotImplemented(_) => "method not implemented".to_string(),
            EdgeError::TooManyConnections => self.to_string(),
            EdgeError::LiveUnavailable => EdgeError::LiveUnavailable.to_string(),
            EdgeError::VisibilityUnavailable => self.to_string(),
            EdgeError::FleetPurgeFailed(_) => "Redis did not take the fleet purge".to_string(),
            e if e.status() >= 500 => "internal error".to_string(),
            e => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(EdgeError, u16, &str)> = vec![
            (
                EdgeError::Http(HttpError::UriTooLong(10)),
                414,
                "uri_too_long",
            ),
            (
                EdgeError::Http(HttpError::TooManyHeaders),
                431,
                "headers_too_large",
            ),
            (
                EdgeError::Http(HttpError::Malformed("x")),
                400,
                "bad_request",
            ),
            (
                EdgeError::Http(HttpError::Version),
                505,
                "version_not_supported",
            ),
            (EdgeError::BadPath(PathError::DotSegment), 400, "bad_path"),
            (EdgeError::NotFound, 404, "not_found"),
            (EdgeError::MethodNotAllowed, 405, "method_not_allowed"),
            (EdgeError::HeaderTimeout, 408, "request_timeout"),
            (
                EdgeError::NotImplemented("BREW".into()),
                501,
                "not_implemented",
            ),
            (EdgeError::OriginTimeout, 504, "origin_timeout"),
            (EdgeError::PreconditionFailed, 412, "precondition_failed"),
            (EdgeError::RangeNotSatisfiable, 416, "range_not_satisfiable"),
            (
                EdgeError::Signature(SignError::Expired),
                403,
                "signature_expired",
            ),
            (EdgeError::Unauthorized, 401, "unauthorized"),
            (EdgeError::Forbidden, 403, "forbidden"),
            (EdgeError::PurgeDisabled, 403, "purge_disabled"),
            (EdgeError::PayloadTooLarge, 413, "payload_too_large"),
            (EdgeError::TooManyConnections, 503, "too_many_connections"),
            (EdgeError::FleetPurgeDisabled, 409, "fleet_purge_disabled"),
            (
                EdgeError::FleetPurgeFailed("redis: refused".into()),
                503,
                "fleet_purge_unavailable",
            ),
            (
                EdgeError::VisibilityUnavailable,
                503,
                "visibility_unavailable",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
        }
    }

    #[test]
    fn origin_errors_do_not_leak_details() {
        let err = EdgeError::Origin(StoreError::S3 {
            key: "v/a/secret".into(),
            message: "endpoint http://10.0.0.7:9000 refused".into(),
        });
        assert_eq!(err.status(), 502);
        let msg = err.public_message();
        assert!(
            !msg.contains("10.0.0.7") && !msg.contains("secret"),
            "{msg}"
        );
    }
}
