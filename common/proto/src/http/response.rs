//! Response heads (RFC 9112 §4) written into a byte buffer, and the JSON error body shape every
//! service uses: `{"error": {"code": "...", "message": "..."}}`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

/// Reason phrase for the statuses the servers send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        460 => "Checksum Mismatch",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// A header value: a constant, a string made for this response, or a string shared by many
/// responses (the `Date` of the current second, the validators of a hot object), whose clone is
/// a reference count instead of an allocation.
#[derive(Debug, Clone)]
pub enum HeaderValue {
    Static(&'static str),
    Owned(String),
    Shared(Arc<str>),
}

impl HeaderValue {
    pub fn as_str(&self) -> &str {
        match self {
            HeaderValue::Static(s) => s,
            HeaderValue::Owned(s) => s,
            HeaderValue::Shared(s) => s,
        }
    }
}

impl From<&'static str> for HeaderValue {
    fn from(s: &'static str) -> Self {
        HeaderValue::Static(s)
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::Owned(s)
    }
}

impl From<Cow<'static, str>> for HeaderValue {
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => HeaderValue::Static(s),
            Cow::Owned(s) => HeaderValue::Owned(s),
        }
    }
}

impl From<Arc<str>> for HeaderValue {
    fn from(s: Arc<str>) -> Self {
        HeaderValue::Shared(s)
    }
}

type Fields = Vec<(&'static str, HeaderValue)>;

/// Emptied field lists a thread keeps for its next heads, and how many. A worker answering an
/// LL-HLS herd builds and drops hundreds of heads in one burst, which overflowed the
/// allocator's per-thread cache and sent every list through its slow paths.
const SPARE_FIELDS: usize = 256;
/// Capacity of a new field list: an object response carries 9–11 headers, no regrowth.
const FIELDS_CAPACITY: usize = 12;

thread_local! {
    static SPARE: RefCell<Vec<Fields>> = const { RefCell::new(Vec::new()) };
}

/// A response head under construction.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    /// Values borrow when they are constants (most are), so building a head allocates only
    /// for the values computed per response.
    headers: Fields,
}

impl Drop for ResponseHead {
    fn drop(&mut self) {
        let mut fields = std::mem::take(&mut self.headers);
        if fields.capacity() != FIELDS_CAPACITY {
            return;
        }
        fields.clear();
        // `try_with`: a head dropped while the thread exits has no spare list to go back to.
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_FIELDS {
                spare.push(fields);
            }
        });
    }
}

impl ResponseHead {
    pub fn new(status: u16) -> Self {
        let headers = SPARE
            .try_with(|spare| spare.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(FIELDS_CAPACITY));
        Self { status, headers }
    }

    /// Add a header. Values come from the server, never echoed unchecked from input; CR/LF are
    /// stripped anyway so a value can never split the head.
    pub fn header(mut self, name: &'static str, value: impl Into<HeaderValue>) -> Self {
        let mut v: HeaderValue = value.into();
        // Byte scan: `str::contains` with a char set was ≈1 % of an edge worker on 1 KiB hits.
        if v.as_str().bytes().any(|b| b == b'\r' || b == b'\n') {
            let mut owned = v.as_str().to_owned();
            owned.retain(|c| c != '\r' && c != '\n');
            v = HeaderValue::Owned(owned);
        }
        self.headers.push((name, v));
        self
    }

    /// First value of a header set on this head (name compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header fields set on this head, in order (for protocols that do not take an
    /// HTTP/1.1 head, such as HTTP/2).
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.headers.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// [`ResponseHead::fields`] with each value as set: a constant ([`HeaderValue::Static`],
    /// which an HTTP/2 head can reference without a copy) or computed for this response.
    pub fn fields_as_set(&self) -> impl Iterator<Item = (&'static str, &HeaderValue)> + '_ {
        self.headers.iter().map(|(n, v)| (*n, v))
    }

    /// Write `HTTP/1.1 {status}` + headers + `Content-Length` (when given) + `Connection: close`
    /// when not keeping the connection alive, then the blank line.
    pub fn write(&self, out: &mut Vec<u8>, content_length: Option<u64>, keep_alive: bool) {
        self.write_with(out, &[], content_length, keep_alive);
    }

    /// [`ResponseHead::write`] with `extra` headers (constants of the server, e.g. CORS) after
    /// this head's own.
    pub fn write_with(
        &self,
        out: &mut Vec<u8>,
        extra: &[(&str, &str)],
        content_length: Option<u64>,
        keep_alive: bool,
    ) {
        // Straight into the output buffer: no intermediate String per response.
        out.reserve(128 + (self.headers.len() + extra.len()) * 40);
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        let extra = extra.iter().map(|(n, v)| (*n, *v));
        for (n, v) in self
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(extra)
        {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(len) = content_length {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Append `n` in decimal (the head's numbers, without `fmt`'s machinery per response).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The JSON error body: `{"error":{"code":"not_found","message":"..."}}`.
pub fn error_body(code: &str, message: &str) -> String {
    let v = serde_json::json!({ "error": { "code": code, "message": message } });
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_head() {
        let mut out = Vec::new();
        ResponseHead::new(404)
            .header("Content-Type", "application/json")
            .header("X-Evil", "a\r\nSet-Cookie: x")
            .write(&mut out, Some(3), false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nX-Evil: aSet-Cookie: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 100, 1024, 2_097_152, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn error_body_is_json() {
        let v: serde_json::Value =
            serde_json::from_str(&error_body("bad", "a \"quoted\" thing")).unwrap();
        assert_eq!(v["error"]["code"], "bad");
        assert_eq!(v["error"]["message"], "a \"quoted\" thing");
    }
}
