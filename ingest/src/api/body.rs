//! Reading a small JSON request body (`PATCH /v1/videos/{id}`, `POST …/playback`): a
//! `Content-Type` of `application/json` (415 otherwise), a `Content-Length` (chunked bodies are
//! refused: the cap is checked before a byte is read), at most
//! [`MAX_BODY_BYTES`](ringcast_proto::videos::MAX_BODY_BYTES) (413), received within
//! [`BODY_TIMEOUT`] (408).

use std::time::Duration;

use ringcast_proto::http::RequestHead;
use ringcast_proto::videos::{is_json_content_type, MAX_BODY_BYTES};
use ringcast_server::{BodyError, Conn};

use crate::error::IngestError;

/// How long a client may take to send a JSON body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The request's JSON body (empty when it has none).
pub async fn read_json(head: &RequestHead, conn: &mut Conn) -> Result<Vec<u8>, IngestError> {
    if head.chunked {
        return Err(IngestError::LengthRequired);
    }
    let len = head.body_len();
    if len > MAX_BODY_BYTES as u64 {
        return Err(IngestError::PayloadTooLarge(format!(
            "the body is {len} bytes; at most {MAX_BODY_BYTES} are accepted"
        )));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    match head.header("content-type") {
        Some(ct) if is_json_content_type(ct) => {}
        other => {
            return Err(IngestError::UnsupportedMediaType(format!(
                "the body must be application/json, not {}",
                other.map_or("a body without Content-Type".to_string(), |c| {
                    c.chars().take(60).collect()
                })
            )))
        }
    }
    match conn.read_to_end(MAX_BODY_BYTES, BODY_TIMEOUT).await {
        Ok(body) => Ok(body),
        Err(BodyError::TooLarge(max)) => Err(IngestError::PayloadTooLarge(format!(
            "at most {max} bytes are accepted"
        ))),
        Err(BodyError::TimedOut) => Err(IngestError::RequestTimeout),
        Err(BodyError::Io(e)) => Err(IngestError::ClientGone(e)),
    }
}
