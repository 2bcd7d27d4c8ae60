//! tus 1.0 resumable uploads: the protocol handler (core + creation), the spool of upload
//! state and bytes, and the finish step that stores a complete upload and enqueues its job.

pub mod finish;
pub mod handler;
pub mod upload_store;
