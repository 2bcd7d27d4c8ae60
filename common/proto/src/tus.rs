//! tus 1.0.0 resumable-upload header logic (<https://tus.io/protocols/resumable-upload>), sans-IO.
//!
//! Owns the parsing and validation of the protocol headers the ingest server reads —
//! `Tus-Resumable` (core protocol, "Headers"), `Upload-Offset`, `Upload-Length`,
//! `Content-Type: application/offset+octet-stream` of PATCH (core protocol, "PATCH"),
//! `Upload-Metadata` (Creation extension) — and the values it advertises (`Tus-Version`,
//! `Tus-Extension`). Every error maps to the HTTP status the protocol prescribes through
//! [`TusError::status`], so the server turns them into responses in one place.
//!
//! Header values arrive as `Option<&str>` (`None` = header absent); the HTTP layer has already
//! removed surrounding whitespace, so values here are matched exactly.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The only protocol version the server speaks (`Tus-Resumable`, `Tus-Version`).
pub const TUS_VERSION: &str = "1.0.0";

pub mod checksum;
pub mod concat;
pub mod expiry;

/// `Tus-Extension` the server advertises: exactly the extensions it implements (a client that
/// trusts the list sends requests that must then work). `concatenation-unfinished` is not
/// among them: a final upload may only name partial uploads that are complete.
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,\
termination,checksum,expiration,concatenation";

/// Media type every PATCH body must be sent with.
pub const PATCH_CONTENT_TYPE: &str = "application/offset+octet-stream";

/// A request the tus protocol says to refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TusError {
    /// No `Tus-Resumable` header on a request that needs one.
    #[error("missing Tus-Resumable header")]
    MissingResumable,
    /// `Tus-Resumable` names a version other than 1.0.0.
    #[error("unsupported tus version {0:?}; this server speaks {TUS_VERSION}")]
    UnsupportedVersion(String),
    /// No `Upload-Offset` header on a PATCH.
    #[error("missing Upload-Offset header")]
    MissingOffset,
    /// `Upload-Offset` is not a non-negative decimal integer.
    #[error("Upload-Offset must be a non-negative integer")]
    BadOffset,
    /// `Upload-Offset` does not match the bytes the server holds.
    #[error("Upload-Offset {got} does not match the current offset {expected}")]
    OffsetMismatch { expected: u64, got: u64 },
    /// No `Upload-Length` header on a creation request.
    #[error("missing Upload-Length header")]
    MissingLength,
    /// `Upload-Length` is not a non-negative decimal integer.
    #[error("Upload-Length must be a non-negative integer")]
    BadLength,
    /// `Upload-Length` above `Tus-Max-Size`.
    #[error("Upload-Length exceeds the maximum of {max} bytes")]
    LengthTooLarge { max: u64 },
    /// Malformed `Upload-Metadata`.
    #[error("invalid Upload-Metadata: {0}")]
    BadMetadata(String),
    /// PATCH without `Content-Type: application/offset+octet-stream`.
    #[error("PATCH requests must use Content-Type: {PATCH_CONTENT_TYPE}")]
    BadContentType,
    /// `Upload-Checksum` is not `{algorithm} {base64 digest}` of the right size.
    #[error("invalid Upload-Checksum: {0}")]
    BadChecksum(String),
    /// `Upload-Checksum` names an algorithm outside `Tus-Checksum-Algorithm`.
    #[error("checksum algorithm {0:?} is not supported (supported: sha1, sha256, md5)")]
    UnsupportedChecksum(String),
    /// The chunk's digest differs from `Upload-Checksum`; the chunk was discarded.
    #[error("the chunk does not match its Upload-Checksum; it was discarded")]
    ChecksumMismatch,
    /// Malformed or contradictory `Upload-Concat`.
    #[error("invalid Upload-Concat: {0}")]
    BadConcat(String),
    /// `Upload-Defer-Length` other than `1`, together with `Upload-Length`, or an
    /// `Upload-Length` on a PATCH that the upload did not defer.
    #[error("{0}")]
    BadDeferLength(String),
}

impl TusError {
    /// HTTP status the protocol prescribes for this error.
    pub fn status(&self) -> u16 {
        match self {
            // "If the version specified by the Client is not supported by the Server, it MUST
            // respond with the 412 Precondition Failed status"; a missing header is the same
            // failed precondition (tusd answers it the same way).
            TusError::MissingResumable | TusError::UnsupportedVersion(_) => 412,
            TusError::MissingOffset
            | TusError::BadOffset
            | TusError::MissingLength
            | TusError::BadLength
            | TusError::BadMetadata(_)
            | TusError::BadChecksum(_)
            | TusError::UnsupportedChecksum(_)
            | TusError::BadConcat(_)
            | TusError::BadDeferLength(_) => 400,
            // tus Checksum extension: "460 Checksum Mismatch".
            TusError::ChecksumMismatch => 460,
            TusError::OffsetMismatch { .. } => 409,
            TusError::LengthTooLarge { .. } => 413,
            TusError::BadContentType => 415,
        }
    }
}

/// `Tus-Resumable` must be present and exactly `1.0.0`.
pub fn check_resumable(header: Option<&str>) -> Result<(), TusError> {
    match header {
        None => Err(TusError::MissingResumable),
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(TusError::UnsupportedVersion(other.to_owned())),
    }
}

/// Strict non-negative decimal: ASCII digits only (no sign, space or `_`, which `u64::from_str`
/// would partly accept), no overflow.
fn parse_decimal(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `Upload-Offset` of a PATCH (or HEAD response parsing in tests/clients).
pub fn parse_offset(v: Option<&str>) -> Result<u64, TusError> {
    parse_decimal(v.ok_or(TusError::MissingOffset)?).ok_or(TusError::BadOffset)
}

/// The PATCH's `Upload-Offset` must equal the bytes already stored, else 409 Conflict.
pub fn check_offset(claimed: u64, current: u64) -> Result<(), TusError> {
    if claimed == current {
        Ok(())
    } else {
        Err(TusError::OffsetMismatch {
            expected: current,
            got: claimed,
        })
    }
}

/// `Upload-Length` of a creation request, at most `max` bytes (413 above).
pub fn parse_length(v: Option<&str>, max: u64) -> Result<u64, TusError> {
    let v = v.ok_or(TusError::MissingLength)?;
    // All digits but too big for u64 is still "too large", not malformed.
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && parse_decimal(v).is_none() {
        return Err(TusError::LengthTooLarge { max });
    }
    let len = parse_decimal(v).ok_or(TusError::BadLength)?;
    if len > max {
        return Err(TusError::LengthTooLarge { max });
    }
    Ok(len)
}

/// The length of a creation request: `Some(len)` from `Upload-Length`, `None` when the client
/// defers it (`Upload-Defer-Length: 1`, creation-defer-length extension; it then sends
/// `Upload-Length` with a later PATCH). Both or neither is a 400.
pub fn parse_creation_length(
    length: Option<&str>,
    defer: Option<&str>,
    max: u64,
) -> Result<Option<u64>, TusError> {
    match (length, defer) {
        (Some(_), Some(_)) => Err(TusError::BadDeferLength(
            "send either Upload-Length or Upload-Defer-Length, not both".into(),
        )),
        (None, Some("1")) => Ok(None),
        (None, Some(_)) => Err(TusError::BadDeferLength(
            "Upload-Defer-Length must be 1".into(),
        )),
        (length, None) => parse_length(length, max).map(Some),
    }
}

/// The `Upload-Length` a PATCH may carry: only for an upload whose length is still deferred
/// (`known` is `None`), at least what is already stored; or, for a known length, the same value
/// again (tus-js-client repeats it). `None` when the PATCH has none.
pub fn parse_patch_length(
    v: Option<&str>,
    known: Option<u64>,
    stored: u64,
    max: u64,
) -> Result<Option<u64>, TusError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let len = parse_length(Some(v), max)?;
    match known {
        Some(k) if k == len => Ok(Some(len)),
        Some(k) => Err(TusError::BadDeferLength(format!(
            "the upload's length is already {k}; it cannot change"
        ))),
        None if len < stored => Err(TusError::BadDeferLength(format!(
            "Upload-Length {len} is less than the {stored} bytes already stored"
        ))),
        None => Ok(Some(len)),
    }
}

/// `Upload-Metadata`: comma-separated pairs of a key and, after one space, an optional base64
/// value (standard alphabet, padded). Keys are non-empty, unique, printable ASCII without
/// spaces or commas. Values are returned as bytes: the protocol does not require UTF-8.
/// An absent or empty header is no metadata. Spaces around a pair are tolerated because some
/// clients join pairs with ", ".
pub fn parse_metadata(v: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, TusError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    if v.trim_matches(' ').is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for pair in v.split(',') {
        let pair = pair.trim_matches(' ');
        let (key, value) = match pair.split_once(' ') {
            Some((k, val)) => (k, Some(val)),
            None => (pair, None),
        };
        if key.is_empty() {
            return Err(TusError::BadMetadata("empty key".into()));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(TusError::BadMetadata(format!(
                "key {key:?} must be printable ASCII without spaces or commas"
            )));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(TusError::BadMetadata(format!("duplicate key {key:?}")));
        }
        let value = match value {
            None => Vec::new(),
            Some(b64) => STANDARD
                .decode(b64)
                .map_err(|e| TusError::BadMetadata(format!("value of {key:?}: {e}")))?,
        };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// Inverse of [`parse_metadata`]: `key base64` pairs joined by commas, a bare key for an empty
/// value. Keys must already satisfy the key rules (non-empty printable ASCII without spaces or
/// commas); they come from our own code, not from clients.
pub fn encode_metadata(pairs: &[(&str, &[u8])]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        if !value.is_empty() {
            out.push(' ');
            STANDARD.encode_string(value, &mut out);
        }
    }
    out
}

/// PATCH `Content-Type` must be `application/offset+octet-stream`. Media types compare
/// case-insensitively and may carry parameters (RFC 9110 §8.3.1), which are ignored.
pub fn check_patch_content_type(v: Option<&str>) -> Result<(), TusError> {
    let v = v.ok_or(TusError::BadContentType)?;
    let essence = v.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(PATCH_CONTENT_TYPE) {
        Ok(())
    } else {
        Err(TusError::BadContentType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resumable() {
        assert_eq!(check_resumable(Some("1.0.0")), Ok(()));
        assert_eq!(check_resumable(None), Err(TusError::MissingResumable));
        let e = check_resumable(Some("0.2.2")).unwrap_err();
        assert_eq!(e, TusError::UnsupportedVersion("0.2.2".into()));
        assert_eq!(e.status(), 412);
        assert_eq!(TusError::MissingResumable.status(), 412);
        assert!(check_resumable(Some("1.0.0 ")).is_err());
        assert!(check_resumable(Some("1.0")).is_err());
    }

    #[test]
    fn offset() {
        assert_eq!(parse_offset(Some("0")), Ok(0));
        assert_eq!(parse_offset(Some("70")), Ok(70));
        assert_eq!(parse_offset(Some("007")), Ok(7));
        assert_eq!(parse_offset(Some("18446744073709551615")), Ok(u64::MAX));
        assert_eq!(parse_offset(None), Err(TusError::MissingOffset));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "0x10",
            "1_000",
            "18446744073709551616",
        ] {
            assert_eq!(parse_offset(Some(bad)), Err(TusError::BadOffset), "{bad:?}");
        }
        assert_eq!(TusError::BadOffset.status(), 400);
        assert_eq!(check_offset(5, 5), Ok(()));
        let e = check_offset(4, 5).unwrap_err();
        assert_eq!(
            e,
            TusError::OffsetMismatch {
                expected: 5,
                got: 4
            }
        );
        assert_eq!(e.status(), 409);
    }

    #[test]
    fn length() {
        assert_eq!(parse_length(Some("100"), 100), Ok(100));
        assert_eq!(parse_length(Some("0"), 100), Ok(0));
        let e = parse_length(Some("101"), 100).unwrap_err();
        assert_eq!(e, TusError::LengthTooLarge { max: 100 });
        assert_eq!(e.status(), 413);
        assert_eq!(
            parse_length(Some("99999999999999999999999"), 100),
            Err(TusError::LengthTooLarge { max: 100 })
        );
        assert_eq!(parse_length(None, 100), Err(TusError::MissingLength));
        for bad in ["", "-5", "5 ", "abc", "1e3"] {
            assert_eq!(
                parse_length(Some(bad), 100),
                Err(TusError::BadLength),
                "{bad:?}"
            );
        }
        assert_eq!(TusError::BadLength.status(), 400);
    }

    #[test]
    fn metadata_spec_example() {
        let m = parse_metadata(Some(
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
        ))
        .unwrap();
        assert_eq!(
            m,
            vec![
                ("filename".to_owned(), b"world_domination_plan.pdf".to_vec()),
                ("is_confidential".to_owned(), Vec::new()),
            ]
        );
    }

    #[test]
    fn metadata_edge_cases() {
        assert_eq!(parse_metadata(None), Ok(vec![]));
        assert_eq!(parse_metadata(Some("")), Ok(vec![]));
        // Non-UTF-8 values are kept as bytes.
        assert_eq!(
            parse_metadata(Some("blob /w==")),
            Ok(vec![("blob".to_owned(), vec![0xff])])
        );
        // ", " separators from lenient clients.
        assert_eq!(parse_metadata(Some("a YQ==, b Yg==")).unwrap().len(), 2);
        for bad in [
            "a YQ==,a Yg==", // duplicate key
            "a YQ",          // unpadded
            "a Y-==",        // URL-safe alphabet
            "a  YQ==",       // two spaces: value starts with a space
            "a YQ==,",       // trailing empty pair
            ",a",            // leading empty pair
            "k\u{e9}y YQ==", // non-ASCII key
            "a\tb YQ==",     // control character in key
        ] {
            let e = parse_metadata(Some(bad)).unwrap_err();
            assert!(matches!(e, TusError::BadMetadata(_)), "{bad:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn metadata_encode() {
        assert_eq!(
            encode_metadata(&[
                ("filename", b"world_domination_plan.pdf"),
                ("is_confidential", b""),
            ]),
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential"
        );
        assert_eq!(encode_metadata(&[]), "");
    }

    #[test]
    fn patch_content_type() {
        assert_eq!(
            check_patch_content_type(Some("application/offset+octet-stream")),
            Ok(())
        );
        assert_eq!(
            check_patch_content_type(Some("Application/Offset+Octet-Stream")),
            Ok(())
        );
        assert_eq!(
            check_patch_content_type(Some("application/offset+octet-stream; charset=binary")),
            Ok(())
        );
        for bad in [
            None,
            Some(""),
            Some("application/octet-stream"),
            Some("text/plain"),
        ] {
            let e = check_patch_content_type(bad).unwrap_err();
            assert_eq!(e, TusError::BadContentType);
            assert_eq!(e.status(), 415);
        }
    }

    #[test]
    fn advertised_values() {
        assert_eq!(TUS_VERSION, "1.0.0");
        // Only what the server implements; see the const's doc.
        assert_eq!(
            TUS_EXTENSIONS,
            "creation,creation-with-upload,creation-defer-length,termination,checksum,\
             expiration,concatenation"
        );
    }

    #[test]
    fn defer_length() {
        assert_eq!(parse_creation_length(Some("5"), None, 10), Ok(Some(5)));
        assert_eq!(parse_creation_length(None, Some("1"), 10), Ok(None));
        assert_eq!(
            parse_creation_length(None, None, 10),
            Err(TusError::MissingLength)
        );
        for (l, d) in [
            (Some("5"), Some("1")),
            (None, Some("0")),
            (None, Some("true")),
        ] {
            let e = parse_creation_length(l, d, 10).unwrap_err();
            assert!(matches!(e, TusError::BadDeferLength(_)), "{l:?} {d:?}");
            assert_eq!(e.status(), 400);
        }
        assert_eq!(parse_patch_length(None, None, 0, 10), Ok(None));
        assert_eq!(parse_patch_length(Some("8"), None, 3, 10), Ok(Some(8)));
        assert_eq!(parse_patch_length(Some("8"), Some(8), 3, 10), Ok(Some(8)));
        assert!(matches!(
            parse_patch_length(Some("9"), Some(8), 3, 10),
            Err(TusError::BadDeferLength(_))
        ));
        assert!(matches!(
            parse_patch_length(Some("2"), None, 3, 10),
            Err(TusError::BadDeferLength(_))
        ));
        assert_eq!(
            parse_patch_length(Some("11"), None, 3, 10),
            Err(TusError::LengthTooLarge { max: 10 })
        );
    }

    proptest! {
        #[test]
        fn metadata_roundtrip(
            map in proptest::collection::btree_map(
                "[!-+\\--~]{1,16}",
                proptest::collection::vec(any::<u8>(), 0..64),
                0..8,
            )
        ) {
            let pairs: Vec<(&str, &[u8])> =
                map.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            let header = encode_metadata(&pairs);
            let parsed = parse_metadata(Some(&header)).unwrap();
            let expected: Vec<(String, Vec<u8>)> = map.into_iter().collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn parsers_never_panic(s in ".{0,64}") {
            let _ = parse_metadata(Some(&s));
            let _ = parse_offset(Some(&s));
            let _ = parse_length(Some(&s), 1 << 40);
            let _ = check_patch_content_type(Some(&s));
        }
    }
}
