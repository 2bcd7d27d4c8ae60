//! Parsing the head of an HTTP/1.1 response, sans-IO: the status, the headers, and how the body
//! that follows is framed (RFC 9112 §6.3). The one parser of the edge's HTTP origin client, the
//! loadtest's player connections and the test client; each reads the body its own way (monoio
//! or blocking sockets), chunked bodies with [`crate::http::chunked::ChunkedDecoder`].
//!
//! Framing, in the RFC's order:
//! 1. a response to HEAD, any 1xx, 204 and 304 has no body, whatever its headers say;
//! 2. `Transfer-Encoding: chunked` wins over `Content-Length`. Any other transfer coding is an
//!    error: these clients ask for identity, and a body they cannot decode must not pass as one;
//! 3. `Content-Length`, all copies equal;
//! 4. otherwise the body runs until the server closes the connection.
//!
//! Malformed framing headers are errors even when the status has no body: a server that sends
//! them cannot be trusted to frame the next response either.

/// Headers accepted in one response head.
pub const MAX_RESPONSE_HEADERS: usize = 64;

/// How the end of a response body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, up to the zero-size chunk.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedResponse {
    pub status: u16,
    /// Bytes of the buffer the head took (the body starts there).
    pub head_len: usize,
    pub framing: BodyFraming,
    /// Whether the connection may carry another request afterwards (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a framed body).
    pub keep_alive: bool,
}

/// Why a response head cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseParseError {
    #[error("invalid response head: {0}")]
    Invalid(httparse::Error),
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
}

/// Parses the response head at the start of `buf`: `Ok(None)` until it is complete.
/// `head_request`: the request was HEAD (no body follows). `on_header` sees every header as sent
/// (clients that keep them collect them there; the others pass `|_, _| {}`).
pub fn parse_response_head(
    buf: &[u8],
    head_request: bool,
    mut on_header: impl FnMut(&str, &[u8]),
) -> Result<Option<ParsedResponse>, ResponseParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf).map_err(ResponseParseError::Invalid)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    // A complete head always has both.
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    let (mut close, mut keep_alive_token) = (false, false);
    for h in resp.headers.iter() {
        on_header(h.name, h.value);
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(ResponseParseError::UnsupportedTransferCoding);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value.trim_ascii())
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ResponseParseError::BadContentLength)?;
            if length.is_some_and(|l| l != v) {
                return Err(ResponseParseError::ConflictingContentLength);
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        BodyFraming::None
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(len) = length {
        BodyFraming::Length(len)
    } else {
        BodyFraming::UntilClose
    };
    let keep_alive = framing != BodyFraming::UntilClose && !close && (!http10 || keep_alive_token);
    Ok(Some(ParsedResponse {
        status,
        head_len,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(raw: &str) -> Result<Option<ParsedResponse>, ResponseParseError> {
        parse_response_head(raw.as_bytes(), false, |_, _| {})
    }

    fn framing(raw: &str) -> BodyFraming {
        parse(raw).expect("valid").expect("complete").framing
    }

    #[test]
    fn status_headers_and_head_length() {
        let raw = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nX-A:  b \r\n\r\nabc";
        let mut seen = Vec::new();
        let p = parse_response_head(raw.as_bytes(), false, |n, v| {
            seen.push((n.to_owned(), v.to_vec()));
        })
        .expect("valid")
        .expect("complete");
        assert_eq!(p.status, 404);
        assert_eq!(&raw[p.head_len..], "abc");
        assert_eq!(p.framing, BodyFraming::Length(3));
        assert!(p.keep_alive);
        assert_eq!(seen[1], ("X-A".to_owned(), b"b".to_vec()));
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert!(matches!(
            parse("HTTP/1.1 2000 OK\r\n\r\n"),
            Err(ResponseParseError::Invalid(_))
        ));
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            BodyFraming::Chunked
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), BodyFraming::UntilClose);
        for bodiless in [
            "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            assert_eq!(framing(bodiless), BodyFraming::None, "{bodiless:?}");
        }
        let head = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            true,
            |_, _| {},
        );
        assert_eq!(
            head.map(|p| p.map(|p| p.framing)),
            Ok(Some(BodyFraming::None))
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            BodyFraming::Length(3)
        );
        for (raw, err) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseParseError::ConflictingContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ResponseParseError::BadContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
                ResponseParseError::BadContentLength,
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
                ResponseParseError::BadContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                ResponseParseError::UnsupportedTransferCoding,
            ),
        ] {
            assert_eq!(parse(raw), Err(err), "{raw:?}");
        }
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let keep = |raw: &str| parse(raw).expect("valid").expect("complete").keep_alive;
        assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(keep(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"), "close-delimited");
    }

    proptest! {
        /// Any split of a valid head: incomplete prefixes are `None`, the whole is the same head.
        #[test]
        fn prefixes_are_incomplete_and_the_whole_parses(
            status in 200u16..600,
            len in proptest::option::of(0u64..1 << 40),
            chunked in any::<bool>(),
            close in any::<bool>(),
        ) {
            let mut raw = format!("HTTP/1.1 {status} X\r\n");
            if let Some(len) = len {
                raw.push_str(&format!("Content-Length: {len}\r\n"));
            }
            if chunked {
                raw.push_str("Transfer-Encoding: chunked\r\n");
            }
            if close {
                raw.push_str("Connection: close\r\n");
            }
            raw.push_str("\r\n");
            let whole = parse(&raw).expect("valid").expect("complete");
            prop_assert_eq!(whole.head_len, raw.len());
            prop_assert_eq!(whole.status, status);
            let expected = match (status, chunked, len) {
                (204 | 304, _, _) => BodyFraming::None,
                (_, true, _) => BodyFraming::Chunked,
                (_, false, Some(n)) => BodyFraming::Length(n),
                (_, false, None) => BodyFraming::UntilClose,
            };
            prop_assert_eq!(whole.framing, expected);
            prop_assert_eq!(whole.keep_alive, !close && expected != BodyFraming::UntilClose);
            for cut in 0..raw.len() {
                prop_assert_eq!(parse(&raw[..cut]), Ok(None));
            }
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_response_head(&bytes, false, |_, _| {});
        }
    }
}
