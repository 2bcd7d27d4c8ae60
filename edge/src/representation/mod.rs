//! A cached object → the response for one GET/HEAD: content negotiation (gzip), validators and
//! conditional requests (304/412), and single byte ranges (206/416). The decisions are the pure
//! functions of `ringcast_proto::http::{encoding, conditional, range}`; this file only picks
//! the body slice and the headers.
//!
//! Order (RFC 9110 §13.2.2, §14.2): select the representation (gzip or identity) first, since
//! validators and ranges belong to the representation sent; then preconditions; then `Range`,
//! honoured only for GET/HEAD and only when `If-Range` (if any) matches.
//!
//! A `Range` request always selects the identity body, even from a client that accepts gzip:
//! byte offsets into a gzip stream are useless to players, and serving identity is always
//! allowed. So a 206 never carries `Content-Encoding`.
//!
//! [`plan`] is the decision without a body, for any tier: the memory tier slices its `Bytes`
//! ([`respond`]); a disk tier passes the planned `(offset, len)` to `sendfile` and sets
//! `Content-Type`/`Content-Length` itself.

pub mod http_date;
pub mod ready;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use ringcast_proto::http::conditional::{self, Conditions, EntityTag, Precondition, Validators};
use ringcast_proto::http::{encoding, range, RequestHead};

use crate::error::EdgeError;
use crate::response::{FileBody, Response};
use crate::tiers::content;
use crate::tiers::memory::{CacheStatus, Entry};

/// What the decision needs to know about a stored object, wherever its bytes live (memory
/// `Bytes` or a disk-tier file served with `sendfile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Tag of the identity body (the gzip variant's tag is derived from it).
    pub etag: EntityTag,
    /// Unix seconds.
    pub last_modified: u64,
    /// Length of the identity body.
    pub len: u64,
    /// Length of the gzip variant, when there is one.
    pub gzip_len: Option<u64>,
    pub cache_control: &'static str,
    pub content_type: &'static str,
    pub age_secs: u64,
    pub cache_status: CacheStatus,
}

/// Which stored body to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Identity,
    Gzip,
}

/// The decision for one GET/HEAD: a response head (status and headers, no body yet) and, when
/// a body follows, which variant and which bytes of it (`offset`, `len`) — what a memory path
/// slices and what a `sendfile` path passes to the kernel.
#[derive(Debug)]
pub struct Plan {
    pub head: Response,
    pub body: Option<(Variant, u64, u64)>,
}

/// Decide the answer to `req` for the object described by `meta` (pure: no I/O, no body).
pub fn plan(req: &RequestHead, meta: &ObjectMeta) -> Plan {
    let range_header = req.header("range");
    let variant = match meta.gzip_len {
        Some(_)
            if range_header.is_none() && encoding::accepts_gzip(req.header("accept-encoding")) =>
        {
            Variant::Gzip
        }
        _ => Variant::Identity,
    };
    let (total, etag) = match (variant, meta.gzip_len) {
        (Variant::Gzip, Some(gz_len)) => (gz_len, etag_value(meta.etag.gzip())),
        _ => (meta.len, etag_value(meta.etag)),
    };
    let validators = Validators {
        etag: &etag,
        last_modified: Some(meta.last_modified),
    };
    let conditions = Conditions {
        if_match: req.header("if-match"),
        if_none_match: req.header("if-none-match"),
        if_modified_since: req.header("if-modified-since"),
        if_unmodified_since: req.header("if-unmodified-since"),
    };
    let precondition = conditional::evaluate(&conditions, &validators);
    if precondition == Precondition::Failed {
        return Plan {
            head: Response::error(&EdgeError::PreconditionFailed),
            body: None,
        };
    }
    let outcome = if conditional::if_range_allows(req.header("if-range"), &validators) {
        range::evaluate(range_header, total)
    } else {
        range::RangeOutcome::Full
    };
    // The validators are decided: the tag moves into the head (no copy per response).
    let mut head = Response::new(200)
        .header("Cache-Control", meta.cache_control)
        .header("Age", age_value(meta.age_secs))
        .header("X-Cache", meta.cache_status.as_str())
        .header("ETag", etag)
        .header("Last-Modified", last_modified_value(meta.last_modified))
        .header("Accept-Ranges", "bytes");
    if meta.gzip_len.is_some() {
        // The answer depends on Accept-Encoding: shared caches must key on it.
        head = head.header("Vary", "Accept-Encoding");
    }
    if variant == Variant::Gzip {
        head = head.header("Content-Encoding", "gzip");
    }
    if precondition == Precondition::NotModified {
        return Plan {
            head: head.with_status(304),
            body: None,
        };
    }
    match outcome.span(total) {
        Some((start, len)) => {
            if let Some(cr) = outcome.content_range(total) {
                head = head.header("Content-Range", cr).with_status(206);
            }
            Plan {
                head,
                body: Some((variant, start, len)),
            }
        }
        None => Plan {
            head: Response::error(&EdgeError::RangeNotSatisfiable)
                .header("Content-Range", format!("bytes */{total}"))
                .header("Accept-Ranges", "bytes"),
            body: None,
        },
    }
}

/// The `ETag` header of `tag`, shared with the previous response of this worker when that
/// was for the same representation: a herd of players asks for one part hundreds of times in a
/// row, and a string per response was an allocation (and a free) each.
fn etag_value(tag: EntityTag) -> Arc<str> {
    thread_local! {
        static LAST: RefCell<Option<(EntityTag, Arc<str>)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((t, v)) if *t == tag => Arc::clone(v),
        _ => {
            let v: Arc<str> = Arc::from(tag.header());
            *last = Some((tag, Arc::clone(&v)));
            v
        }
    })
}

/// The `Last-Modified` header of `secs`, shared like [`etag_value`].
fn last_modified_value(secs: u64) -> Arc<str> {
    thread_local! {
        static LAST: RefCell<Option<(u64, Arc<str>)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((t, v)) if *t == secs => Arc::clone(v),
        _ => {
            let v: Arc<str> = Arc::from(http_date::format(secs));
            *last = Some((secs, Arc::clone(&v)));
            v
        }
    })
}

/// The `Age` value: most hits are of objects fetched within the last seconds, whose ages are
/// constants (no allocation per response).
fn age_value(secs: u64) -> std::borrow::Cow<'static, str> {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(secs as usize) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(secs.to_string()),
    }
}

/// The response to a GET or HEAD of an object in the memory tier.
pub fn respond(req: &RequestHead, entry: &Entry, status: CacheStatus, now: Instant) -> Response {
    respond_from(req, entry, BodySource::Memory, status, entry.age_secs(now))
}

/// Where the body of an object's response comes from.
#[derive(Debug)]
pub enum BodySource {
    /// `entry.body` (or its gzip variant), copied into the socket.
    Memory,
    /// The disk-tier file of `len` bytes, sent with `sendfile` (ranges included).
    Disk(std::fs::File, u64),
    /// `entry.body` as a sealed in-memory file ([`crate::tiers::mem_file`]) shared by many
    /// responses, sent with `sendfile` (ranges included). Its length must be `entry.body`'s.
    /// A gzip variant still comes from memory.
    MemFile(Arc<std::fs::File>),
}

/// The response to a GET or HEAD of an object whose body comes from `source`.
pub fn respond_from(
    req: &RequestHead,
    entry: &Entry,
    source: BodySource,
    status: CacheStatus,
    age_secs: u64,
) -> Response {
    respond_from_as(req, entry, source, status, age_secs, false)
}

/// [`respond_from`] for an object of a private video when `private`: the same answer with a
/// `Cache-Control: private …` ([`content::private_cache_control`]).
pub fn respond_from_as(
    req: &RequestHead,
    entry: &Entry,
    source: BodySource,
    status: CacheStatus,
    age_secs: u64,
    private: bool,
) -> Response {
    let len = match &source {
        BodySource::Disk(_, len) => *len,
        BodySource::Memory | BodySource::MemFile(_) => entry.body.len() as u64,
    };
    let meta = object_meta(entry, len, status, age_secs, private);
    // A plain hit in memory gets this second's ready-made head (ready.rs), and so does a hot
    // live part sent from its memfd: the head of the whole identity body is the same either
    // way, only the body goes out differently.
    let plain = matches!(source, BodySource::Memory | BodySource::MemFile(_))
        && ready::is_plain(req)
        && (entry.gzip.is_none() || !encoding::accepts_gzip(req.header("accept-encoding")));
    let key = plain.then(|| ready::Key {
        date_secs: ringcast_server::coarse_unix_secs(),
        meta,
    });
    if let Some(head) = key.as_ref().and_then(ready::get) {
        return match source {
            BodySource::MemFile(file) => {
                let mut resp = Response::with_shared_head(head, bytes::Bytes::new());
                resp.file = Some(FileBody {
                    file,
                    offset: 0,
                    len,
                });
                resp
            }
            _ => Response::with_shared_head(head, entry.body.clone()),
        };
    }
    let resp = respond_planned(req, entry, source, &meta);
    let whole = resp.file.as_ref().map_or(resp.body.len() as u64, |f| f.len) == len;
    match key {
        // A plain request is always answered 200 with the whole identity body; anything
        // else (an empty body's 416...) is not shared.
        Some(key) if resp.status == 200 && whole => {
            let (resp, head) = resp.into_shared();
            ready::put(key, head);
            resp
        }
        _ => resp,
    }
}

/// What the decision needs to know about `entry` whose identity body is `len` bytes; `private`
/// gives it a `Cache-Control: private …` ([`content::private_cache_control`]).
fn object_meta(
    entry: &Entry,
    len: u64,
    status: CacheStatus,
    age_secs: u64,
    private: bool,
) -> ObjectMeta {
    let cache_control = if private {
        content::private_cache_control(entry.cache_control)
    } else {
        entry.cache_control
    };
    ObjectMeta {
        etag: entry.etag,
        last_modified: entry.last_modified,
        len,
        gzip_len: entry.gzip.as_ref().map(|g| g.len() as u64),
        cache_control,
        content_type: entry.content_type,
        age_secs,
        cache_status: status,
    }
}

/// [`respond_from_as`] once `meta` is known, through [`plan`].
fn respond_planned(
    req: &RequestHead,
    entry: &Entry,
    source: BodySource,
    meta: &ObjectMeta,
) -> Response {
    let Plan { head, body } = plan(req, meta);
    let Some((variant, start, len)) = body else {
        return head;
    };
    match source {
        // Disk-tier objects have no gzip variant (media only): the span is of the file.
        BodySource::Disk(file, _) => {
            return head
                .header("X-Cache-Tier", "disk")
                .file(entry.content_type, file, start, len);
        }
        BodySource::MemFile(file) if variant == Variant::Identity => {
            return head.shared_file(entry.content_type, file, start, len);
        }
        BodySource::Memory | BodySource::MemFile(_) => {}
    }
    let bytes = match (variant, &entry.gzip) {
        (Variant::Gzip, Some(gz)) => gz,
        _ => &entry.body,
    };
    // The span comes from range::evaluate against this body's length: always inside it.
    let (start, end) = (start as usize, (start + len) as usize);
    head.body(entry.content_type, bytes.slice(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringcast_proto::http::{parse_request, Limits};
    use std::time::Duration;

    /// A GET of an object with `extra` header lines (also used by `ready`'s tests).
    pub(super) fn req(extra: &str) -> RequestHead {
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
    fn plans_carry_sendfile_spans() {
        let e = seg();
        let meta = ObjectMeta {
            etag: e.etag,
            last_modified: e.last_modified,
            len: 1_000_000,
            gzip_len: None,
            cache_control: e.cache_control,
            content_type: e.content_type,
            age_secs: 3,
            cache_status: CacheStatus::Hit,
        };
        let p = plan(&req("Range: bytes=500000-\r\n"), &meta);
        assert_eq!(p.head.status, 206);
        assert_eq!(p.body, Some((Variant::Identity, 500_000, 500_000)));
        let p = plan(&req(""), &meta);
        assert_eq!(p.body, Some((Variant::Identity, 0, 1_000_000)));
        let p = plan(
            &req(&format!("If-None-Match: {}\r\n", e.etag.header())),
            &meta,
        );
        assert_eq!((p.head.status, p.body), (304, None));
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

    /// A head without its `Date` line (two responses may straddle a second).
    fn undated(r: &Response) -> String {
        head(r)
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn ready_made_heads_are_the_planned_heads() {
        let e = seg();
        let len = e.body.len() as u64;
        let planned = |age: u64, private: bool| {
            let meta = object_meta(&e, len, CacheStatus::Hit, age, private);
            respond_planned(&req(""), &e, BodySource::Memory, &meta)
        };
        for (age, private) in [(0, false), (0, false), (7, false), (7, true), (0, false)] {
            let r = respond_from_as(
                &req(""),
                &e,
                BodySource::Memory,
                CacheStatus::Hit,
                age,
                private,
            );
            assert_eq!(
                undated(&r),
                undated(&planned(age, private)),
                "age {age} private {private}"
            );
            assert_eq!(r.body, e.body);
        }
        // The second plain request of this second was answered with the shared head.
        let key = ready::Key {
            date_secs: ringcast_server::coarse_unix_secs(),
            meta: object_meta(&e, len, CacheStatus::Hit, 0, false),
        };
        let _ = respond_from_as(&req(""), &e, BodySource::Memory, CacheStatus::Hit, 0, false);
        assert!(ready::get(&key).is_some());
    }

    #[test]
    fn hot_parts_from_a_memfd_share_the_ready_head_and_keep_their_file_body() {
        let e = seg();
        let len = e.body.len() as u64;
        let file = Arc::new(crate::tiers::mem_file::sealed(c"part", &e.body).expect("memfd"));
        let from_file = |extra: &str| {
            respond_from_as(
                &req(extra),
                &e,
                BodySource::MemFile(Arc::clone(&file)),
                CacheStatus::Hit,
                3,
                false,
            )
        };
        let planned = {
            let meta = object_meta(&e, len, CacheStatus::Hit, 3, false);
            respond_planned(&req(""), &e, BodySource::Memory, &meta)
        };
        for _ in 0..3 {
            let r = from_file("");
            assert_eq!(r.status, 200);
            assert_eq!(undated(&r), undated(&planned), "the head of the whole body");
            let f = r.wire_file().expect("sent from the memfd");
            assert_eq!((f.offset, f.len), (0, len));
            assert!(Arc::ptr_eq(&f.file, &file));
            assert!(r.wire_body().is_empty());
        }
        let key = ready::Key {
            date_secs: ringcast_server::coarse_unix_secs(),
            meta: object_meta(&e, len, CacheStatus::Hit, 3, false),
        };
        assert!(ready::get(&key).is_some(), "kept for the next viewer");
        // A memory-tier answer of the same object gets the same head with its bytes.
        let r = respond_from_as(&req(""), &e, BodySource::Memory, CacheStatus::Hit, 3, false);
        assert_eq!(undated(&r), undated(&planned));
        assert_eq!(r.body, e.body);
        assert!(r.wire_file().is_none());
        // A range still gets its own head and its span of the file.
        let r = from_file("Range: bytes=10-19\r\n");
        assert_eq!(r.status, 206);
        let f = r.wire_file().expect("span of the memfd");
        assert_eq!((f.offset, f.len), (10, 10));
        assert!(head(&r).contains("Content-Range: bytes 10-19/100\r\n"));
    }

    #[test]
    fn ready_made_heads_never_answer_ranges_conditions_or_gzip() {
        let e = seg();
        let etag = e.etag.header();
        for _ in 0..2 {
            assert_eq!(get(&e, "").status, 200);
            assert_eq!(get(&e, "Range: bytes=10-19\r\n").status, 206);
            assert_eq!(get(&e, &format!("If-None-Match: {etag}\r\n")).status, 304);
            assert_eq!(get(&e, "If-Match: \"zz\"\r\n").status, 412);
            assert_eq!(get(&e, "Range: bytes=500-\r\n").status, 416);
        }
        let p = playlist();
        for _ in 0..2 {
            assert!(!head(&get(&p, "")).contains("Content-Encoding"));
            let gz = get(&p, "Accept-Encoding: gzip\r\n");
            assert!(head(&gz).contains("Content-Encoding: gzip\r\n"));
            assert_eq!(gz.body, p.gzip.clone().expect("gz"));
        }
    }

    proptest::proptest! {
        #[test]
        fn partial_bodies_match_their_content_range(a in 0u64..300, b in 0u64..300, suffix in proptest::bool::ANY, len in 0usize..200) {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let e = Entry::object("v/a/1/720p/s.m4s", Bytes::from(body.clone()), Instant::now(), Duration::from_secs(1));
            let h = if suffix { format!("Range: bytes=-{a}\r\n") } else { format!("Range: bytes={a}-{b}\r\n") };
            let r = get(&e, &h);
            let text = head(&r);
            match r.status {
                206 => {
                    let cr = text.lines().find_map(|l| l.strip_prefix("Content-Range: bytes ")).expect("content-range");
                    let (span, total) = cr.split_once('/').expect("/");
                    let (s0, s1) = span.split_once('-').expect("-");
                    let (s0, s1): (usize, usize) = (s0.parse().expect("n"), s1.parse().expect("n"));
                    proptest::prop_assert_eq!(total.parse::<usize>().ok(), Some(len));
                    proptest::prop_assert_eq!(&r.body[..], &body[s0..=s1]);
                }
                200 => proptest::prop_assert_eq!(&r.body[..], &body[..]),
                416 => {
                    let want = format!("Content-Range: bytes */{len}\r\n");
                    proptest::prop_assert!(text.contains(&want));
                }
                other => proptest::prop_assert!(false, "status {}", other),
            }
        }
    }
}
