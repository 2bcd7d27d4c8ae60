//! Rewriting heads on their way through the front door (RFC 9110 §7.6).
//!
//! Requests: hop-by-hop fields (`Connection`, the fields it names, `Keep-Alive`,
//! `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) and both framing fields
//! are dropped; the front door frames the body itself with exactly one of `Content-Length` or
//! `Transfer-Encoding: chunked` (the shell already refused requests carrying both), so a
//! request is never forwarded with framing the ingest could read differently (smuggling).
//! `X-Forwarded-For` and `Forwarded` are replaced by what the front door saw: the client's own
//! claims are not passed on as if they were checked. Everything else (`Authorization`, `Host`,
//! `Upload-*`, `Tus-*`, `Expect`, `Content-Type`…) passes intact.
//!
//! Responses: the same hop-by-hop fields go; `Content-Length` goes unless the response has no
//! body of its own (HEAD, 204, 304: it then describes the representation and passes); the
//! front door adds its own framing. `Location`, `Upload-*`, `Tus-*`, `Ringcast-*`, CORS and the
//! rest pass intact.

use std::net::IpAddr;

/// Hop-by-hop fields and framing fields no message carries across the front door.
const DROPPED: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The fields `Connection` names (lower-cased): hop-by-hop too.
fn named_by_connection<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_dropped(name: &str, named: &[String]) -> bool {
    DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d))
        || named.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// How the forwarded request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no `Content-Length` field (a GET).
    NoBody,
    /// `Content-Length: n` (also `0` when the client sent it).
    Length(u64),
    /// `Transfer-Encoding: chunked`, re-chunked by the front door.
    Chunked,
}

/// The head to send upstream: request line, the client's end-to-end fields, the front door's
/// framing, forwarding fields, and `Connection` (`keep_alive` false: `close`).
pub fn request_head(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    framing: RequestFraming,
    client: Option<IpAddr>,
    keep_alive: bool,
) -> Vec<u8> {
    let named = named_by_connection(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut host = None;
    for (name, value) in headers {
        if is_dropped(name, &named)
            || name.eq_ignore_ascii_case("x-forwarded-for")
            || name.eq_ignore_ascii_case("forwarded")
        {
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            host = Some(value.as_str());
        }
        push_field(&mut out, name, value.as_bytes());
    }
    match framing {
        RequestFraming::NoBody => {}
        RequestFraming::Length(n) => {
            push_field(&mut out, "content-length", n.to_string().as_bytes())
        }
        RequestFraming::Chunked => push_field(&mut out, "transfer-encoding", b"chunked"),
    }
    if let Some(ip) = client {
        push_field(&mut out, "x-forwarded-for", ip.to_string().as_bytes());
        let node = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        let mut fwd = format!("for={node};proto=http");
        if let Some(h) = host.filter(|h| is_token_safe(h)) {
            fwd.push_str(&format!(";host=\"{h}\""));
        }
        push_field(&mut out, "forwarded", fwd.as_bytes());
    }
    if !keep_alive {
        push_field(&mut out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A host value that can sit in a quoted string without escaping.
fn is_token_safe(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// How the relayed response's body is framed towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body follows (HEAD, 1xx, 204, 304): the upstream's `Content-Length` passes.
    NoBody,
    Length(u64),
    Chunked,
    /// No framing field: the body ends when the connection closes (HTTP/1.0 clients, which
    /// know no chunked coding, for a body of unknown length).
    UntilClose,
}

/// The head to send the client for an upstream response with `status` and `headers` (as the
/// upstream sent them). `close`: add `Connection: close`.
pub fn response_head(
    status: u16,
    headers: &[(String, Vec<u8>)],
    framing: ResponseFraming,
    close: bool,
) -> Vec<u8> {
    let named = named_by_connection(
        headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), std::str::from_utf8(v).ok()?))),
    );
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!("HTTP/1.1 {status} {}\r\n", crate::http::reason(status)).as_bytes(),
    );
    for (name, value) in headers {
        let keep_length =
            framing == ResponseFraming::NoBody && name.eq_ignore_ascii_case("content-length");
        if is_dropped(name, &named) && !keep_length {
            continue;
        }
        push_field(&mut out, name, value);
    }
    match framing {
        ResponseFraming::NoBody | ResponseFraming::UntilClose => {}
        ResponseFraming::Length(n) => {
            push_field(&mut out, "content-length", n.to_string().as_bytes())
        }
        ResponseFraming::Chunked => push_field(&mut out, "transfer-encoding", b"chunked"),
    }
    if close {
        push_field(&mut out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// One chunk of a chunked body (`data` must not be empty: that is the last chunk).
pub fn chunk_header(len: usize) -> Vec<u8> {
    format!("{len:x}\r\n").into_bytes()
}

/// The last chunk, without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, parse_response_head, BodyFraming, Limits};

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_lose_hop_by_hop_fields_and_get_one_framing() {
        let headers = h(&[
            ("host", "edge.example"),
            ("authorization", "Bearer k"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "drop me"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("transfer-encoding", "chunked"),
            ("upload-offset", "5"),
            ("tus-resumable", "1.0.0"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("expect", "100-continue"),
        ]);
        let ip = "10.1.2.3".parse().ok();
        let raw = request_head(
            "PATCH",
            "/files/a-1",
            &headers,
            RequestFraming::Chunked,
            ip,
            false,
        );
        let (head, used) = parse_request(&raw, &Limits::default())
            .expect("valid")
            .expect("complete");
        assert_eq!(used, raw.len());
        assert!(head.chunked);
        assert!(!head.keep_alive);
        assert_eq!(head.target, "/files/a-1");
        for kept in [
            "host",
            "authorization",
            "upload-offset",
            "tus-resumable",
            "expect",
        ] {
            assert!(head.header(kept).is_some(), "{kept} dropped");
        }
        for gone in ["x-secret", "keep-alive", "te", "upgrade"] {
            assert!(head.header(gone).is_none(), "{gone} passed");
        }
        assert_eq!(head.header("x-forwarded-for"), Some("10.1.2.3"));
        assert_eq!(
            head.header("forwarded"),
            Some("for=10.1.2.3;proto=http;host=\"edge.example\"")
        );
        let te = head
            .headers
            .iter()
            .filter(|(n, _)| n == "transfer-encoding")
            .count();
        assert_eq!(te, 1);

        let raw = request_head(
            "POST",
            "/files/",
            &h(&[("host", "x"), ("content-length", "12")]),
            RequestFraming::Length(12),
            "::1".parse().ok(),
            true,
        );
        let (head, _) = parse_request(&raw, &Limits::default())
            .expect("valid")
            .expect("complete");
        assert_eq!(head.content_length, Some(12));
        assert!(head.keep_alive);
        assert_eq!(
            head.header("forwarded"),
            Some("for=\"[::1]\";proto=http;host=\"x\"")
        );
        let raw = request_head(
            "GET",
            "/v1/x",
            &h(&[("host", "x")]),
            RequestFraming::NoBody,
            None,
            true,
        );
        let text = String::from_utf8(raw).expect("utf8");
        assert!(!text.contains("content-length"), "{text}");
        assert!(!text.contains("forwarded"), "{text}");
    }

    #[test]
    fn responses_keep_end_to_end_fields_and_reframe() {
        let upstream: Vec<(String, Vec<u8>)> = [
            ("Location", "/files/a-1"),
            ("Upload-Offset", "0"),
            ("Tus-Resumable", "1.0.0"),
            ("Ringcast-Video-Id", "a-1"),
            ("Content-Length", "0"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
        let raw = response_head(201, &upstream, ResponseFraming::Length(0), false);
        let mut seen = Vec::new();
        let parsed = parse_response_head(&raw, false, |n, v| {
            seen.push((n.to_string(), String::from_utf8_lossy(v).into_owned()))
        })
        .expect("valid")
        .expect("complete");
        assert_eq!(parsed.status, 201);
        assert_eq!(parsed.framing, BodyFraming::Length(0));
        assert!(parsed.keep_alive);
        for n in [
            "Location",
            "Upload-Offset",
            "Tus-Resumable",
            "Ringcast-Video-Id",
        ] {
            assert!(seen.iter().any(|(k, _)| k == n), "{n} dropped");
        }
        assert_eq!(
            seen.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .count(),
            1
        );
        assert!(!seen
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")));
        // A HEAD answer keeps the representation's length.
        let head = vec![("Content-Length".to_string(), b"999".to_vec())];
        let raw = response_head(200, &head, ResponseFraming::NoBody, true);
        let text = String::from_utf8(raw).expect("utf8");
        assert!(text.contains("Content-Length: 999\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
    }
}
