//! The platform's metadata in Redis (DESIGN.md "The platform model"): API keys and their
//! owners and roles ([`api_keys`]), the videos of each owner ([`videos`]), their versions,
//! duplicate sources and upload progress ([`versions`]), per-owner quota counters ([`quota`]). Redis is the platform's database; the object store holds
//! only bytes. Every call runs on the tokio side runtime, so the monoio services and the CLIs
//! use the same code. Errors are [`crate::queue::QueueError`] (Redis or the side runtime).

pub mod api_keys;
pub mod quota;
pub mod versions;
pub mod videos;
