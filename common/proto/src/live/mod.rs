//! The live LL-HLS model the edge keeps in memory, sans-IO: the packager announces parts and
//! segments of each rendition as [`LiveEvent`]s on a Redis stream
//! (`rc:events:{video}:{version}:{rendition}`), every edge applies them to a [`LiveRendition`]
//! and answers playlist requests, blocking reloads and preload-hinted part requests from it.
//! Nothing here does IO or reads a clock: the time a request has been blocked is passed in.
//!
//! - [`events`]: the versioned event schema and its stream key.
//! - [`state`]: ordering, duplicates and gaps of the event stream, joining mid-stream, which
//!   parts are listed (rfc8216bis §6.2.1).
//! - [`window`]: the sliding window and part retention (§6.2.2).
//! - [`availability`]: what is published and what is listed, for blocking reloads, preload
//!   hints and rendition reports (§6.2.5.2, §6.2.6, §4.4.5.3–4.4.5.4).
//! - [`render`]: the media playlist of the current state, with parts, preload hint, rendition
//!   reports and delta updates (rfc8216bis §4.4.3.8, §4.4.4.9, §4.4.5.2–4.4.5.4, §6.2.5.1).
//! - [`blocking_reload`]: `_HLS_msn` / `_HLS_part` / `_HLS_skip` parsing and the hold / answer /
//!   400 / 503 decision (rfc8216bis §6.2.5, §6.2.5.2), and blocking GETs of the hinted part
//!   (§6.2.6).
//! - [`fresh`]: a request without directives (a player's first) held until the next part is
//!   listed, so the player's live-edge estimate from it is right.
//! - [`timing`]: part and segment duration rules shared by the packager and the model
//!   (rfc8216bis §4.4.4.9, RFC 8216 §4.3.3.1).
//! - [`rules`]: spec rules counted by the latency metrics (part over `PART-TARGET`, hold-back
//!   under three part targets).
//! - [`date_time`]: `EXT-X-PROGRAM-DATE-TIME` formatting (RFC 3339, RFC 8216 §4.3.2.6).

pub mod availability;
pub mod blocking_reload;
pub mod date_time;
pub mod events;
pub mod fresh;
pub mod render;
pub mod rules;
pub mod state;
pub mod timing;
pub mod window;

#[cfg(test)]
mod playlist_tests;
#[cfg(test)]
mod test_support;

pub use blocking_reload::{
    blocking_timeout, cache_key_for, decide, preload_part_ready, push_cache_key, Decision,
    PartStatus, ReloadQuery, SkipRequest,
};
pub use date_time::format_rfc3339_millis;
pub use events::{events_stream_key, EventError, LiveEvent, EVENT_FIELD, EVENT_SCHEMA_VERSION};
pub use fresh::{FreshHold, FRESH_HOLD_PART_TARGETS};
pub use render::PlaylistOpts;
pub use state::{Applied, LiveConfig, LiveRendition, Window, DEFAULT_WINDOW_SEGMENTS};
pub use timing::{PartTiming, TimingError};
pub use window::MAX_SEGMENTS_WITH_PARTS;

/// Why an event could not be applied to a [`LiveRendition`], or why a playlist request is
/// malformed ([`LiveError::BadRequest`], HTTP 400).
///
/// For event errors the state is left unchanged. [`LiveError::needs_resync`] says whether the
/// caller should rebuild the state from a consistent point of the stream (a lost or reordered
/// event); the other event errors concern that one event only (drop it and log).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveError {
    /// The first event of a rendition must be `Start`: events read before it (a stream
    /// replayed from a point after its `Start`) cannot be placed. Skip them.
    #[error("event before the rendition's Start event")]
    NotStarted,
    /// A `Start` whose parameters differ from the one this state was built from: the packager
    /// restarted the rendition with other settings.
    #[error("Start event differs from the one this rendition started with")]
    ConflictingStart,
    /// An event with values no playlist can carry (non-finite or non-positive durations, an
    /// init URI that cannot be quoted, a sequence number at the end of the u64 range).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A part or segment breaking the duration rules of [`timing`].
    #[error(transparent)]
    Timing(#[from] TimingError),
    /// A part announced before the previous parts of its segment.
    #[error("part {got} of segment {msn} announced, expected part {expected}")]
    PartGap { msn: u64, expected: u32, got: u32 },
    /// An event for a segment after the next one expected.
    #[error("event for segment {got} while segment {expected} is the next one")]
    MsnGap { expected: u64, got: u64 },
    /// An event for a later segment (or a discontinuity, or the end) while segment `open_msn`
    /// still has no `SegmentEnd`.
    #[error("event for segment {got} while segment {open_msn} has not ended")]
    MissingSegmentEnd { open_msn: u64, got: u64 },
    /// `SegmentEnd` for a segment without any announced part.
    #[error("SegmentEnd for segment {msn}, which has no parts")]
    SegmentEndWithoutParts { msn: u64 },
    /// A re-announcement of something the state holds differently (e.g. a part beyond the
    /// last part of a completed segment, a discontinuity before a segment that has none).
    #[error("event contradicts segment {msn}: {reason}")]
    Contradicts { msn: u64, reason: &'static str },
    /// `End` naming another last segment than the last completed one.
    #[error("End names segment {last_msn} as last, but the last completed segment is {actual:?}")]
    EndMismatch { last_msn: u64, actual: Option<u64> },
    /// A new event after `End`.
    #[error("{event} event after End")]
    Ended { event: &'static str },
    /// A malformed playlist request (HTTP 400).
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl LiveError {
    /// True when the event stream lost or reordered an event (or the rendition was restarted):
    /// the caller should rebuild the [`LiveRendition`] from a consistent point (the last
    /// `Start` of the stream) rather than keep applying events to this one.
    pub fn needs_resync(&self) -> bool {
        matches!(
            self,
            LiveError::ConflictingStart
                | LiveError::PartGap { .. }
                | LiveError::MsnGap { .. }
                | LiveError::MissingSegmentEnd { .. }
                | LiveError::SegmentEndWithoutParts { .. }
                | LiveError::Contradicts { .. }
                | LiveError::EndMismatch { .. }
        )
    }
}
