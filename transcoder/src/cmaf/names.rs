//! File names inside a rendition's directory `v/{video}/{version}/{rendition}/` that the
//! announcer, the packager and the playlists all refer to (segments are
//! `ringcast_proto::keys::segment_name`).

/// Name of the init segment in a rendition (the `start` event's `init`).
pub const INIT_NAME: &str = "init.mp4";

/// Name of each rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
