//! Event builders and playlist checks shared by the live model's tests.

use super::{LiveConfig, LiveEvent, LiveRendition};
use crate::playlist::{parse_media, MediaPlaylist};

/// 2026-11-27T08:00:00.000Z.
pub(crate) const T0: u64 = 1_795_766_400_000;

/// TD 2 s, PART-TARGET 0.5 s, started at [`T0`].
pub(crate) fn start() -> LiveEvent {
    LiveEvent::Start {
        target_duration: 2,
        part_target: 0.5,
        init: "init.mp4".into(),
        started_ms: T0,
        part_hold_back: None,
    }
}

/// A sliding-window rendition started with [`start`].
pub(crate) fn rendition() -> LiveRendition {
    LiveRendition::new(LiveConfig::default(), &start()).expect("valid start")
}

/// A 0.5 s part, independent when it is the first of its segment.
pub(crate) fn part(msn: u64, part: u32) -> LiveEvent {
    part_d(msn, part, 0.5, part == 0)
}

pub(crate) fn part_d(msn: u64, part: u32, duration: f64, independent: bool) -> LiveEvent {
    LiveEvent::Part {
        msn,
        part,
        duration,
        independent,
    }
}

/// `SegmentEnd` dated as if every segment before lasted 2 s.
pub(crate) fn segment_end(msn: u64, duration: f64) -> LiveEvent {
    segment_end_at(msn, duration, T0 + msn * 2000)
}

pub(crate) fn segment_end_at(msn: u64, duration: f64, program_date_time_ms: u64) -> LiveEvent {
    LiveEvent::SegmentEnd {
        msn,
        duration,
        program_date_time_ms,
    }
}

/// `parts` parts of 0.5 s and the segment end.
pub(crate) fn segment_events(msn: u64, parts: u32) -> Vec<LiveEvent> {
    let mut events: Vec<LiveEvent> = (0..parts).map(|p| part(msn, p)).collect();
    events.push(segment_end(msn, 0.5 * f64::from(parts)));
    events
}

/// Applies [`segment_events`], panicking on any error.
pub(crate) fn push_segment(state: &mut LiveRendition, msn: u64, parts: u32) {
    for e in segment_events(msn, parts) {
        state
            .apply(e.clone())
            .unwrap_or_else(|err| panic!("{e:?}: {err}"));
    }
}

/// `pl` after checking that it validates and re-parses to the same segments and parts.
pub(crate) fn checked(pl: MediaPlaylist) -> MediaPlaylist {
    if let Err(e) = pl.validate() {
        panic!("invalid playlist ({e}):\n{}", pl.render());
    }
    let text = pl.render();
    let parsed = parse_media(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let listed = &pl.segments[usize::try_from(pl.skipped_segments).expect("small")..];
    assert_eq!(parsed.segments.len(), listed.len(), "{text}");
    assert_eq!(parsed.skipped_segments, pl.skipped_segments, "{text}");
    let parts = |segs: &[crate::playlist::Segment]| -> Vec<usize> {
        segs.iter().map(|s| s.parts.len()).collect()
    };
    assert_eq!(parts(&parsed.segments), parts(listed), "{text}");
    assert_eq!(parsed.pending_parts, pl.pending_parts, "{text}");
    assert_eq!(parsed.preload_hint, pl.preload_hint, "{text}");
    pl
}
