//! tus Checksum extension, server side: the digest of one PATCH body, computed from the buffers
//! as they are written to the spool (never by reading the file back), and compared with the
//! client's `Upload-Checksum` ([`ringcast_proto::tus::checksum`]) before the chunk's offset is
//! recorded. A mismatch discards the chunk: the offset stays where it was, the bytes written past
//! it are cut off again, and the source's sha256 goes back to its state before the chunk.

use md5::Md5;
use ringcast_proto::tus::checksum::{verify, ChecksumAlgorithm, ExpectedChecksum};
use ringcast_proto::tus::TusError;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// A running digest of the announced algorithm.
pub enum ChunkDigest {
    Sha1(Sha1),
    Sha256(Sha256),
    Md5(Md5),
}

impl ChunkDigest {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => ChunkDigest::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChunkDigest::Sha256(Sha256::new()),
            ChecksumAlgorithm::Md5 => ChunkDigest::Md5(Md5::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ChunkDigest::Sha1(h) => h.update(bytes),
            ChunkDigest::Sha256(h) => h.update(bytes),
            ChunkDigest::Md5(h) => h.update(bytes),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            ChunkDigest::Sha1(h) => h.finalize().to_vec(),
            ChunkDigest::Sha256(h) => h.finalize().to_vec(),
            ChunkDigest::Md5(h) => h.finalize().to_vec(),
        }
    }

    /// 460 unless the bytes fed in match `expected`.
    pub fn check(self, expected: &ExpectedChecksum) -> Result<(), TusError> {
        verify(expected, &self.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::tus::checksum::parse_checksum;

    #[test]
    fn each_algorithm_matches_its_reference_digest() {
        for header in [
            "sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            "md5 XUFAKrxLKna5cZ2REBfFkg==",
            "sha256 LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
        ] {
            let expected = parse_checksum(Some(header)).unwrap().unwrap();
            let mut d = ChunkDigest::new(expected.algorithm);
            d.update(b"hel");
            d.update(b"lo");
            assert_eq!(d.check(&expected), Ok(()), "{header}");
            let mut d = ChunkDigest::new(expected.algorithm);
            d.update(b"hellO");
            assert_eq!(d.check(&expected), Err(TusError::ChecksumMismatch));
        }
    }
}
