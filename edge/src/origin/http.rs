//! A small monoio HTTP/1.1 client for a plain HTTP origin (`--origin-url http://host:port[/p]`).
//!
//! One connection per fetch (`Connection: close`): origin fetches are rare next to hits (every
//! object is fetched once, then cached), so a keep-alive pool would buy little and add state.
//!
//! Rules (RFC 9112 §6.3, message body length):
//! - `200` → the body; `404`/`410` → "no such object" (negative-cached by the edge);
//!   anything else (5xx, 3xx, other 4xx) → an error the client sees as 502.
//! - The body length comes from `Transfer-Encoding: chunked` (must end with the zero chunk) or
//!   `Content-Length` (all bytes must arrive). A connection that ends early is
//!   [`OriginError::Truncated`]: the edge never passes a short body on as a complete 200.
//!   Without either header the body runs to connection close (the only HTTP/1.1 way left).
//! - The caller bounds the whole fetch with `origin_timeout_ms` (504).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::{parse_response_head, BodyFraming, ResponseParseError};

/// Longest response head accepted from the origin.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted from the origin (a media segment is a few MB).
pub const MAX_BODY: u64 = 1 << 30;
const READ_CHUNK: usize = 64 * 1024;

/// Why an HTTP (or directory) origin fetch failed. All answer 502.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("origin I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("origin answered status {0}")]
    Status(u16),
    #[error("origin response malformed: {0}")]
    Malformed(&'static str),
    #[error("origin response head: {0}")]
    Head(#[from] ResponseParseError),
    #[error("origin body truncated: got {got} of {expected} bytes")]
    Truncated { got: u64, expected: String },
    #[error("origin body larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// A parsed `http://host:port[/prefix]` origin.
#[derive(Debug, Clone)]
pub struct HttpOrigin {
    addr: SocketAddr,
    /// `Host` header value.
    authority: String,
    /// Path prefix without a trailing `/` (may be empty).
    prefix: String,
    /// Extra request header lines (`Name: value\r\n`), e.g. the edge tier's secret.
    extra: String,
}

impl HttpOrigin {
    /// Parse and resolve the URL (once, at start-up).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("origin_url {url:?} must start with http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "origin_url {url:?} needs a host[:port] without userinfo"
            ));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "origin_url {url:?} may not have a query or fragment"
            ));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("origin_url {url:?}: cannot resolve {with_port}: {e}"))?
            .next()
            .ok_or_else(|| format!("origin_url {url:?}: {with_port} has no address"))?;
        Ok(Self {
            addr,
            authority: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
            extra: String::new(),
        })
    }

    /// Send `name: value` with every request. The value must not contain CR or LF (checked
    /// config values only).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        debug_assert!(!name.contains(['\r', '\n', ':']) && !value.contains(['\r', '\n']));
        self.extra.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    /// The request target for `key` (percent-encoded; keys are decoded paths).
    fn target(&self, key: &str) -> String {
        let mut t = String::with_capacity(self.prefix.len() + key.len() + 8);
        t.push_str(&self.prefix);
        t.push('/');
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
                t.push(b as char);
            } else {
                t.push_str(&format!("%{b:02X}"));
            }
        }
        t
    }

    /// GET the object: `Some(body)` on 200, `None` on 404/410.
    pub async fn fetch(&self, key: &str) -> Result<Option<Bytes>, OriginError> {
        let mut stream = TcpStream::connect_addr(self.addr).await?;
        let _ = stream.set_nodelay(true);
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringcast-edge\r\nAccept-Encoding: identity\r\n{}Connection: close\r\n\r\n",
            self.target(key),
            self.authority,
            self.extra
        );
        let (res, _) = stream.write_all(req.into_bytes()).await;
        res?;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        // Head.
        let head = loop {
            match parse_response_head(&buf, false, |_, _| {}) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if buf.len() > MAX_HEAD {
                        return Err(OriginError::Malformed("head too large"));
                    }
                    if read_more(&mut stream, &mut buf).await? == 0 {
                        return Err(OriginError::Malformed("connection closed in the head"));
                    }
                }
                Err(e) => return Err(OriginError::Head(e)),
            }
        };
        let status = head.status;
        if (100..200).contains(&status) {
            // An origin we send no Expect to has no reason for interim responses.
            return Err(OriginError::Malformed("unexpected interim response"));
        }
        match status {
            200 => {}
            404 | 410 => return Ok(None),
            s => return Err(OriginError::Status(s)),
        }
        buf.drain(..head.head_len);
        read_body(&mut stream, buf, head.framing).await.map(Some)
    }
}

/// Read the rest of the body (`buf` holds what came with the head).
async fn read_body(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    framing: BodyFraming,
) -> Result<Bytes, OriginError> {
    match framing {
        // 200 is the only status whose body is read, and it always has one.
        BodyFraming::None => Ok(Bytes::new()),
        BodyFraming::Length(len) => {
            if len > MAX_BODY {
                return Err(OriginError::TooLarge);
            }
            let len = len as usize;
            // Reserve up to a segment's size up front; a larger claim grows as bytes arrive, so a
            // lying Content-Length cannot make the edge allocate a gigabyte for nothing.
            buf.reserve(len.min(16 << 20).saturating_sub(buf.len()));
            while buf.len() < len {
                if read_more(stream, &mut buf).await? == 0 {
                    return Err(OriginError::Truncated {
                        got: buf.len() as u64,
                        expected: len.to_string(),
                    });
                }
            }
            // Bytes past the promised length are ignored (the connection is closed anyway).
            buf.truncate(len);
            Ok(Bytes::from(buf))
        }
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut body = Vec::new();
            let mut pending = buf;
            loop {
                let used = decoder
                    .decode(&pending, &mut body)
                    .map_err(|_| OriginError::Malformed("invalid chunked body"))?;
                pending.drain(..used);
                if decoder.is_done() {
                    return Ok(Bytes::from(body));
                }
                if body.len() as u64 > MAX_BODY {
                    return Err(OriginError::TooLarge);
                }
                if read_more(stream, &mut pending).await? == 0 {
                    return Err(OriginError::Truncated {
                        got: body.len() as u64,
                        expected: "the last chunk".to_string(),
                    });
                }
            }
        }
        BodyFraming::UntilClose => {
            while read_more(stream, &mut buf).await? > 0 {
                if buf.len() as u64 > MAX_BODY {
                    return Err(OriginError::TooLarge);
                }
            }
            Ok(Bytes::from(buf))
        }
    }
}

/// Append one read to `buf`; returns the bytes read (0 = closed).
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity());
    let (res, slice) = stream
        .read(monoio::buf::IoBufMut::slice_mut(owned, len..cap))
        .await;
    *buf = slice.into_inner();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let o = HttpOrigin::parse("http://127.0.0.1:9/media/").expect("parse");
        assert_eq!(o.addr, SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(o.authority, "127.0.0.1:9");
        assert_eq!(o.target("v/a b/1.m4s"), "/media/v/a%20b/1.m4s");
        let o = HttpOrigin::parse("http://127.0.0.1").expect("parse");
        assert_eq!(o.addr.port(), 80);
        assert_eq!(o.target("v/x"), "/v/x");
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://u@h:1",
            "http://h:1/p?q",
        ] {
            assert!(HttpOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
