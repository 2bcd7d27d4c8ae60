//! HLS playlist model and renderer: multivariant ("master") playlists and media playlists with
//! the Low-Latency HLS tags, rendered to text for the packager (VOD and EVENT playlists in
//! object storage) and the edge (live playlists, blocking reloads, delta updates).
//!
//! Specs: RFC 8216 §4 (playlist format, §4.3.4.2 `EXT-X-STREAM-INF`, §4.3.3 media playlist
//! tags, §7 version compatibility) and draft-pantos-hls-rfc8216bis (§4.4.3.7 `EXT-X-PART-INF`,
//! §4.4.3.8 `EXT-X-SERVER-CONTROL`, §4.4.4.9 `EXT-X-PART`, §4.4.5.2 `EXT-X-SKIP`,
//! §4.4.5.3 `EXT-X-PRELOAD-HINT`, §4.4.5.4 `EXT-X-RENDITION-REPORT`, §8 version
//! compatibility). The rules of `DESIGN.md` ("LL-HLS rules") are checked by
//! [`MediaPlaylist::validate`].
//!
//! Sans-IO: the model is plain data, rendering is a pure function of it.

mod master;
mod media;
mod parse;
mod render;
mod validate;

pub use master::{MasterPlaylist, Variant};
pub use media::{
    MediaPlaylist, Part, PlaylistType, PreloadHint, RenditionReport, Segment, ServerControl,
};
pub use parse::{is_master, parse_master, parse_media, ParseError};

/// A playlist model that would render into an invalid (or DESIGN-violating) playlist.
///
/// Durations in these errors are the values as rendered (rounded to the tag's precision),
/// because that is what a client checks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaylistError {
    /// Empty where a value is required, or a character the playlist syntax cannot carry: a
    /// double quote (ends a quoted-string) or a control character (CR/LF end the tag line;
    /// RFC 8216 §4.1 forbids the others).
    #[error("{field} {value:?} cannot be written into a playlist (empty, double quote or control character)")]
    InvalidText { field: &'static str, value: String },
    /// A duration, frame rate or hold-back that is negative, NaN or infinite.
    #[error("{what} {value} is not a finite non-negative number")]
    InvalidNumber { what: &'static str, value: f64 },
    /// `EXT-X-VERSION` is below what the playlist's tags need (RFC 8216 §7, rfc8216bis §8).
    #[error("EXT-X-VERSION {actual} is lower than the {required} this playlist's tags need")]
    VersionTooLow { required: u8, actual: u8 },
    /// `EXT-X-TARGETDURATION` of 0 can hold no segment.
    #[error("EXT-X-TARGETDURATION must be at least 1")]
    ZeroTargetDuration,
    /// A multivariant playlist without variants.
    #[error("multivariant playlist has no variant streams")]
    NoVariants,
    /// An `EXTINF` duration that, rounded to the nearest integer, exceeds the target duration.
    #[error("segment {msn} lasts {duration} s, which rounds above EXT-X-TARGETDURATION {target_duration}")]
    SegmentExceedsTargetDuration {
        msn: u64,
        duration: f64,
        target_duration: u64,
    },
    /// Partial segments or a preload hint without `EXT-X-PART-INF`.
    #[error("playlist has partial segments or a preload hint but no EXT-X-PART-INF")]
    MissingPartTarget,
    /// `PART-TARGET` must be positive.
    #[error("PART-TARGET {0} must be greater than 0")]
    InvalidPartTarget(f64),
    /// A part longer than `PART-TARGET`.
    #[error(
        "part {index} of segment {msn} lasts {duration} s, more than PART-TARGET {part_target}"
    )]
    PartExceedsPartTarget {
        msn: u64,
        index: usize,
        duration: f64,
        part_target: f64,
    },
    /// A part that is neither the last of its segment nor independent, shorter than 85 % of
    /// `PART-TARGET`.
    #[error("part {index} of segment {msn} lasts {duration} s, less than 85 % of PART-TARGET {part_target}")]
    PartTooShort {
        msn: u64,
        index: usize,
        duration: f64,
        part_target: f64,
    },
    /// `EXT-X-PART-INF` requires `PART-HOLD-BACK` in `EXT-X-SERVER-CONTROL`.
    #[error("EXT-X-PART-INF requires EXT-X-SERVER-CONTROL with PART-HOLD-BACK")]
    MissingPartHoldBack,
    /// `PART-HOLD-BACK` below twice `PART-TARGET` (the spec minimum; DESIGN's 3x is the default).
    #[error("PART-HOLD-BACK {part_hold_back} is less than 2 x PART-TARGET {part_target}")]
    PartHoldBackTooSmall {
        part_hold_back: f64,
        part_target: f64,
    },
    /// `HOLD-BACK` below three target durations.
    #[error("HOLD-BACK {hold_back} is less than 3 x EXT-X-TARGETDURATION {target_duration}")]
    HoldBackTooSmall {
        hold_back: f64,
        target_duration: u64,
    },
    /// `CAN-SKIP-UNTIL` below six target durations.
    #[error(
        "CAN-SKIP-UNTIL {can_skip_until} is less than 6 x EXT-X-TARGETDURATION {target_duration}"
    )]
    CanSkipUntilTooSmall {
        can_skip_until: f64,
        target_duration: u64,
    },
    /// A delta update (`EXT-X-SKIP`) from a playlist that does not advertise `CAN-SKIP-UNTIL`.
    #[error("EXT-X-SKIP without CAN-SKIP-UNTIL in EXT-X-SERVER-CONTROL")]
    SkipNotAdvertised,
    /// More segments skipped than the playlist has.
    #[error("cannot skip {skipped} of {segments} segments")]
    SkipBeyondPlaylist { skipped: u64, segments: usize },
    /// Skipped segments reach into the last `CAN-SKIP-UNTIL` seconds of the playlist.
    #[error(
        "skipping leaves {remaining} s of segments, less than CAN-SKIP-UNTIL {can_skip_until}"
    )]
    SkipInsideBoundary { remaining: f64, can_skip_until: f64 },
    /// `EXT-X-PRELOAD-HINT` in a playlist that has ended: nothing more will be published.
    #[error("EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST")]
    PreloadHintAfterEndList,
}
