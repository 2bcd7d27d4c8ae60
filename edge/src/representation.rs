//! A cached object → the response for one GET/HEAD: content negotiation (gzip), validators and
//! conditional requests (304/412), and single byte ranges (206/416). The decisions are the pure
//! functions of `ringcast_common::http::{encoding, conditional, range}`; this file only picks
//! the body slice and the headers.
//!
//! Order (RFC 9110 §13.2.2, §14.2): select the representation (gzip or identity) first, since
//! validators and ranges belong to the representation sent; then preconditions; then `Range`,
//! honoured only for GET/HEAD and only when `If-Range` (if any) matches.
//!
//! A `Range` request always selects the identity body, even from a client that accepts gzip:
//! byte offsets into a gzip stream are useless to players, and serving identity is always
//! allowed. So a 206 never carries `Content-Encoding`.

use std::time::Instant;

use ringcast_common::http::conditional::{self, Conditions, Precondition, Validators};
use ringcast_common::http::{encoding, range, RequestHead};

use crate::cache::{CacheStatus, Entry};
use crate::error::EdgeError;
use crate::http_date;
use crate::response::Response;

/// The response to a GET or HEAD of a cached object.
pub fn respond(req: &RequestHead, entry: &Entry, status: CacheStatus, now: Instant) -> Response {
    let range_header = req.header("range");
    let gzip = match &entry.gzip {
        Some(gz)
            if range_header.is_none() && encoding::accepts_gzip(req.header("accept-encoding")) =>
        {
            Some(gz)
        }
        _ => None,
    };
    let (body, etag) = match gzip {
        Some(gz) => (gz.clone(), entry.etag.gzip().header()),
        None => (entry.body.clone(), entry.etag.header()),
    };
    let validators = Validators {
        etag: &etag,
        last_modified: Some(entry.last_modified),
    };
    let mut resp = Response::new(200)
        .header("Cache-Control", entry.cache_control)
        .header("Age", entry.age_secs(now).to_string())
        .header("X-Cache", status.as_str())
        .header("ETag", etag.clone())
        .header("Last-Modified", http_date::format(entry.last_modified))
        .header("Accept-Ranges", "bytes");
    if entry.gzip.is_some() {
        // The answer depends on Accept-Encoding: shared caches must key on it.
        resp = resp.header("Vary", "Accept-Encoding");
    }
    if gzip.is_some() {
        resp = resp.header("Content-Encoding", "gzip");
    }
    let conditions = Conditions {
        if_match: req.header("if-match"),
        if_none_match: req.header("if-none-match"),
        if_modified_since: req.header("if-modified-since"),
        if_unmodified_since: req.header("if-unmodified-since"),
    };
    match conditional::evaluate(&conditions, &validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return resp.with_status(304),
        Precondition::Failed => return Response::error(&EdgeError::PreconditionFailed),
    }
    let total = body.len() as u64;
    let outcome = if conditional::if_range_allows(req.header("if-range"), &validators) {
        range::evaluate(range_header, total)
    } else {
        range::RangeOutcome::Full
    };
    match outcome.span(total) {
        Some((start, len)) => {
            if let Some(cr) = outcome.content_range(total) {
                resp = resp.header("Content-Range", cr).with_status(206);
            }
            // Offsets come from range::evaluate, always inside the body.
            let (start, end) = (start as usize, (start + len) as usize);
            resp.body(entry.content_type, body.slice(start..end))
        }
        None => Response::error(&EdgeError::RangeNotSatisfiable)
            .header("Content-Range", format!("bytes */{total}"))
            .header("Accept-Ranges", "bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringcast_common::http::{parse_request, Limits};
    use std::time::Duration;

    fn req(extra: &str) -> RequestHead {
        let raw = format!("GET /v/a/1/x HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_request(raw.as_bytes(), &Limits::default())
            .expect("valid")
            .expect("complete")
            .0
    }

    fn head(r: &Response) -> String {
        let mut out = Vec::new();
        r.write_head(&mut out, true);
        String::from_utf8(out).expect("utf8")
    }

    fn seg() -> Entry {
        let body: Vec<u8> = (0..100u8).collect();
        Entry::object(
            "v/a/1/720p/seg1.m4s",
            Bytes::from(body),
            Instant::now(),
            Duration::from_secs(1),
        )
    }

    fn playlist() -> Entry {
        let body = "#EXTM3U\n#EXTINF:2.0,\nseg0.m4s\n".repeat(20);
        Entry::object(
            "v/a/1/720p/index.m3u8",
            Bytes::from(body),
            Instant::now(),
            Duration::from_secs(1),
        )
    }

    fn get(e: &Entry, extra: &str) -> Response {
        respond(&req(extra), e, CacheStatus::Hit, Instant::now())
    }

    #[test]
    fn ranges() {
        let e = seg();
        let r = get(&e, "Range: bytes=10-19\r\n");
        assert_eq!(r.status, 206);
        assert_eq!(&r.body[..], &(10..20u8).collect::<Vec<_>>()[..]);
        let h = head(&r);
        assert!(h.contains("Content-Range: bytes 10-19/100\r\n"), "{h}");
        assert!(h.contains("Content-Length: 10\r\n"), "{h}");
        assert!(h.contains("Accept-Ranges: bytes\r\n"), "{h}");
        let r = get(&e, "Range: bytes=-5\r\n");
        assert_eq!((r.status, r.body.len()), (206, 5));
        let r = get(&e, "Range: bytes=100-\r\n");
        assert_eq!(r.status, 416);
        assert!(head(&r).contains("Content-Range: bytes */100\r\n"));
        let r = get(&e, "Range: bytes=0-1,5-6\r\n");
        assert_eq!((r.status, r.body.len()), (200, 100), "multi-range → full");
    }

    #[test]
    fn conditionals() {
        let e = seg();
        let etag = e.etag.header();
        let r = get(&e, &format!("If-None-Match: \"zz\", {etag}\r\n"));
        assert_eq!(r.status, 304);
        let h = head(&r);
        assert!(!h.contains("\r\nContent-Length:"), "{h}");
        assert!(h.contains(&format!("ETag: {etag}\r\n")), "{h}");
        assert!(r.wire_body().is_empty());
        let lm = http_date::format(e.last_modified);
        assert_eq!(get(&e, &format!("If-Modified-Since: {lm}\r\n")).status, 304);
        assert_eq!(
            get(
                &e,
                &format!("If-None-Match: \"zz\"\r\nIf-Modified-Since: {lm}\r\n")
            )
            .status,
            200,
            "If-None-Match takes precedence"
        );
        assert_eq!(get(&e, "If-Match: \"zz\"\r\n").status, 412);
        // If-Range: a matching tag keeps the range, a stale one gets the full body.
        let r = get(&e, &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"));
        assert_eq!(r.status, 206);
        let r = get(&e, "Range: bytes=0-9\r\nIf-Range: \"old\"\r\n");
        assert_eq!((r.status, r.body.len()), (200, 100));
    }

    #[test]
    fn gzip_negotiation() {
        let e = playlist();
        let r = get(&e, "Accept-Encoding: gzip, br\r\n");
        assert_eq!(r.status, 200);
        let h = head(&r);
        assert!(h.contains("Content-Encoding: gzip\r\n"), "{h}");
        assert!(h.contains("Vary: Accept-Encoding\r\n"), "{h}");
        assert!(h.contains("-gz\""), "{h}");
        assert_eq!(r.body, e.gzip.clone().expect("gz"));
        let r = get(&e, "");
        let h = head(&r);
        assert!(!h.contains("\r\nContent-Encoding:"), "{h}");
        assert!(h.contains("Vary: Accept-Encoding\r\n"), "{h}");
        assert_eq!(r.body, e.body);
        // Range selects identity.
        let r = get(&e, "Accept-Encoding: gzip\r\nRange: bytes=0-6\r\n");
        assert_eq!((r.status, &r.body[..]), (206, &b"#EXTM3U"[..]));
        assert!(!head(&r).contains("\r\nContent-Encoding:"));
        // The gzip variant has its own validator.
        let gz_tag = e.etag.gzip().header();
        let r = get(
            &e,
            &format!("Accept-Encoding: gzip\r\nIf-None-Match: {gz_tag}\r\n"),
        );
        assert_eq!(r.status, 304);
        let r = get(&e, &format!("If-None-Match: {gz_tag}\r\n"));
        assert_eq!(r.status, 200, "identity has another tag");
    }
}
