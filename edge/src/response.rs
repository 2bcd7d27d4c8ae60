//! A response as the routes build it and the connection loop writes it: status, headers, and a
//! `Bytes` body shared with the cache (no copy per request).
//!
//! Headers every response carries are added here, once: `Date`, and the CORS pair that lets a
//! player on another origin read media and the `Content-Length`/`Age` it needs.

use bytes::Bytes;
use ringcast_proto::http::{error_body, ResponseHead};

use crate::error::EdgeError;
use crate::representation::http_date;

/// Methods the object routes allow (for `Allow` and CORS preflight).
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Response headers a cross-origin player may read (CORS, Fetch standard §3.2.7).
pub const EXPOSED_HEADERS: &str =
    "Content-Length, Content-Range, Content-Encoding, Accept-Ranges, Age, ETag, Last-Modified, X-Cache";

/// `Cache-Control` of a 404: short, so a newly published object shows up quickly while a burst
/// of requests for a missing one is still absorbed by caches in front.
pub const CACHE_NOT_FOUND: &str = "public, max-age=1";

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    head: ResponseHead,
    /// The body a GET gets (a HEAD gets its length only).
    pub body: Bytes,
    /// HEAD: send the GET's `Content-Length`, no body.
    pub head_only: bool,
    /// A disk-tier body sent with `sendfile` instead of `body` (see [`Response::file`]).
    pub file: Option<FileBody>,
}

/// `len` bytes of `file` from `offset`, sent zero-copy by the connection loop.
#[derive(Debug)]
pub struct FileBody {
    pub file: std::fs::File,
    pub offset: u64,
    pub len: u64,
}

impl Response {
    /// A response with the headers every response carries.
    pub fn new(status: u16) -> Self {
        let head = ResponseHead::new(status)
            .header("Date", http_date::now())
            .header("Access-Control-Allow-Origin", "*")
            .header("Access-Control-Expose-Headers", EXPOSED_HEADERS);
        Self {
            status,
            head,
            body: Bytes::new(),
            head_only: false,
            file: None,
        }
    }

    /// Add a header.
    pub fn header(
        mut self,
        name: &'static str,
        value: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        self.head = self.head.header(name, value);
        self
    }

    /// Change the status (e.g. 200 → 206 or 304), keeping the headers.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self.head.status = status;
        self
    }

    /// Set the body and its `Content-Type`.
    pub fn body(self, content_type: &'static str, body: Bytes) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = body;
        r
    }

    /// Set a file body (`len` bytes from `offset`, e.g. one range) and its `Content-Type`.
    pub fn file(
        self,
        content_type: &'static str,
        file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = Bytes::new();
        r.file = Some(FileBody { file, offset, len });
        r
    }

    /// The file to send after the head, if any (none for HEAD and bodiless statuses).
    pub fn wire_file(&self) -> Option<&FileBody> {
        if self.head_only || self.bodiless() {
            None
        } else {
            self.file.as_ref()
        }
    }

    /// The JSON error response for `err` (status from the single mapping in [`EdgeError`]).
    pub fn error(err: &EdgeError) -> Self {
        let body = error_body(err.code(), &err.public_message());
        let cache_control = match err {
            EdgeError::NotFound => CACHE_NOT_FOUND,
            _ => "no-store",
        };
        let mut r = Self::new(err.status()).header("Cache-Control", cache_control);
        if matches!(err, EdgeError::MethodNotAllowed) {
            r = r.header("Allow", ALLOWED_METHODS);
        }
        r.body("application/json", Bytes::from(body))
    }

    /// Statuses that never carry a body nor a `Content-Length` (RFC 9110 §8.6, §15.3.5).
    fn bodiless(&self) -> bool {
        self.status < 200 || self.status == 204 || self.status == 304
    }

    /// The bytes of the body to send after the head (empty for HEAD and bodiless statuses).
    pub fn wire_body(&self) -> &Bytes {
        static EMPTY: Bytes = Bytes::new();
        if self.head_only || self.bodiless() {
            &EMPTY
        } else {
            &self.body
        }
    }

    /// Append the status line and headers to `out`.
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool) {
        let body_len = self.file.as_ref().map_or(self.body.len() as u64, |f| f.len);
        let len = (!self.bodiless()).then_some(body_len);
        self.head.write(out, len, keep_alive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_text(r: &Response, keep_alive: bool) -> String {
        let mut out = Vec::new();
        r.write_head(&mut out, keep_alive);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn every_response_has_cors_and_date() {
        let text = head_text(
            &Response::new(200).body("text/plain", Bytes::from_static(b"ok")),
            true,
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "\r\nAccess-Control-Expose-Headers: {EXPOSED_HEADERS}\r\n"
        )));
        for h in ["Content-Range", "Age", "ETag", "Content-Length"] {
            assert!(EXPOSED_HEADERS.contains(h), "{h}");
        }
        assert!(text.contains("\r\nDate: "), "{text}");
        assert!(text.contains("\r\nContent-Length: 2\r\n"), "{text}");
        assert!(!text.contains("Connection: close"));
        assert!(head_text(&Response::new(200), false).contains("Connection: close"));
    }

    #[test]
    fn head_keeps_the_length_but_sends_no_body() {
        let mut r = Response::new(200).body("video/mp4", Bytes::from_static(b"12345"));
        r.head_only = true;
        assert!(head_text(&r, true).contains("Content-Length: 5\r\n"));
        assert!(r.wire_body().is_empty());
    }

    #[test]
    fn no_content_has_no_length() {
        let r = Response::new(204);
        assert!(!head_text(&r, true).contains("\r\nContent-Length:"));
        assert!(r.wire_body().is_empty());
    }

    #[test]
    fn errors_are_json_with_allow_on_405() {
        let r = Response::error(&EdgeError::MethodNotAllowed);
        assert_eq!(r.status, 405);
        let text = head_text(&r, true);
        assert!(text.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: application/json\r\n"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"]["code"], "method_not_allowed");
    }
}
