//! What an upload must pass besides the tus protocol before bytes are taken or a file is
//! accepted (DESIGN.md "Upload admission"):
//! - [`space`]: the spool filesystem keeps a free-space reserve (507 before the disk fills);
//! - [`quota`]: per-owner bytes in flight and stored (Redis counters, 403 `quota_exceeded`);
//! - [`pace`]: a PATCH body keeps a minimum rate and a total deadline (408, resumable);
//! - [`buffers`]: PATCH buffers are pooled per worker, so memory per request stays bounded;
//! - the virus scan of a finished upload lives in [`crate::scan`].
//!
//! The tus handler calls in here through one-line hooks; each refusal is an
//! [`AdmissionError`] with its status, code and `Retry-After` in [`error`].

pub mod buffers;
pub mod config;
pub mod error;
pub mod metrics;
pub mod pace;
pub mod quota;
pub mod space;

pub use error::AdmissionError;
