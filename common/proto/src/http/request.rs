//! Request-head parsing with limits (RFC 9112 §2–§6). Built on httparse for the byte-level work;
//! this layer adds the limits, framing decisions (Content-Length vs chunked, RFC 9112 §6.3) and
//! keep-alive rules, and maps each failure to a status code.

use std::mem::MaybeUninit;

/// Methods the servers know; anything else is [`Method::Other`] (answered 501 or 405).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other(String),
}

impl Method {
    fn parse(s: &str) -> Self {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

/// Parse limits. Defaults follow common servers (nginx: 8 KiB header buffers).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request target (path + query) before 414.
    pub max_target_len: usize,
    /// Largest whole head (request line + headers) before 431.
    pub max_head_len: usize,
    /// Most header fields before 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_target_len: 4096,
            max_head_len: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Why a request head was rejected; [`HttpError::status`] is what the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request target longer than {0} bytes")]
    UriTooLong(usize),
    #[error("request header section too large")]
    HeadersTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("HTTP version not supported")]
    Version,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::BadContentLength => 400,
            HttpError::UriTooLong(_) => 414,
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::Version => 505,
            HttpError::BadTransferEncoding => 501,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The raw request target, e.g. `/v/a/master.m3u8?x=1`.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Whether the connection stays open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// Body framing: the declared length (`None` with `chunked`, or `Some(0)` without a body).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` body.
    pub chunked: bool,
}

impl RequestHead {
    /// A head with nothing in it, to be filled by [`parse_request_into`].
    pub fn empty() -> Self {
        Self {
            method: Method::Get,
            target: String::new(),
            version_minor: 1,
            headers: Vec::new(),
            keep_alive: true,
            content_length: Some(0),
            chunked: false,
        }
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Length of the body to read: Content-Length, 0 without one (chunked is handled apart).
    pub fn body_len(&self) -> u64 {
        self.content_length.unwrap_or(0)
    }
}

/// Header slots kept on the stack while parsing (larger limits use the heap).
const STACK_HEADERS: usize = 128;

/// Parse a request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more (an error is returned instead once the buffer exceeds the
/// limits). `Ok(Some((head, n)))`: the head used the first `n` bytes; the body follows.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let mut head = RequestHead::empty();
    Ok(parse_request_into(buf, limits, &mut head)?.map(|n| (head, n)))
}

/// [`parse_request`] into `head`, reusing its strings: a connection parses every request of
/// its life into one head, so a keep-alive request costs no allocation for its target and
/// header fields once the first ones made room (the heap traffic of a fresh head per request,
/// ≈ 2 + 2 × fields allocations and frees, showed in the edge's profile under an LL-HLS herd).
/// `Ok(Some(n))`: `head` holds the request, which used the first `n` bytes. `Ok(None)` (read
/// more) and errors leave `head` unspecified. The strings kept are bounded by the head limits.
pub fn parse_request_into(
    buf: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<Option<usize>, HttpError> {
    // Skip the empty lines RFC 9112 §2.2 allows before a request line (robustness).
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let buf = &buf[lead..];
    // The header slots live on the stack up to the usual limit: a heap array of 64 slots
    // (2 KiB) per request went through malloc's slow path (`malloc_consolidate`) and cost ≈2 %
    // of an edge worker's CPU on 1 KiB hits.
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut on_stack[..limits.max_headers]
    } else {
        on_heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut on_heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, slots) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HttpError::Version),
        Err(httparse::Error::Token) => return Err(HttpError::Malformed("invalid token")),
        Err(_) => return Err(HttpError::Malformed("invalid request syntax")),
    };
    let consumed = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
    };
    if consumed > limits.max_head_len {
        return Err(HttpError::HeadersTooLarge);
    }
    let method = Method::parse(req.method.ok_or(HttpError::Malformed("no method"))?);
    let target = req.path.ok_or(HttpError::Malformed("no target"))?;
    if target.len() > limits.max_target_len {
        return Err(HttpError::UriTooLong(limits.max_target_len));
    }
    let version_minor = req.version.ok_or(HttpError::Version)?;
    let headers = &mut head.headers;
    let mut n = 0;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Malformed("header value is not UTF-8"))?
            .trim();
        match headers.get_mut(n) {
            Some((name, v)) => {
                name.clear();
                name.push_str(h.name);
                name.make_ascii_lowercase();
                v.clear();
                v.push_str(value);
            }
            None => headers.push((h.name.to_ascii_lowercase(), value.to_string())),
        }
        n += 1;
    }
    headers.truncate(n);
    let headers = &*headers;
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (1.0
    // intermediaries do not know chunked, so they and this server would disagree on where the
    // body ends). Refuse it rather than guess.
    if version_minor == 0 && headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(HttpError::Malformed(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    let (content_length, chunked) = framing(headers)?;
    let connection = headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let keep_alive = if version_minor >= 1 {
        !connection.iter().any(|t| t == "close")
    } else {
        connection.iter().any(|t| t == "keep-alive")
    };
    if version_minor >= 1 && !headers.iter().any(|(n, _)| n == "host") {
        return Err(HttpError::Malformed("missing Host header"));
    }
    head.method = method;
    head.target.clear();
    head.target.push_str(target);
    head.version_minor = version_minor;
    head.keep_alive = keep_alive;
    head.content_length = content_length;
    head.chunked = chunked;
    Ok(Some(lead + consumed))
}

/// While a head is incomplete, decide early whether it can still fit the limits.
fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let line_end = buf.iter().position(|b| *b == b'\n');
    let line_len = line_end.unwrap_or(buf.len());
    // "METHOD SP target SP HTTP/1.1": allow 32 bytes of method/version around the target.
    if line_len > limits.max_target_len + 32 {
        return Err(HttpError::UriTooLong(limits.max_target_len));
    }
    if buf.len() > limits.max_head_len {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

/// Message body length rules (RFC 9112 §6.3): chunked wins only as the final coding; both
/// framing headers together, duplicate differing lengths or non-digits are rejected (request
/// smuggling defences).
fn framing(headers: &[(String, String)]) -> Result<(Option<u64>, bool), HttpError> {
    let te: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    let mut length: Option<u64> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::BadContentLength);
            }
            let n: u64 = part.parse().map_err(|_| HttpError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(n);
        }
    }
    if te.is_empty() {
        return Ok((Some(length.unwrap_or(0)), false));
    }
    if length.is_some() {
        return Err(HttpError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if te.len() == 1 && te[0].eq_ignore_ascii_case("chunked") {
        Ok((None, true))
    } else {
        Err(HttpError::BadTransferEncoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_request(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn one_head_reused_for_a_connection_holds_each_request_exactly() {
        let requests = [
            "GET /v/a/1/x?_HLS_msn=3 HTTP/1.1\r\nHost: a\r\nUser-Agent: p\r\nAccept: */*\r\nRange: bytes=0-1\r\n\r\n",
            "HEAD /b HTTP/1.1\r\nhost: b\r\n\r\n",
            "POST /purge HTTP/1.0\r\nHost: c\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
            "GET /a-much-longer-target/than/before HTTP/1.1\r\nHOST: d\r\nConnection: close\r\n\r\n",
        ];
        let mut head = RequestHead::empty();
        for raw in requests {
            let used = parse_request_into(raw.as_bytes(), &Limits::default(), &mut head)
                .expect("valid")
                .expect("complete");
            let (fresh, fresh_used) = parse(raw).expect("valid").expect("complete");
            assert_eq!(head, fresh, "{raw}");
            assert_eq!(used, fresh_used);
        }
        // An incomplete head asks for more; the next complete one still parses.
        assert_eq!(
            parse_request_into(b"GET / HTTP/1.1\r\nHost", &Limits::default(), &mut head),
            Ok(None)
        );
        let used = parse_request_into(requests[1].as_bytes(), &Limits::default(), &mut head);
        assert_eq!(used, Ok(Some(requests[1].len())));
        assert_eq!(head.headers, vec![("host".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn parses_a_get_with_query_and_headers() {
        let raw = "GET /v/a/master.m3u8?_HLS_msn=3 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\nrest";
        let (head, n) = parse(raw).expect("ok").expect("complete");
        assert_eq!(n, raw.len() - 4);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path(), "/v/a/master.m3u8");
        assert_eq!(head.query(), Some("_HLS_msn=3"));
        assert_eq!(head.header("accept-encoding"), Some("gzip"));
        assert_eq!(head.header("ACCEPT-ENCODING"), Some("gzip"));
        assert!(head.keep_alive);
        assert_eq!(head.content_length, Some(0));
    }

    #[test]
    fn the_header_limit_holds_on_the_stack_and_above_it() {
        let head = |n: usize| {
            let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
            for i in 1..n {
                raw += &format!("X-{i}: v\r\n");
            }
            raw + "\r\n"
        };
        for max in [1, 10, STACK_HEADERS, STACK_HEADERS + 1, 200] {
            let limits = Limits {
                max_headers: max,
                ..Limits::default()
            };
            let (h, _) = parse_request(head(max).as_bytes(), &limits)
                .expect("at the limit")
                .expect("complete");
            assert_eq!(h.headers.len(), max);
            assert_eq!(
                parse_request(head(max + 1).as_bytes(), &limits),
                Err(HttpError::TooManyHeaders),
                "max_headers {max}"
            );
        }
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse("GE"), Ok(None));
    }

    #[test]
    fn keep_alive_rules() {
        let (h, _) = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let (h, _) = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let (h, _) = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn limits_map_to_statuses() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(5000));
        assert_eq!(parse(&long).unwrap_err().status(), 414);
        let long_partial = format!("GET /{}", "a".repeat(5000));
        assert_eq!(parse(&long_partial).unwrap_err().status(), 414);
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(parse(&raw).unwrap_err().status(), 431);
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "b".repeat(17000));
        assert_eq!(parse(&big).unwrap_err().status(), 431);
        assert_eq!(parse("GET / HTTP/2.0\r\n\r\n").unwrap_err().status(), 505);
        assert_eq!(parse("G(T / HTTP/1.1\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(
            parse("GET / HTTP/1.1\r\n\r\n").unwrap_err().status(),
            400,
            "no Host"
        );
    }

    #[test]
    fn body_framing() {
        let (h, _) = parse("PATCH /f HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body_len(), 12);
        let (h, _) = parse("PUT /l HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.chunked);
        assert_eq!(h.content_length, None);
        for bad in ["-1", "1a", "", "1, 2", "99999999999999999999"] {
            let raw = format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(parse(&raw).unwrap_err().status(), 400, "{bad:?}");
        }
        let (h, _) = parse("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body_len(), 5);
        let both =
            "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(both).unwrap_err().status(), 400);
        for old in [
            "PUT /l HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT /l HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(parse(old), Err(HttpError::Malformed(_))),
                "{old:?}"
            );
        }
        let gz = "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(parse(gz).unwrap_err().status(), 501);
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let raw = "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (_, n) = parse(raw).unwrap().unwrap();
        assert_eq!(n, raw.len());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_request(&data, &Limits::default());
        }
    }
}
