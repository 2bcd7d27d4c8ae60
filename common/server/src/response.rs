//! The one response type of the edge and the ingest: status, headers, and a body that is either
//! `Bytes` (shared with a cache, no copy per request) or a byte range of a file (sent with
//! `sendfile`). The connection adds framing (`Content-Length`, `Connection`) and the CORS
//! fields of the service's policy ([`Cors`]); [`Response::new`] adds `Date`.
//!
//! A head can be shared ([`SharedHead`]): a service that answers the same object many times a
//! second builds its head once and hands out references; the connection then writes the head's
//! cached HTTP/1.1 bytes with one copy instead of formatting each field again.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ringcast_proto::http::{error_body, HeaderValue, ResponseHead};

use crate::cors::Cors;
use crate::date;

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    head: Head,
    /// The body a GET gets (a HEAD gets its length only).
    pub body: Bytes,
    /// HEAD: send the GET's `Content-Length`, no body (the connection also sets it for HEAD).
    pub head_only: bool,
    /// A file body sent with `sendfile` instead of `body` (see [`Response::file`]).
    pub file: Option<FileBody>,
    /// Close the connection after this response (e.g. the request body could not be consumed).
    pub close: bool,
    /// The handler already wrote this response itself, head and framed body ([`Response::sent`]):
    /// the connection writes nothing and may keep the connection open for the next request.
    pub sent: bool,
}

/// A response's head: its own, or one shared by many responses.
#[derive(Debug)]
enum Head {
    Own(ResponseHead),
    Shared(Arc<SharedHead>),
}

impl Head {
    fn get(&self) -> &ResponseHead {
        match self {
            Head::Own(h) => h,
            Head::Shared(s) => &s.head,
        }
    }

    /// The head to change: a shared one is copied (the other responses keep theirs).
    fn into_own(self) -> ResponseHead {
        match self {
            Head::Own(h) => h,
            Head::Shared(s) => s.head.clone(),
        }
    }
}

/// A complete response head (status and fields, `Date` included) shared by every response
/// that carries it, with its HTTP/1.1 bytes cached on first use. Built by
/// [`Response::into_shared`] from an ordinary response; a response made from it
/// ([`Response::with_shared_head`]) that changes its head gets a copy.
#[derive(Debug)]
pub struct SharedHead {
    head: ResponseHead,
    /// The `Content-Length` the head was written with (the body given with it must match).
    content_length: Option<u64>,
    /// Status line, fields, the CORS fields and `Content-Length`, without the blank line (a
    /// connection may add `Connection: close` first), one per kind of CORS fields
    /// ([`Cors::index`]), with the `expose` value they were written with (by address: it is a
    /// per-server constant).
    wire: [OnceLock<(usize, Vec<u8>)>; Cors::KINDS],
}

impl SharedHead {
    /// The head's status.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The cached HTTP/1.1 bytes with `cors` when `expose` is the value they were written with
    /// (the first caller writes them).
    fn wire(&self, expose: &str, cors: Cors) -> Option<&[u8]> {
        let (at, bytes) = self.wire[cors.index()].get_or_init(|| {
            let mut out = Vec::with_capacity(512);
            let (fields, n) = cors.fields(expose);
            self.head
                .write_with(&mut out, &fields[..n], self.content_length, true);
            out.truncate(out.len() - 2);
            (expose.as_ptr() as usize, out)
        });
        (*at == expose.as_ptr() as usize).then_some(bytes.as_slice())
    }
}

/// `len` bytes of `file` from `offset`, sent zero-copy by the connection loop. The file may be
/// shared by many responses at once (an in-memory file every viewer of a live part is sent
/// from, [`Response::shared_file`]): it is only read, never through a shared cursor.
#[derive(Debug)]
pub struct FileBody {
    pub file: Arc<std::fs::File>,
    pub offset: u64,
    pub len: u64,
}

/// An error that has a JSON error response (`{"error":{"code","message"}}`); each service's
/// error enum implements it, so `Response::error(&e)` is the one place errors become responses.
pub trait ErrorResponse {
    fn status(&self) -> u16;
    /// The stable machine-readable code.
    fn code(&self) -> &str;
    /// The message clients see (internal details stay in the log).
    fn public_message(&self) -> String;
    /// `Cache-Control` of the error: errors are about this request only by default.
    fn cache_control(&self) -> &'static str {
        "no-store"
    }
    /// Headers some statuses require (`Allow` on 405, `Retry-After`...).
    fn extra_headers(&self, resp: Response) -> Response {
        resp
    }
}

impl Response {
    /// A response with the headers every response carries.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            head: Head::Own(ResponseHead::new(status).header("Date", date::now())),
            body: Bytes::new(),
            head_only: false,
            file: None,
            close: false,
            sent: false,
        }
    }

    /// A response of `status` the handler has written completely itself (with [`Conn::write_raw`],
    /// its own framing and `Connection` header), e.g. a proxied one. Unlike returning `None`, the
    /// connection stays open when the request's body was read completely, the request allows
    /// keep-alive and `close` is not set; the handler must have announced the same
    /// (`Connection: close` in its head when it sets `close` or the client asked for it).
    ///
    /// [`Conn::write_raw`]: crate::Conn::write_raw
    pub fn sent(status: u16) -> Self {
        let mut r = Self::new(status);
        r.sent = true;
        r
    }

    /// Add a header.
    pub fn header(mut self, name: &'static str, value: impl Into<HeaderValue>) -> Self {
        self.head = Head::Own(self.head.into_own().header(name, value));
        self
    }

    /// First value of a header set on this response.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.head.get().get(name)
    }

    /// Change the status (e.g. 200 → 206 or 304), keeping the headers.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        let mut head = self.head.into_own();
        head.status = status;
        self.head = Head::Own(head);
        self
    }

    /// This response with its head made shareable: the head (status and fields as they are
    /// now, `Date` included) becomes a [`SharedHead`] that further responses with the same
    /// head and a body of the same length can be made from ([`Response::with_shared_head`]).
    pub fn into_shared(mut self) -> (Self, Arc<SharedHead>) {
        let content_length = self.content_length();
        let head = match self.head {
            Head::Own(h) => Arc::new(SharedHead {
                head: h,
                content_length,
                wire: Default::default(),
            }),
            Head::Shared(s) => s,
        };
        self.head = Head::Shared(Arc::clone(&head));
        (self, head)
    }

    /// A response with a shared head and `body` (whose length must be the one the head was
    /// made with: a different one makes the connection write the head afresh, with the right
    /// `Content-Length`).
    pub fn with_shared_head(head: Arc<SharedHead>, body: Bytes) -> Self {
        Self {
            status: head.status(),
            head: Head::Shared(head),
            body,
            head_only: false,
            file: None,
            close: false,
            sent: false,
        }
    }

    /// Set the body and its `Content-Type`.
    pub fn body(self, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = body.into();
        r
    }

    /// A response with a body of `content_type`.
    pub fn text(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self::new(status).body(content_type, body)
    }

    /// A JSON body.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status).body("application/json", value.to_string())
    }

    /// Set a file body (`len` bytes from `offset`, e.g. one range) and its `Content-Type`.
    pub fn file(
        self,
        content_type: &'static str,
        file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Self {
        self.shared_file(content_type, Arc::new(file), offset, len)
    }

    /// [`Response::file`] with a file other responses may be sent from at the same time (no
    /// descriptor is duplicated per response).
    pub fn shared_file(
        self,
        content_type: &'static str,
        file: Arc<std::fs::File>,
        offset: u64,
        len: u64,
    ) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = Bytes::new();
        r.file = Some(FileBody { file, offset, len });
        r
    }

    /// The JSON error response for `err`.
    pub fn error(err: &(impl ErrorResponse + ?Sized)) -> Self {
        let body = error_body(err.code(), &err.public_message());
        let r = Self::new(err.status()).header("Cache-Control", err.cache_control());
        err.extra_headers(r).body("application/json", body)
    }

    /// A JSON error response from its parts (for errors of the shell itself and tests).
    pub fn error_parts(status: u16, code: &str, message: &str) -> Self {
        Self::new(status)
            .header("Cache-Control", "no-store")
            .body("application/json", error_body(code, message))
    }

    /// The file to send after the head, if any (none for HEAD and bodiless statuses).
    pub fn wire_file(&self) -> Option<&FileBody> {
        if self.head_only || self.bodiless() {
            None
        } else {
            self.file.as_ref()
        }
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

    /// Append the status line and this response's own headers to `out` (framing included).
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool) {
        self.head
            .get()
            .write(out, self.content_length(), keep_alive);
    }

    /// [`Response::write_head`] plus the CORS fields `cors` (`expose`: the headers a
    /// cross-origin page may read).
    pub fn write_head_cors(&self, out: &mut Vec<u8>, keep_alive: bool, expose: &str, cors: Cors) {
        let content_length = self.content_length();
        if let Head::Shared(shared) = &self.head {
            if shared.content_length == content_length {
                if let Some(wire) = shared.wire(expose, cors) {
                    out.extend_from_slice(wire);
                    if !keep_alive {
                        out.extend_from_slice(b"Connection: close\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    return;
                }
            }
        }
        let (fields, n) = cors.fields(expose);
        self.head
            .get()
            .write_with(out, &fields[..n], content_length, keep_alive);
    }

    /// This response's own header fields, in order (no framing, no CORS pair), each value as
    /// set: a constant or computed for this response.
    pub(crate) fn fields_as_set(&self) -> impl Iterator<Item = (&'static str, &HeaderValue)> + '_ {
        self.head.get().fields_as_set()
    }

    /// The `Content-Length` the head announces (`None` for bodiless statuses); a HEAD gets the
    /// GET's length.
    pub(crate) fn content_length(&self) -> Option<u64> {
        let body_len = self.file.as_ref().map_or(self.body.len() as u64, |f| f.len);
        (!self.bodiless()).then_some(body_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSE: &str = "Content-Length, ETag";

    fn head_text(r: &Response, keep_alive: bool) -> String {
        head_text_cors(r, keep_alive, Cors::Always)
    }

    fn head_text_cors(r: &Response, keep_alive: bool, cors: Cors) -> String {
        let mut out = Vec::new();
        r.write_head_cors(&mut out, keep_alive, EXPOSE, cors);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn every_response_has_cors_and_date() {
        let text = head_text(&Response::text(200, "text/plain", "ok"), true);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!("\r\nAccess-Control-Expose-Headers: {EXPOSE}\r\n")));
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

    struct Nope;

    impl ErrorResponse for Nope {
        fn status(&self) -> u16 {
            405
        }
        fn code(&self) -> &str {
            "method_not_allowed"
        }
        fn public_message(&self) -> String {
            "no".into()
        }
        fn extra_headers(&self, resp: Response) -> Response {
            resp.header("Allow", "GET")
        }
    }

    #[test]
    fn errors_are_json_and_not_cached() {
        let r = Response::error(&Nope);
        assert_eq!(r.status, 405);
        assert_eq!(r.get_header("allow"), Some("GET"));
        assert_eq!(r.get_header("Cache-Control"), Some("no-store"));
        assert_eq!(r.get_header("Content-Type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"]["code"], "method_not_allowed");
    }

    #[test]
    fn a_shared_head_writes_the_same_bytes_as_its_own() {
        let own = || {
            Response::new(200)
                .header("Cache-Control", "public, max-age=60")
                .header("ETag", "\"abc\"")
                .body("video/mp4", Bytes::from_static(b"12345"))
        };
        let (first, shared) = own().into_shared();
        let second = Response::with_shared_head(Arc::clone(&shared), Bytes::from_static(b"54321"));
        for keep_alive in [true, false] {
            // The date of `own()` may be a second later: compare without it.
            let strip = |t: String| {
                t.lines()
                    .filter(|l| !l.starts_with("Date:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let expected = strip(head_text(&own(), keep_alive));
            assert_eq!(strip(head_text(&first, keep_alive)), expected);
            assert_eq!(strip(head_text(&second, keep_alive)), expected);
            assert_eq!(
                head_text(&first, keep_alive),
                head_text(&second, keep_alive)
            );
        }
        assert_eq!(second.status, 200);
        assert_eq!(second.get_header("etag"), Some("\"abc\""));
        assert_eq!(&second.body[..], b"54321");
    }

    #[test]
    fn changing_a_shared_head_copies_it() {
        let (_, shared) = Response::new(200)
            .body("text/plain", Bytes::from_static(b"ok"))
            .into_shared();
        let changed = Response::with_shared_head(Arc::clone(&shared), Bytes::from_static(b"ok"))
            .header("Vary", "Accept-Encoding")
            .with_status(203);
        assert!(head_text(&changed, true).starts_with("HTTP/1.1 203 "));
        assert!(head_text(&changed, true).contains("\r\nVary: Accept-Encoding\r\n"));
        let untouched = Response::with_shared_head(shared, Bytes::from_static(b"ok"));
        let text = head_text(&untouched, true);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(!text.contains("Vary"), "{text}");
    }

    #[test]
    fn a_shared_head_with_another_length_or_expose_list_is_written_afresh() {
        let (_, shared) = Response::new(200)
            .body("text/plain", Bytes::from_static(b"four"))
            .into_shared();
        let longer =
            Response::with_shared_head(Arc::clone(&shared), Bytes::from_static(b"seven!!"));
        assert!(head_text(&longer, true).contains("\r\nContent-Length: 7\r\n"));
        let same = Response::with_shared_head(shared, Bytes::from_static(b"four"));
        // Cached with EXPOSE first; another list must not get those bytes.
        assert!(head_text(&same, true).contains(EXPOSE));
        let mut out = Vec::new();
        same.write_head_cors(&mut out, true, "ETag", Cors::Always);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("\r\nAccess-Control-Expose-Headers: ETag\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nContent-Length: 4\r\n"), "{text}");
    }

    #[test]
    fn a_shared_head_keeps_one_wire_form_per_kind_of_cors_fields() {
        let (_, shared) = Response::new(200)
            .header("ETag", "\"e\"")
            .body("video/mp4", Bytes::from_static(b"four"))
            .into_shared();
        let r = Response::with_shared_head(shared, Bytes::from_static(b"four"));
        // Interleaved, so a form cached first must not answer for another kind.
        for _ in 0..2 {
            for cors in [Cors::NoOrigin, Cors::Origin, Cors::Always] {
                let text = head_text_cors(&r, true, cors);
                let pair = cors != Cors::NoOrigin;
                assert_eq!(
                    text.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
                    pair,
                    "{cors:?}: {text}"
                );
                assert_eq!(
                    text.contains(&format!("\r\nAccess-Control-Expose-Headers: {EXPOSE}\r\n")),
                    pair,
                    "{cors:?}: {text}"
                );
                assert_eq!(
                    text.contains("\r\nVary: Origin\r\n"),
                    cors != Cors::Always,
                    "{cors:?}: {text}"
                );
                assert!(text.contains("\r\nETag: \"e\"\r\n"), "{text}");
                assert!(text.ends_with("\r\nContent-Length: 4\r\n\r\n"), "{text}");
                // The own head's bytes are the same (same `Date`: written from the same head).
                let mut own = Vec::new();
                r.write_head(&mut own, true);
                assert_eq!(text.len(), own.len() + cors_bytes(cors), "{text}");
            }
        }
    }

    /// What the CORS fields of `cors` add to a head with [`EXPOSE`].
    fn cors_bytes(cors: Cors) -> usize {
        let pair = "Access-Control-Allow-Origin: *\r\n".len()
            + format!("Access-Control-Expose-Headers: {EXPOSE}\r\n").len();
        let vary = "Vary: Origin\r\n".len();
        match cors {
            Cors::Always => pair,
            Cors::Origin => pair + vary,
            Cors::NoOrigin => vary,
        }
    }

    #[test]
    fn file_bodies_frame_with_the_file_length() {
        let file = std::fs::File::open("/dev/null").expect("open");
        let r = Response::new(206).file("video/mp4", file, 10, 20);
        assert!(head_text(&r, true).contains("Content-Length: 20\r\n"));
        assert!(r.wire_file().is_some() && r.wire_body().is_empty());
    }
}
