//! The edge's responses: the shell's one [`Response`] type, the edge's constants, and how an
//! [`EdgeError`] becomes a response (`Response::error(&e)`).
//!
//! Headers every response carries are added by the shell: `Date` (in [`Response::new`]) and,
//! on the wire, the CORS pair that lets a player on another origin read media and the
//! `Content-Length`/`Age` it needs ([`EXPOSED_HEADERS`]).

use ringcast_server::ErrorResponse;
pub use ringcast_server::{FileBody, Response};

use crate::error::EdgeError;

/// Methods the object routes allow (for `Allow` and CORS preflight).
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Response headers a cross-origin player may read (CORS, Fetch standard §3.2.7).
pub const EXPOSED_HEADERS: &str =
    "Content-Length, Content-Range, Content-Encoding, Accept-Ranges, Age, ETag, Last-Modified, X-Cache";

/// `Cache-Control` of a 404: short, so a newly published object shows up quickly while a burst
/// of requests for a missing one is still absorbed by caches in front.
pub const CACHE_NOT_FOUND: &str = "public, max-age=1";

/// The JSON error response of an edge error (status from the single mapping in [`EdgeError`]).
impl ErrorResponse for EdgeError {
    fn status(&self) -> u16 {
        EdgeError::status(self)
    }

    fn code(&self) -> &str {
        EdgeError::code(self)
    }

    fn public_message(&self) -> String {
        EdgeError::public_message(self)
    }

    fn cache_control(&self) -> &'static str {
        match self {
            EdgeError::NotFound => CACHE_NOT_FOUND,
            _ => "no-store",
        }
    }

    fn extra_headers(&self, resp: Response) -> Response {
        match self {
            EdgeError::MethodNotAllowed => resp.header("Allow", ALLOWED_METHODS),
            // Redis is retried within a second or so (`platform.redis_timeout_ms`).
            EdgeError::VisibilityUnavailable => resp.header("Retry-After", "1"),
            _ => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_text(r: &Response) -> String {
        let mut out = Vec::new();
        r.write_head_cors(
            &mut out,
            true,
            EXPOSED_HEADERS,
            ringcast_server::Cors::Origin,
        );
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn the_exposed_headers_cover_what_players_read() {
        let text = head_text(&Response::new(200));
        assert!(text.contains(&format!(
            "\r\nAccess-Control-Expose-Headers: {EXPOSED_HEADERS}\r\n"
        )));
        for h in ["Content-Range", "Age", "ETag", "Content-Length"] {
            assert!(EXPOSED_HEADERS.contains(h), "{h}");
        }
    }

    #[test]
    fn errors_are_json_with_allow_on_405() {
        let r = Response::error(&EdgeError::MethodNotAllowed);
        assert_eq!(r.status, 405);
        let text = head_text(&r);
        assert!(text.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: application/json\r\n"),
            "{text}"
        );
        assert!(text.contains("Cache-Control: no-store\r\n"), "{text}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"]["code"], "method_not_allowed");
    }

    #[test]
    fn a_404_is_cached_briefly() {
        let r = Response::error(&EdgeError::NotFound);
        assert_eq!(r.get_header("Cache-Control"), Some(CACHE_NOT_FOUND));
    }
}
