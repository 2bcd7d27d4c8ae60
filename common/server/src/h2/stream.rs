//! One HTTP/2 stream: the request as a [`RequestHead`] plus its buffered body, the service's
//! handler, and the response sent with h2 flow control.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use ringcast_proto::http::{HeaderValue, Method, RequestHead};

use crate::conn::Conn;
use crate::cors::Cors;
use crate::handler::Handler;
use crate::worker::{InflightGuard, Worker};
use crate::Response;

/// File bodies are read and sent this much at a time.
const FILE_PIECE: usize = 64 * 1024;

/// Hop-by-hop fields of an HTTP/1.1 head that HTTP/2 forbids (RFC 9113 §8.2.2).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub(super) async fn serve<H: Handler>(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    worker: Rc<Worker>,
    handler: Rc<H>,
    peer: Option<IpAddr>,
    secure: bool,
) {
    worker.stats.request();
    worker.stats.h2.stream();
    let _inflight = InflightGuard::new(&worker);
    let (parts, body) = req.into_parts();
    let head = request_head(&parts);
    // Streamed bodies and bodies declared larger than the buffer go over HTTP/1.1: refused
    // before anything ran, so the client's retry there cannot repeat a side effect.
    let max_body = worker.settings.h2.max_request_body;
    if handler.needs_http1(&head) || head.content_length.is_some_and(|n| n > max_body as u64) {
        worker.stats.h2.http1_required();
        respond.send_reset(h2::Reason::HTTP_1_1_REQUIRED);
        return;
    }
    let resp = match read_body(body, max_body).await {
        Ok(body) => {
            let mut conn = Conn::for_h2_stream(Rc::clone(&worker), peer, body, secure);
            match handler.handle(&head, &mut conn).await {
                Some(r) if !r.sent => r,
                // The handler tried to write a response itself (not possible on h2) or gave
                // up: the stream is reset rather than answered with something partial.
                _ => {
                    respond.send_reset(h2::Reason::INTERNAL_ERROR);
                    return;
                }
            }
        }
        // A body without a declared length that outgrew the buffer: too late to hand the
        // request to HTTP/1.1 cleanly.
        Err(BodyRefused::TooLarge) => Response::error_parts(
            413,
            "payload_too_large",
            "request body too large for HTTP/2; use HTTP/1.1",
        ),
        Err(BodyRefused::Broken) => return,
    };
    let mut resp = resp;
    if head.method == Method::Head {
        resp.head_only = true;
    }
    worker.stats.response(resp.status);
    let cors = worker.settings.cors.for_head(&head);
    if let Err(e) = send(
        &mut respond,
        resp,
        worker.settings.cors_expose_headers,
        cors,
    )
    .await
    {
        tracing::debug!(error = %e, "h2: response not sent");
    }
}

fn request_head(parts: &http::request::Parts) -> RequestHead {
    let method = match parts.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let mut headers = Vec::with_capacity(parts.headers.len() + 1);
    if let Some(authority) = parts.uri.authority() {
        headers.push(("host".to_string(), authority.as_str().to_string()));
    }
    for (name, value) in &parts.headers {
        // h2 gives lower-case names; values that are not visible ASCII are dropped as
        // HTTP/1.1 parsing would refuse them.
        if let Ok(v) = value.to_str() {
            if name == http::header::HOST && headers.first().is_some_and(|(n, _)| n == "host") {
                continue;
            }
            headers.push((name.as_str().to_string(), v.to_string()));
        }
    }
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    RequestHead {
        method,
        target,
        version_minor: 1,
        headers,
        keep_alive: true,
        content_length: Some(content_length.unwrap_or(0)),
        chunked: false,
    }
}

enum BodyRefused {
    TooLarge,
    Broken,
}

/// The whole request body, at most `max` bytes.
async fn read_body(mut body: RecvStream, max: usize) -> Result<Vec<u8>, BodyRefused> {
    let mut all = Vec::new();
    while let Some(piece) = body.data().await {
        let piece = piece.map_err(|_| BodyRefused::Broken)?;
        let _ = body.flow_control().release_capacity(piece.len());
        if all.len() + piece.len() > max {
            return Err(BodyRefused::TooLarge);
        }
        all.extend_from_slice(&piece);
    }
    Ok(all)
}

/// The response head as h2 fields: the same fields the HTTP/1.1 head carries (`Date`, CORS,
/// `Content-Length`…), minus hop-by-hop fields, built from the response's fields directly.
/// (It used to write the HTTP/1.1 head and parse it back: 7 % of an h2 worker's time.)
fn response_head(
    resp: &Response,
    expose: &'static str,
    cors: Cors,
) -> io::Result<http::Response<()>> {
    let mut out = http::Response::new(());
    *out.status_mut() = http::StatusCode::from_u16(resp.status).map_err(io::Error::other)?;
    let headers = out.headers_mut();
    // Sized once: growing the map was 2 % of an h2 worker.
    headers.reserve(16);
    FIELDS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (cors, n) = cors.fields(expose);
        let cors = cors.map(|(n, v)| (n, HeaderValue::Static(v)));
        let fields = resp
            .fields_as_set()
            .chain(cors[..n].iter().map(|(n, v)| (*n, v)));
        for (i, (name, value)) in fields.enumerate() {
            if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            // Names are the service's constants and values had CR/LF stripped; a field h2
            // cannot carry is left out rather than failing the whole response.
            match cache.field(i, name, value) {
                Some((n, v)) => {
                    headers.append(n, v);
                }
                None => tracing::debug!(field = name, "h2: response field left out"),
            }
        }
        if let Some(len) = resp.content_length() {
            headers.insert(http::header::CONTENT_LENGTH, cache.length(len));
        }
    });
    Ok(out)
}

thread_local! {
    static FIELDS: RefCell<FieldCache> = const { RefCell::new(FieldCache { slots: Vec::new(), length: None }) };
}

/// The h2 fields of the previous response, by position. Responses of one route carry the
/// same fields in the same order and mostly the same values (the constants, the second's
/// `Date`, a hot object's `ETag` and length), so a field equal to the one at its position last
/// time is a clone of it instead of a name lookup plus an allocation and a copy of the value —
/// which were most of the cost of building the head. Constant values are referenced, not
/// copied (their clones are free); computed ones are shared by reference count.
struct FieldCache {
    slots: Vec<Slot>,
    length: Option<(u64, http::HeaderValue)>,
}

struct Slot {
    name: &'static str,
    /// The constant the value was made from, if it was one.
    constant: Option<&'static str>,
    header_name: http::HeaderName,
    value: http::HeaderValue,
}

impl FieldCache {
    // The variant matters (a constant is referenced, not copied): a `&str` would lose it.
    fn field(
        &mut self,
        i: usize,
        name: &'static str,
        value: &HeaderValue,
    ) -> Option<(http::HeaderName, http::HeaderValue)> {
        if let Some(s) = self.slots.get(i) {
            let same = s.name == name
                && match (value, s.constant) {
                    // The same constant: compare where it is, not what it says.
                    (HeaderValue::Static(v), Some(c)) => std::ptr::eq(*v, c) || *v == c,
                    (v, _) => s.value.as_bytes() == v.as_str().as_bytes(),
                };
            if same {
                return Some((s.header_name.clone(), s.value.clone()));
            }
        }
        let header_name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let (constant, bytes) = match value {
            HeaderValue::Static(v) => (Some(*v), Bytes::from_static(v.as_bytes())),
            v => (None, Bytes::copy_from_slice(v.as_str().as_bytes())),
        };
        let value = http::HeaderValue::from_maybe_shared(bytes).ok()?;
        let slot = Slot {
            name,
            constant,
            header_name: header_name.clone(),
            value: value.clone(),
        };
        if i < self.slots.len() {
            self.slots[i] = slot;
        } else if i == self.slots.len() && i < 32 {
            self.slots.push(slot);
        }
        Some((header_name, value))
    }

    fn length(&mut self, len: u64) -> http::HeaderValue {
        match &self.length {
            Some((l, v)) if *l == len => v.clone(),
            _ => {
                let v = http::HeaderValue::from(len);
                self.length = Some((len, v.clone()));
                v
            }
        }
    }
}

async fn send(
    respond: &mut SendResponse<Bytes>,
    resp: Response,
    expose: &'static str,
    cors: Cors,
) -> io::Result<()> {
    let head = response_head(&resp, expose, cors)?;
    let body = resp.wire_body().clone();
    let file = resp.wire_file();
    let empty = body.is_empty() && file.is_none_or(|f| f.len == 0);
    let mut out = respond
        .send_response(head, empty)
        .map_err(io::Error::other)?;
    if empty {
        return Ok(());
    }
    if let Some(f) = file {
        let mut sent = 0u64;
        while sent < f.len {
            let want = (f.len - sent).min(FILE_PIECE as u64) as usize;
            let mut piece = vec![0u8; want];
            let n = f.file.read_at(&mut piece, f.offset + sent)?;
            if n == 0 {
                out.send_reset(h2::Reason::INTERNAL_ERROR);
                return Ok(());
            }
            piece.truncate(n);
            sent += n as u64;
            send_data(&mut out, Bytes::from(piece), sent == f.len).await?;
        }
        return Ok(());
    }
    send_data(&mut out, body, true).await
}

/// Send `data` as the client's flow-control windows allow.
async fn send_data(out: &mut SendStream<Bytes>, mut data: Bytes, end: bool) -> io::Result<()> {
    while !data.is_empty() {
        out.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| out.poll_capacity(cx)).await {
            Some(r) => r.map_err(io::Error::other)?,
            None => return Err(io::ErrorKind::BrokenPipe.into()),
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        out.send_data(piece, end && data.is_empty())
            .map_err(io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_h2_head_has_the_http1_fields_without_hop_by_hop() {
        let mut resp = Response::text(206, "video/mp4", Bytes::from_static(b"12345"))
            .header("ETag", "\"abc\"")
            .header("Connection", "keep-alive")
            .header("Vary", "Accept-Encoding")
            .header("Vary", "Origin");
        resp.head_only = true;
        let head = response_head(&resp, "Content-Length, ETag", Cors::Always).expect("head");
        assert_eq!(head.status(), 206);
        let h = head.headers();
        assert_eq!(h["content-length"], "5", "a HEAD gets the GET's length");
        assert_eq!(h["etag"], "\"abc\"");
        assert_eq!(h["content-type"], "video/mp4");
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-expose-headers"], "Content-Length, ETag");
        assert!(h.contains_key("date"));
        assert_eq!(h.get_all("vary").iter().count(), 2, "repeated fields kept");
        assert!(!h.contains_key("connection"));
        let none = response_head(&Response::new(304), "ETag", Cors::Always).expect("head");
        assert!(!none.headers().contains_key("content-length"));
    }

    #[test]
    fn the_h2_head_carries_the_cors_fields_of_the_request() {
        let resp = Response::text(200, "video/mp4", Bytes::from_static(b"12345"));
        // The field cache sees each kind after another: no field may stick from the last one.
        for _ in 0..2 {
            for cors in [Cors::NoOrigin, Cors::Origin, Cors::Always] {
                let head = response_head(&resp, "ETag", cors).expect("head");
                let h = head.headers();
                let pair = cors != Cors::NoOrigin;
                assert_eq!(
                    h.contains_key("access-control-allow-origin"),
                    pair,
                    "{cors:?}"
                );
                assert_eq!(
                    h.get("access-control-expose-headers")
                        .is_some_and(|v| v == "ETag"),
                    pair,
                    "{cors:?}"
                );
                let vary: Vec<_> = h.get_all("vary").iter().collect();
                assert_eq!(
                    vary == ["Origin"],
                    cors != Cors::Always,
                    "{cors:?}: {vary:?}"
                );
                assert_eq!(h["content-length"], "5");
            }
        }
    }

    #[test]
    fn the_field_cache_never_serves_a_previous_value() {
        let a = Response::text(200, "video/mp4", Bytes::from_static(b"12345"))
            .header("ETag", "\"a\"")
            .header("X-Cache", "HIT");
        let b = Response::text(200, "video/mp4", Bytes::from_static(b"123"))
            .header("ETag", "\"b\"")
            .header("X-Cache", "MISS");
        let c = Response::text(200, "video/mp4", Bytes::from_static(b"123")).header("Age", "3");
        for _ in 0..2 {
            let h = response_head(&a, "ETag", Cors::Always).expect("head");
            assert_eq!(h.headers()["etag"], "\"a\"");
            assert_eq!(h.headers()["x-cache"], "HIT");
            assert_eq!(h.headers()["content-length"], "5");
            let h = response_head(&b, "ETag", Cors::Always).expect("head");
            assert_eq!(h.headers()["etag"], "\"b\"");
            assert_eq!(h.headers()["x-cache"], "MISS");
            assert_eq!(h.headers()["content-length"], "3");
            // Another field at the same position.
            let h = response_head(&c, "ETag", Cors::Always).expect("head");
            assert_eq!(h.headers()["age"], "3");
            assert!(!h.headers().contains_key("etag"));
            assert!(!h.headers().contains_key("x-cache"));
        }
    }
}
