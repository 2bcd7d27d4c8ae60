//! The sha256 of every upload, computed while its bytes are spooled, for duplicate detection
//! (DESIGN.md "Duplicate uploads"): the same owner uploading the same bytes gets the existing
//! video back instead of a second transcode.
//!
//! The hasher of an upload in progress lives in memory ([`crate::tus::source_hashers::SourceHashers`], one map shared by
//! every core, keyed by upload id, tagged with the offset it has hashed up to). Each PATCH takes
//! it, feeds it every chunk right after the chunk is written, and puts it back at the offset it
//! recorded, so the normal path reads no byte twice.
//!
//! After a restart (or if a hasher was not kept: see [`crate::tus::source_hashers::MAX_HASHERS`]) the state is gone. The
//! sha2 crate cannot export a hasher's internal state, so instead of persisting it the ingest
//! rehashes the already-stored prefix `[0, offset)` of the spool once, on the first PATCH (or
//! the finish) that needs it; from then on the normal path applies again. A resume after a
//! restart thus costs one sequential read of what was already received (about 1–2 GB/s of
//! SHA-256 on one core), never more than once per restart.

use std::io;

use monoio::fs::File;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::tus::upload_store::UploadState;

/// Bytes read per call when rehashing a stored prefix.
const REHASH_CHUNK: usize = 1024 * 1024;

/// A hasher that has hashed the upload's first `state.offset` bytes: the kept one, or one made
/// by rehashing the stored prefix.
pub async fn hasher_at(app: &App, state: &UploadState) -> io::Result<Sha256> {
    if let Some(h) = app.uploads.hashers.take(&state.id, state.offset) {
        return Ok(h);
    }
    let started = std::time::Instant::now();
    let mut hasher = Sha256::new();
    if state.offset > 0 {
        let file = File::open(app.uploads.spool_path(&state.id)).await?;
        let mut pos = 0u64;
        let mut buf = Vec::with_capacity(REHASH_CHUNK);
        let result = loop {
            if pos >= state.offset {
                break Ok(());
            }
            let want = REHASH_CHUNK.min((state.offset - pos) as usize);
            buf.clear();
            let (res, b) = file
                .read_at(monoio::buf::IoBufMut::slice_mut(buf, 0..want), pos)
                .await;
            buf = b.into_inner();
            match res {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("spool ends at {pos}, before the offset {}", state.offset),
                    ))
                }
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    pos += n as u64;
                }
                Err(e) => break Err(e),
            }
        };
        let _ = file.close().await;
        result?;
        tracing::info!(
            upload = %state.id,
            bytes = state.offset,
            ms = started.elapsed().as_millis() as u64,
            "rehashed the stored prefix of a resumed upload"
        );
    }
    Ok(hasher)
}

/// Hex sha256 of a complete upload (`offset == length`).
pub async fn digest(app: &App, state: &UploadState) -> io::Result<String> {
    let hasher = hasher_at(app, state).await?;
    let hex = hex::encode(hasher.clone().finalize());
    // Kept until the upload is finished for good: a finish that fails and is retried (store or
    // queue down) does not read the file again.
    app.uploads.hashers.put(&state.id, state.offset, hasher);
    Ok(hex)
}
