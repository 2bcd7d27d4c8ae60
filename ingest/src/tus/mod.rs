//! tus 1.0 resumable uploads: the protocol handler (core + creation), the spool of upload
//! state and bytes, the inspection of a complete upload (ffprobe + media limits), and the
//! finish step that stores it and enqueues its job (or, for the same bytes again, answers with
//! the existing video: [`dedup`]).

pub mod config;
pub mod dedup;
pub mod finish;
pub mod handler;
pub mod probe;
pub mod source_hashers;
pub mod upload_store;
