//! Every way an ingest request can fail, and — in this one place — the HTTP status, error code
//! and JSON body each failure becomes (`{"error":{"code","message"}}`, DESIGN.md "Interfaces").

use ringcast_infra::purge::PurgeError;
use ringcast_infra::queue::QueueError;
use ringcast_infra::side_runtime::SideError;
use ringcast_infra::store::StoreError;
use ringcast_proto::http::HttpError;
use ringcast_proto::tus::{TusError, TUS_VERSION};

use ringcast_server::Response;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request head broke HTTP/1.1 syntax or the limits.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A tus header was missing or wrong (status prescribed by the protocol).
    #[error(transparent)]
    Tus(#[from] TusError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("method {method} is not allowed on this resource")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("method {0} is not implemented")]
    NotImplemented(String),
    #[error("{0}")]
    BadRequest(String),
    /// No API key, or one that is malformed, unknown or revoked (401 with
    /// `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller may not do this (another owner's video, a role without the right, a live
    /// push with an unknown stream key).
    #[error("{0}")]
    Forbidden(String),
    /// A `/metrics` request from a client that may not read them.
    #[error(transparent)]
    Metrics(#[from] ringcast_server::MetricsDenied),
    /// A live push on a stream key that already has a publisher.
    #[error("{0}")]
    Conflict(String),
    #[error("invalid id {0:?}: ids are 1-64 characters of [A-Za-z0-9_-]")]
    InvalidId(String),
    /// Another PATCH on the same upload is in progress (on any core).
    #[error("upload {0} is locked by another request in progress")]
    Locked(String),
    /// A PATCH body longer than what is left of the upload; nothing was written.
    #[error("request body of {body} bytes exceeds the {remaining} bytes left in the upload")]
    BodyTooLarge { body: u64, remaining: u64 },
    /// PATCH bodies must declare their length so the bound can be checked before writing.
    #[error("PATCH needs a Content-Length (chunked bodies are not accepted)")]
    LengthRequired,
    /// The finished upload is not a video container we know.
    #[error("not a video: {0}")]
    NotAVideo(String),
    /// The finished upload is a video, but over a media limit or unreadable in time.
    #[error("{reason}")]
    Unprocessable { code: &'static str, reason: String },
    /// ffprobe could not be run on a finished upload (not installed, no processes left).
    #[error("cannot inspect the upload: {0}")]
    ProbeUnavailable(String),
    /// The upload was rejected earlier; it can no longer be changed.
    #[error("upload {id} was rejected: {reason}")]
    Rejected { id: String, reason: String },
    /// An API body that is not JSON (`Content-Type` other than `application/json`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An API body over the videos API's cap.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A feature that is not configured on this ingest (e.g. playback URL signing).
    #[error("{message}")]
    NotConfigured {
        code: &'static str,
        message: &'static str,
    },
    /// A fleet-wide purge could not be published (the change itself was made; retrying the
    /// request publishes it again).
    #[error("purge not published: {0}")]
    Purge(#[from] PurgeError),
    /// The object store failed while storing the source.
    #[error("object store unavailable: {0}")]
    Store(#[from] StoreError),
    /// Redis failed while enqueuing or reading job state.
    #[error("job queue unavailable: {0}")]
    Queue(#[from] QueueError),
    #[error("background task failed: {0}")]
    Side(#[from] SideError),
    /// A dependency did not answer in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// Local disk failure (spool or state files).
    #[error("spool I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Upload state on disk that cannot be read back (corruption, manual edits).
    #[error("corrupt upload state for {id}: {message}")]
    CorruptState { id: String, message: String },
    /// The client stopped sending the request body for longer than the idle timeout.
    #[error("request body stalled for longer than the idle timeout")]
    RequestTimeout,
    /// A rollback the video's versions do not allow now (not published, a newer version being
    /// transcoded, or one that became current meanwhile).
    #[error("{0}")]
    VersionConflict(String),
    /// A per-worker cap is reached (progress streams); retry later.
    #[error("{0}")]
    Busy(String),
    /// An upload limit or the virus scan refused it (`crate::admission`, `crate::scan`).
    #[error(transparent)]
    Admission(#[from] crate::admission::AdmissionError),
    /// The client went away in the middle of its request; there is nobody to answer.
    #[error("client disconnected: {0}")]
    ClientGone(std::io::Error),
    /// A refusal about an upload that exists and is unfinished: its response carries
    /// `Upload-Expires` (tus Expiration: "for every response to an unfinished upload"), so a
    /// client that failed a chunk still learns how long it may resume. Built by
    /// [`crate::tus::expiry::on_error`]; everything else is the wrapped error's.
    #[error("{error}")]
    Unfinished {
        error: Box<IngestError>,
        expires_ms: u64,
    },
}

impl IngestError {
    /// The HTTP status a client sees.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::Http(e) => e.status(),
            IngestError::Unfinished { error, .. } => error.status(),
            IngestError::Admission(e) => e.status(),
            IngestError::Tus(e) => e.status(),
            IngestError::NotFound(_) => 404,
            IngestError::MethodNotAllowed { .. } => 405,
            IngestError::NotImplemented(_) => 501,
            IngestError::BadRequest(_) | IngestError::InvalidId(_) => 400,
            IngestError::Locked(_) => 423,
            IngestError::Unauthorized(_) => 401,
            IngestError::Forbidden(_) => 403,
            IngestError::Metrics(d) => d.status(),
            IngestError::Conflict(_) | IngestError::VersionConflict(_) => 409,
            IngestError::BodyTooLarge { .. } => 413,
            // 411 would be the textbook status, but the shared reason-phrase table has no entry
            // for it; 400 with a specific code says the same thing to clients.
            IngestError::LengthRequired => 400,
            IngestError::NotAVideo(_) | IngestError::UnsupportedMediaType(_) => 415,
            IngestError::PayloadTooLarge(_) => 413,
            IngestError::NotConfigured { .. } | IngestError::Purge(_) => 503,
            IngestError::Unprocessable { .. } => 422,
            IngestError::RequestTimeout => 408,
            IngestError::Rejected { .. } => 410,
            IngestError::Store(_)
            | IngestError::Queue(_)
            | IngestError::Side(_)
            | IngestError::ProbeUnavailable(_)
            | IngestError::Busy(_)
            | IngestError::Timeout(_) => 503,
            // The spool's disk is full: the client keeps its bytes and retries later (WebDAV's
            // 507, which tus clients treat as retryable like any 5xx).
            IngestError::Io(e) if is_disk_full(e) => 507,
            IngestError::Io(_) | IngestError::CorruptState { .. } => 500,
            // Never written (the peer is gone); 400 keeps the metrics honest if it ever is.
            IngestError::ClientGone(_) => 400,
        }
    }

    /// Machine-readable error code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Http(_) => "bad_request",
            IngestError::Unfinished { error, .. } => error.code(),
            IngestError::Admission(e) => e.code(),
            IngestError::Tus(e) => match e {
                TusError::MissingResumable | TusError::UnsupportedVersion(_) => "tus_version",
                TusError::MissingOffset | TusError::BadOffset => "bad_upload_offset",
                TusError::OffsetMismatch { .. } => "offset_mismatch",
                TusError::MissingLength | TusError::BadLength => "bad_upload_length",
                TusError::LengthTooLarge { .. } => "upload_too_large",
                TusError::BadMetadata(_) => "bad_upload_metadata",
                TusError::BadContentType => "bad_content_type",
                TusError::BadChecksum(_) => "bad_upload_checksum",
                TusError::UnsupportedChecksum(_) => "unsupported_checksum_algorithm",
                TusError::ChecksumMismatch => "checksum_mismatch",
                TusError::BadConcat(_) => "bad_upload_concat",
                TusError::BadDeferLength(_) => "bad_upload_defer_length",
            },
            IngestError::NotFound(_) => "not_found",
            IngestError::MethodNotAllowed { .. } => "method_not_allowed",
            IngestError::NotImplemented(_) => "not_implemented",
            IngestError::BadRequest(_) => "bad_request",
            IngestError::InvalidId(_) => "invalid_id",
            IngestError::Locked(_) => "upload_locked",
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Forbidden(_) => "forbidden",
            IngestError::Metrics(d) if d.status() == 401 => "unauthorized",
            IngestError::Metrics(_) => "forbidden",
            IngestError::Conflict(_) => "stream_busy",
            IngestError::VersionConflict(_) => "version_conflict",
            IngestError::Busy(_) => "busy",
            IngestError::BodyTooLarge { .. } => "body_too_large",
            IngestError::LengthRequired => "length_required",
            IngestError::NotAVideo(_) => "not_a_video",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::PayloadTooLarge(_) => "payload_too_large",
            IngestError::NotConfigured { code, .. } => code,
            IngestError::Purge(_) => "purge_unavailable",
            IngestError::Unprocessable { code, .. } => code,
            IngestError::ProbeUnavailable(_) => "probe_unavailable",
            IngestError::RequestTimeout => "request_timeout",
            IngestError::Rejected { .. } => "upload_rejected",
            IngestError::Store(_) => "store_unavailable",
            IngestError::Queue(_) => "queue_unavailable",
            IngestError::Side(_) => "unavailable",
            IngestError::Timeout(_) => "timeout",
            IngestError::Io(e) if is_disk_full(e) => "insufficient_storage",
            IngestError::Io(_) => "spool_io",
            IngestError::CorruptState { .. } => "corrupt_state",
            IngestError::ClientGone(_) => "client_gone",
        }
    }

    /// The response for this error, with the headers some statuses require.
    pub fn to_response(&self) -> Response {
        if let IngestError::Admission(e) = self {
            return e.to_response();
        }
        if let IngestError::Unfinished { error, expires_ms } = self {
            return error.to_response().header(
                "Upload-Expires",
                ringcast_proto::tus::expiry::header_value(*expires_ms),
            );
        }
        let status = self.status();
        // Internal details (paths, backend messages) go to the log, not to clients.
        let message = match self {
            IngestError::Io(e) if is_disk_full(e) => {
                "the server's upload spool is full; retry later".to_string()
            }
            IngestError::Io(_) => "the server could not write the upload to its spool".to_string(),
            IngestError::CorruptState { .. } => {
                "the upload's stored state is unreadable".to_string()
            }
            IngestError::Store(_) => "the object store is unavailable; retry later".to_string(),
            IngestError::Queue(_) | IngestError::Side(_) => {
                "the job queue is unavailable; retry later".to_string()
            }
            IngestError::ProbeUnavailable(_) => {
                "the server could not inspect the upload; retry later".to_string()
            }
            IngestError::Purge(_) => {
                "the change was saved but the edges could not be told; retry the request"
                    .to_string()
            }
            other => other.to_string(),
        };
        let mut resp = Response::error_parts(status, self.code(), &message);
        match self {
            IngestError::MethodNotAllowed { allow, .. } => {
                resp = resp.header("Allow", *allow);
            }
            IngestError::Unauthorized(_) => {
                resp = resp.header("WWW-Authenticate", "Bearer realm=\"ringcast\"");
            }
            // tus: a 412 tells the client which versions the server speaks.
            IngestError::Tus(TusError::MissingResumable | TusError::UnsupportedVersion(_)) => {
                resp = resp.header("Tus-Version", TUS_VERSION);
            }
            IngestError::Store(_)
            | IngestError::Queue(_)
            | IngestError::Side(_)
            | IngestError::Busy(_)
            | IngestError::Purge(_)
            | IngestError::Timeout(_)
            | IngestError::ProbeUnavailable(_) => {
                resp = resp.header("Retry-After", "5");
            }
            IngestError::Io(e) if is_disk_full(e) => {
                resp = resp.header("Retry-After", "30");
            }
            _ => {}
        }
        resp
    }
}

/// ENOSPC or EDQUOT: no room left for the spool or the state files.
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let e = IngestError::Tus(TusError::MissingResumable);
        let r = e.to_response();
        assert_eq!(r.status, 412);
        assert_eq!(r.get_header("Tus-Version"), Some("1.0.0"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"]["code"], "tus_version");

        let r = IngestError::MethodNotAllowed {
            method: "PUT".into(),
            allow: "GET",
        }
        .to_response();
        assert_eq!((r.status, r.get_header("Allow")), (405, Some("GET")));
        assert_eq!(IngestError::Locked("x".into()).status(), 423);
        assert_eq!(IngestError::NotAVideo("x".into()).status(), 415);
        assert_eq!(
            IngestError::Tus(TusError::OffsetMismatch {
                expected: 1,
                got: 2
            })
            .status(),
            409
        );
        assert_eq!(IngestError::Timeout("redis").status(), 503);
    }

    #[test]
    fn unavailable_dependencies_say_when_to_retry() {
        // A Redis that hangs (timeout) is as retryable as one that refuses connections.
        let r = IngestError::Timeout("redis").to_response();
        assert_eq!((r.status, r.get_header("Retry-After")), (503, Some("5")));
        // A full spool disk: 507 with its own code, retryable, no path in the body.
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = IngestError::Io(full);
        assert_eq!((e.status(), e.code()), (507, "insufficient_storage"));
        let r = e.to_response();
        assert!(r.get_header("Retry-After").is_some());
        let other = IngestError::Io(std::io::Error::other("boom"));
        assert_eq!((other.status(), other.code()), (500, "spool_io"));
    }

    #[test]
    fn internal_details_stay_out_of_bodies() {
        let e = IngestError::Io(std::io::Error::other("/secret/path: disk full"));
        let r = e.to_response();
        assert_eq!(r.status, 500);
        assert!(!String::from_utf8_lossy(&r.body).contains("/secret/path"));
    }
}
