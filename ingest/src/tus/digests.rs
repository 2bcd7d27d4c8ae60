//! The digests a PATCH's bytes feed while they are spooled: the source's sha256 (duplicate
//! detection, [`crate::tus::dedup`]) and, with `Upload-Checksum`, the chunk's digest
//! ([`crate::tus::checksum`]). SHA-256 is the upload path's main CPU cost (≈1.5–2 GB/s per core
//! even with SHA-NI), so the spool writer hands each full 1 MiB buffer to another thread
//! ([`hash_elsewhere`]) while the worker reads the next one from the socket: the worker's core
//! only receives and copies. The digests stay exact: one job at a time per upload, in file
//! order, and an offset is only acknowledged once the digests have consumed every byte it
//! covers ([`crate::tus::spool_writer::SpoolWriter::catch_up_digests`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::tus::checksum::ChunkDigest;

/// What one PATCH's bytes are fed to, in order.
pub struct Digests {
    /// The whole source's sha256 so far (continued across PATCHes).
    pub source: Sha256,
    /// The `Upload-Checksum` digest of this PATCH's body, when the client sent one.
    pub chunk: Option<ChunkDigest>,
}

impl Digests {
    pub fn update(&mut self, bytes: &[u8]) {
        self.source.update(bytes);
        if let Some(c) = self.chunk.as_mut() {
            c.update(bytes);
        }
    }
}

/// A hash job running on another thread; yields the digests back.
pub type HashJob = Pin<Box<dyn Future<Output = io::Result<Digests>>>>;

/// Feed `buf[from..]` to `digests` on the side runtime's blocking pool (another core when one
/// is free) and hand the digests back. The job starts now, not when the result is awaited. The
/// buffer is shared, not copied: the spool's O_DIRECT write reads the same bytes meanwhile.
pub fn hash_elsewhere<B>(mut digests: Digests, buf: Arc<B>, from: usize) -> HashJob
where
    B: AsRef<[u8]> + Send + Sync + 'static,
{
    let job = ringcast_infra::side_runtime::handle().spawn_blocking(move || {
        let bytes = (*buf).as_ref();
        digests.update(&bytes[from.min(bytes.len())..]);
        // `buf` is dropped here, before the result is handed back: the owner can reclaim it.
        drop(buf);
        digests
    });
    Box::pin(async move { job.await.map_err(io::Error::other) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tus::test_runtime::block_on;
    use ringcast_proto::tus::checksum::ChecksumAlgorithm;

    #[test]
    fn hashing_elsewhere_gives_the_digest_of_the_bytes_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut whole = Sha256::new();
        whole.update(&data);
        let expected = hex::encode(whole.finalize());
        let d = Digests {
            source: Sha256::new(),
            chunk: Some(ChunkDigest::new(ChecksumAlgorithm::Sha256)),
        };
        let d = block_on(async move {
            let mut d = d;
            // The first 10 bytes were fed already (as the head of a buffer after a
            // checkpoint): the first piece is hashed from 10 on.
            d.update(&data[..10]);
            for (start, end, from) in [(0, 1_000_000, 10), (1_000_000, 2_500_000, 0)] {
                let piece = Arc::new(data[start..end].to_vec());
                d = hash_elsewhere(d, piece, from).await.expect("hashed");
            }
            d.update(&data[2_500_000..]);
            d
        });
        let Some(ChunkDigest::Sha256(chunk)) = d.chunk else {
            panic!("the chunk digest is kept")
        };
        assert_eq!(hex::encode(chunk.finalize()), expected);
        assert_eq!(hex::encode(d.source.finalize()), expected);
    }
}
