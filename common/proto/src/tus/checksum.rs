//! tus Checksum extension: the `Upload-Checksum` header of a PATCH (`{algorithm} {base64
//! digest}`) and the algorithms the server advertises in `Tus-Checksum-Algorithm`.
//!
//! The digests themselves are computed by the server while it writes the chunk; this module
//! only says what the client claimed and whether a computed digest matches it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::TusError;

/// `Tus-Checksum-Algorithm`: every algorithm the server verifies.
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256,md5";

/// A checksum algorithm of [`CHECKSUM_ALGORITHMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
    Md5,
}

impl ChecksumAlgorithm {
    /// The name as written in the headers (lower case, as the tus spec lists them).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Md5 => "md5",
        }
    }

    /// Digest size in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Md5 => 16,
        }
    }

    /// Algorithm names are matched case-insensitively (clients write `SHA1` as well).
    fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Md5]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

/// The digest a client announced for its PATCH body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

/// `Upload-Checksum`: absent → `None`; an algorithm we do not support → 400 (the spec's
/// answer); a malformed value or a digest of the wrong size → 400.
pub fn parse_checksum(v: Option<&str>) -> Result<Option<ExpectedChecksum>, TusError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let (name, b64) = v
        .split_once(' ')
        .ok_or_else(|| TusError::BadChecksum("expected \"{algorithm} {base64 digest}\"".into()))?;
    let algorithm = ChecksumAlgorithm::from_name(name)
        .ok_or_else(|| TusError::UnsupportedChecksum(name.to_string()))?;
    let digest = STANDARD
        .decode(b64)
        .map_err(|e| TusError::BadChecksum(format!("digest is not base64: {e}")))?;
    if digest.len() != algorithm.digest_len() {
        return Err(TusError::BadChecksum(format!(
            "a {} digest has {} bytes, not {}",
            algorithm.name(),
            algorithm.digest_len(),
            digest.len()
        )));
    }
    Ok(Some(ExpectedChecksum { algorithm, digest }))
}

/// 460 Checksum Mismatch unless `computed` is the announced digest.
pub fn verify(expected: &ExpectedChecksum, computed: &[u8]) -> Result<(), TusError> {
    if expected.digest == computed {
        Ok(())
    } else {
        Err(TusError::ChecksumMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_advertised_algorithms() {
        // sha1("hello") = aaf4c61d..., base64 qvTGHdzF6KLavt4PO0gs2a6pQ00=
        let c = parse_checksum(Some("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00="))
            .unwrap()
            .unwrap();
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(
            hex::encode(&c.digest),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        let c = parse_checksum(Some("MD5 XUFAKrxLKna5cZ2REBfFkg=="))
            .unwrap()
            .unwrap();
        assert_eq!(c.algorithm, ChecksumAlgorithm::Md5);
        let sha256 = STANDARD.encode([7u8; 32]);
        let c = parse_checksum(Some(&format!("sha256 {sha256}")))
            .unwrap()
            .unwrap();
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha256);
        assert_eq!(parse_checksum(None), Ok(None));
        for name in CHECKSUM_ALGORITHMS.split(',') {
            assert!(ChecksumAlgorithm::from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn refuses_unknown_and_malformed() {
        let e = parse_checksum(Some("crc32 AAAAAA==")).unwrap_err();
        assert_eq!(e, TusError::UnsupportedChecksum("crc32".into()));
        assert_eq!(e.status(), 400);
        for bad in [
            "",
            "sha1",
            "sha1 !!!",
            "sha1 AAAA",                          // 3 bytes, not 20
            "sha1  qvTGHdzF6KLavt4PO0gs2a6pQ00=", // two spaces
        ] {
            let e = parse_checksum(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn mismatch_is_460() {
        let c = parse_checksum(Some("md5 XUFAKrxLKna5cZ2REBfFkg=="))
            .unwrap()
            .unwrap();
        assert_eq!(verify(&c, &c.digest.clone()), Ok(()));
        let e = verify(&c, &[0; 16]).unwrap_err();
        assert_eq!(e, TusError::ChecksumMismatch);
        assert_eq!(e.status(), 460);
    }
}
