//! Field names and values of `rc:live:{video}:{version}` (the per-version live settings hash,
//! [`ringcast_proto::keys::live_stream`]) that the ingest, the transcoder and the edge agree on.
//! They are written and read only through this module's publisher and subscriber and the
//! queue's `set_live_publishes` (which the ingest calls), so a rename happens in one place.

/// Set (unix ms) when a rendition announced `End`; outlives the event stream and tells a
/// redelivered live job that the stream already ran.
pub const ENDED_FIELD: &str = "ended_ms";

/// How many publishers the ingest has seen for the stream (1 until a reconnect).
pub const PUBLISHES_FIELD: &str = "publishes";

/// Which playlist the edge serves for the version.
pub const PLAYLIST_TYPE_FIELD: &str = "playlist_type";

/// [`PLAYLIST_TYPE_FIELD`] value that makes edges serve an EVENT playlist (a VOD packaged
/// while it transcodes: every segment kept) instead of a live sliding window.
pub const PLAYLIST_TYPE_EVENT: &str = "event";
