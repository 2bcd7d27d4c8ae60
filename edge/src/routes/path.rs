//! Request path → object key, with the validation that keeps a viewer inside the `v/` namespace.
//!
//! The object store re-checks keys, but the edge must reject bad paths itself: a path that
//! normalises differently in a browser, a proxy, the edge cache and the origin is how cache
//! poisoning and traversal happen. So anything ambiguous is refused with 400 rather than
//! normalised: dot segments, empty segments (`//`), NUL, backslash, control characters, an encoded
//! `/` (it would change the segment structure after decoding), malformed escapes, non-UTF-8, and
//! paths over [`MAX_PATH_LEN`] bytes (the store's key limit).

/// Longest accepted request path in bytes (raw, before decoding); matches the store's key limit.
pub const MAX_PATH_LEN: usize = 1024;

/// Why a path was refused (every variant answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("empty path segment")]
    EmptySegment,
    #[error("'.' or '..' path segment")]
    DotSegment,
    #[error("NUL byte in path")]
    Nul,
    #[error("backslash in path")]
    Backslash,
    #[error("control character in path")]
    Control,
    #[error("percent-encoded '/' in path")]
    EncodedSlash,
    #[error("invalid percent-encoding")]
    BadEscape,
    #[error("path is not valid UTF-8")]
    NotUtf8,
}

/// The object key for a request path: `/v/a/1/seg1.m4s` → `v/a/1/seg1.m4s`.
///
/// `path` is the request target's path (no query), starting with `/`.
pub fn object_key(path: &str) -> Result<String, PathError> {
    object_key_of(path).map(std::borrow::Cow::into_owned)
}

/// [`object_key`] borrowed from `path` when it has no percent-escapes (every key a player asks
/// for): the request path checks it in place instead of copying it.
pub fn object_key_of(path: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    if !rest.as_bytes().contains(&b'%') {
        for b in rest.bytes() {
            check_byte(b)?;
        }
        check_segments(rest)?;
        return Ok(std::borrow::Cow::Borrowed(rest));
    }
    let raw = rest.as_bytes();
    let mut key = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hi = raw.get(i + 1).and_then(|c| hex(*c));
            let lo = raw.get(i + 2).and_then(|c| hex(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let decoded = (hi << 4) | lo;
            if decoded == b'/' {
                return Err(PathError::EncodedSlash);
            }
            check_byte(decoded)?;
            key.push(decoded);
            i += 3;
        } else {
            check_byte(b)?;
            key.push(b);
            i += 1;
        }
    }
    let key = String::from_utf8(key).map_err(|_| PathError::NotUtf8)?;
    check_segments(&key)?;
    Ok(std::borrow::Cow::Owned(key))
}

/// No empty, `.` or `..` segment.
fn check_segments(key: &str) -> Result<(), PathError> {
    for segment in key.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

fn check_byte(b: u8) -> Result<(), PathError> {
    match b {
        0 => Err(PathError::Nul),
        b'\\' => Err(PathError::Backslash),
        0x01..=0x1f | 0x7f => Err(PathError::Control),
        _ => Ok(()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_object_paths() {
        let ok = [
            ("/v/a/master.m3u8", "v/a/master.m3u8"),
            ("/v/a/1/720p/seg12.m4s", "v/a/1/720p/seg12.m4s"),
            ("/v/a/1/720p/part12.3.m4s", "v/a/1/720p/part12.3.m4s"),
            ("/v/a%20b/x", "v/a b/x"),
            ("/v/%41bc/x", "v/Abc/x"),
            ("/v/caf%C3%A9/x", "v/café/x"),
            ("/v/a/..x/.y/z..", "v/a/..x/.y/z.."),
        ];
        for (path, key) in ok {
            assert_eq!(object_key(path).as_deref(), Ok(key), "{path}");
        }
        assert!(matches!(
            object_key_of("/v/a/1/720p/part12.3.m4s"),
            Ok(std::borrow::Cow::Borrowed("v/a/1/720p/part12.3.m4s"))
        ));
    }

    #[test]
    fn rejects_traversal_and_ambiguity() {
        let bad = [
            ("/v/../etc/passwd", PathError::DotSegment),
            ("/v/a/..", PathError::DotSegment),
            ("/v/./a", PathError::DotSegment),
            ("/v/%2e%2e/x", PathError::DotSegment),
            ("/v/%2E%2E/x", PathError::DotSegment),
            ("/v/.%2e/x", PathError::DotSegment),
            ("/v/%2e/x", PathError::DotSegment),
            ("/v//a", PathError::EmptySegment),
            ("/v/a/", PathError::EmptySegment),
            ("/v/a\0b", PathError::Nul),
            ("/v/a%00b", PathError::Nul),
            ("/v/a\\b", PathError::Backslash),
            ("/v/a%5cb", PathError::Backslash),
            ("/v/a%5C..%5Cb", PathError::Backslash),
            ("/v/a%2fb", PathError::EncodedSlash),
            ("/v/a%2F..%2Fb", PathError::EncodedSlash),
            ("/v/a%0ab", PathError::Control),
            ("/v/a%7fb", PathError::Control),
            ("/v/a%", PathError::BadEscape),
            ("/v/a%2", PathError::BadEscape),
            ("/v/a%zz", PathError::BadEscape),
            ("/v/a%ff", PathError::NotUtf8),
        ];
        for (path, err) in bad {
            assert_eq!(object_key(path), Err(err), "{path:?}");
        }
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("/v/{}", "a".repeat(MAX_PATH_LEN - 3));
        assert_eq!(at_limit.len(), MAX_PATH_LEN);
        assert!(object_key(&at_limit).is_ok());
        let over = format!("/v/{}", "a".repeat(MAX_PATH_LEN - 2));
        assert_eq!(object_key(&over), Err(PathError::TooLong));
    }

    #[test]
    fn accepted_keys_pass_the_store_check() {
        // Whatever the edge accepts, the store must accept too (otherwise a 400 would surface as
        // a 502 from the origin).
        for path in ["/v/a/b", "/v/a%20b/c.m4s", "/v/x/1/720p/index.m3u8"] {
            let key = object_key(path).expect("valid");
            assert!(ringcast_infra::store::validate_key(&key).is_ok(), "{key}");
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap exhaustive-ish sweep over short paths of interesting bytes.
        let alphabet = [
            "/", ".", "%", "2", "e", "f", "0", "\\", "a", "%2e", "%00", "\u{e9}",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let _ = object_key(&format!("/v/{a}{b}{c}"));
                }
            }
        }
    }
}
