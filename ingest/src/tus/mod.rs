//! tus 1.0 resumable uploads: the protocol handler (core and the creation,
//! creation-with-upload, creation-defer-length, checksum, expiration, termination and
//! concatenation extensions), the spool of upload state and bytes, the lock that follows the
//! client, the inspection of a complete upload (ffprobe + media limits), and the finish step
//! that stores it and enqueues its job (or, for the same bytes again, answers with the existing
//! video: [`dedup`]).

pub mod checksum;
pub mod concat;
pub mod config;
pub mod dedup;
pub mod digests;
pub mod expiry;
pub mod expiry_index;
pub mod finish;
pub mod handler;
pub mod hash_placement;
pub mod lock;
pub mod ownership;
pub mod probe;
pub mod source_hashers;
pub mod spool_writer;
pub mod termination;
#[cfg(test)]
mod test_runtime;
pub mod upload_store;
