//! The digests a PATCH's bytes feed while they are spooled: the source's sha256 (duplicate
//! detection, [`crate::tus::dedup`]) and, with `Upload-Checksum`, the chunk's digest
//! ([`crate::tus::checksum`]). SHA-256 is the upload path's main CPU cost (≈1.5–2 GB/s per core
//! even with SHA-NI), so the spool writer hands each full 1 MiB buffer to a thread of its own
//! ([`HashPipe`]) while the worker reads the next ones from the socket: the worker's core only
//! receives. Where that thread runs and at which priority: [`crate::tus::hash_placement`]. The digests stay exact: one thread per PATCH feeds them the pieces in
//! file order, and an offset is only acknowledged once the digests have consumed every byte it
//! covers ([`crate::tus::spool_writer::SpoolWriter::catch_up_digests`]).

use std::io;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::tus::checksum::ChunkDigest;
use crate::tus::hash_placement;

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

/// Bytes for the hash thread: `bytes[from..]`, and whom to tell once they are hashed.
struct Piece {
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    from: usize,
    done: oneshot::Sender<()>,
}

/// Completes once a fed piece is hashed and the hash thread let go of its buffer (an error:
/// the hash thread is gone, the digests with it).
pub type Hashed = oneshot::Receiver<()>;

/// A thread (from the side runtime's blocking pool) that owns the digests and feeds them the
/// pieces it is handed, in order, while the worker goes on receiving: no wait between two
/// pieces on either side, only when the worker needs a buffer back.
pub struct HashPipe {
    tx: mpsc::UnboundedSender<Piece>,
    thread: tokio::task::JoinHandle<Digests>,
}

impl HashPipe {
    pub fn start(mut digests: Digests) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Piece>();
        // Called on the worker: its core is the one the hash thread should not share.
        let worker_cpu = ringcast_infra::cpu_affinity::current_cpu();
        let thread = ringcast_infra::side_runtime::handle().spawn_blocking(move || {
            // Off the worker's core and ahead of it, until the PATCH's hashing ends.
            let _placed = hash_placement::Placed::away_from(worker_cpu);
            while let Some(Piece { bytes, from, done }) = rx.blocking_recv() {
                let all = (*bytes).as_ref();
                digests.update(&all[from.min(all.len())..]);
                // Let go of the buffer before saying so: its owner reclaims it once told.
                drop(bytes);
                let _ = done.send(());
            }
            digests
        });
        Self { tx, thread }
    }

    /// Queue `buf[from..]`; the buffer is shared, not copied (the spool's O_DIRECT write reads
    /// the same bytes meanwhile).
    pub fn feed<B>(&self, buf: Arc<B>, from: usize) -> Hashed
    where
        B: AsRef<[u8]> + Send + Sync + 'static,
    {
        let (done, hashed) = oneshot::channel();
        // A send fails only when the thread is gone: `hashed` then reports it.
        let _ = self.tx.send(Piece {
            bytes: buf,
            from,
            done,
        });
        hashed
    }

    /// Close the pipe; the digests back once every piece fed is hashed.
    pub async fn finish(self) -> io::Result<Digests> {
        let Self { tx, thread } = self;
        drop(tx);
        thread.await.map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tus::test_runtime::block_on;
    use ringcast_proto::tus::checksum::ChecksumAlgorithm;

    #[test]
    fn a_hash_pipe_gives_the_digest_of_the_bytes_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let expected = hex::encode(Sha256::digest(&data));
        let mut d = Digests {
            source: Sha256::new(),
            chunk: Some(ChunkDigest::new(ChecksumAlgorithm::Sha256)),
        };
        // The first 10 bytes were fed already (as the head of a buffer after a checkpoint):
        // the first piece is hashed from 10 on.
        d.update(&data[..10]);
        let d = block_on(async move {
            let pipe = HashPipe::start(d);
            let pieces = [
                (0, 1_000_000, 10),
                (1_000_000, 2_000_000, 0),
                (2_000_000, 2_500_000, 0),
            ];
            let mut acks = Vec::new();
            for (start, end, from) in pieces {
                let piece = Arc::new(data[start..end].to_vec());
                acks.push((pipe.feed(Arc::clone(&piece), from), piece));
            }
            for (ack, piece) in acks {
                ack.await.expect("hashed");
                // Told only after the thread let go of the buffer.
                assert_eq!(Arc::strong_count(&piece), 1);
            }
            let mut d = pipe.finish().await.expect("digests back");
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
