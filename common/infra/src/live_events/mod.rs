//! The Redis side of live events (DESIGN.md "Storage and keys"), owned in one place so that the
//! transcoder that writes the streams and the edge that follows them cannot drift apart: the
//! stream names (`rc:events:{video}:{version}:{rendition}`, `rc:live:{video}:{version}`), the
//! entry field (`e`), MAXLEN trimming, the expiry rules, and the `ended_ms`, `publishes` and
//! `playlist_type` fields.
//!
//! - [`publisher`]: the transcoder's writer ([`EventPublisher`]): atomic XADD + EXPIRE, EVENT
//!   playlists, restart detection.
//! - [`subscriber`]: the edge's reader ([`EventSubscriber`]): probe, `XREAD` (blocking) and
//!   full re-reads on a dedicated connection, each bounded by its own deadline.
//! - [`fields`]: the hash field names and values both sides agree on.
//! - [`ttl`]: how long event streams stay in Redis ([`StreamTtl`]).
//!
//! The event payload itself ([`ringcast_proto::live::LiveEvent`]) is protocol code and lives in
//! `ringcast-proto`; this module only moves it.

mod error;
pub mod fields;
pub mod publisher;
pub mod subscriber;
pub mod ttl;

pub use error::LiveEventsError;
pub use publisher::EventPublisher;
pub use subscriber::{EventSubscriber, StreamEntry, StreamProbe};
pub use ttl::StreamTtl;
