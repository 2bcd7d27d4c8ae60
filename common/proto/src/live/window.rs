//! Which segments and parts a [`LiveRendition`] keeps, applied after every change.
//!
//! - **Window** (rfc8216bis §6.2.2): a sliding window of complete segments that never shrinks
//!   below three target durations ("MUST NOT remove a Media Segment ... if that would produce a
//!   Playlist whose duration is less than three times the Target Duration"), counting the
//!   discontinuity tags it drops into `EXT-X-DISCONTINUITY-SEQUENCE`; or unbounded (EVENT
//!   playlists, §6.2.1: nothing but parts may be removed).
//! - **Part retention** (§6.2.2: "EXT-X-PART tags SHOULD be removed from the Playlist after
//!   they are greater than three Target Durations from the end"): parts are kept for complete
//!   segments that start less than 3 × TARGETDURATION before the end of the playlist, and at
//!   most for the last [`MAX_SEGMENTS_WITH_PARTS`] of them: hls-parser's strict mode counts
//!   entries rather than seconds and allows parts on the last three, the open segment (or the
//!   preload hint) included. Part counts survive the trimming for blocking reloads.

use super::state::{LiveRendition, Window};
use super::timing::rendered;

/// Complete segments that may keep their parts (see the module documentation).
pub const MAX_SEGMENTS_WITH_PARTS: usize = 2;

/// Parts older than this many target durations from the end are dropped (§6.2.2).
const PART_RETENTION_TARGET_DURATIONS: f64 = 3.0;

/// A sliding window never goes below this many target durations (§6.2.2).
const MIN_WINDOW_TARGET_DURATIONS: f64 = 3.0;

impl LiveRendition {
    /// Drops the oldest complete segments beyond the window, never below three target
    /// durations of media, counting the dropped discontinuities (§6.2.2).
    pub(super) fn trim_window(&mut self) {
        let Window::Sliding { segments: keep } = self.config.window else {
            return;
        };
        let min = MIN_WINDOW_TARGET_DURATIONS * self.target_duration as f64;
        let mut total: f64 = self.segments.iter().map(|s| rendered(s.duration)).sum();
        while self.segments.len() > keep {
            let Some(front) = self.segments.front() else {
                break;
            };
            let rest = total - rendered(front.duration);
            if rest < min {
                break;
            }
            total = rest;
            if let Some(dropped) = self.segments.pop_front() {
                if dropped.discontinuity {
                    self.discontinuity_sequence = self.discontinuity_sequence.saturating_add(1);
                }
            }
        }
    }

    /// Drops the parts of complete segments that are too far from the end (see the module
    /// documentation). Monotonic: distances only grow, so removal is in playlist order
    /// (§6.2.2 "MUST be removed ... in the order that they appear").
    ///
    /// The parts' memory is released, not just cleared: an unbounded (EVENT) state, such as
    /// the packager's self-check model, keeps every segment for the whole stream, and a
    /// cleared `Vec` would keep its capacity (≈ 40 bytes per part) for hours. For the same
    /// reason the walk from the end stops at the first segment trimmed before: everything
    /// older was trimmed then too, so the cost per event stays constant.
    pub(super) fn trim_parts(&mut self) {
        let limit = PART_RETENTION_TARGET_DURATIONS * self.target_duration as f64;
        let mut from_end: f64 = self
            .listed_open_parts()
            .iter()
            .map(|p| rendered(p.duration))
            .sum();
        for (index, seg) in self.segments.iter_mut().rev().enumerate() {
            from_end += rendered(seg.duration);
            if index >= MAX_SEGMENTS_WITH_PARTS || from_end >= limit {
                if seg.parts.capacity() == 0 {
                    break;
                }
                seg.parts = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::live::{Applied, LiveConfig, LiveEvent, LiveRendition};

    #[test]
    fn sliding_window_keeps_the_newest_segments() {
        let mut s = LiveRendition::new(LiveConfig::sliding(5), &start()).expect("start");
        for msn in 0..12 {
            push_segment(&mut s, msn, 4);
        }
        assert_eq!(s.segments.len(), 5);
        assert_eq!(s.media_sequence(), 7);
        // Out of the window: duplicates, and present for blocking reloads.
        assert_eq!(s.apply(segment_end(3, 2.0)), Ok(Applied::Duplicate));
        assert_eq!(s.apply(part(3, 9)), Ok(Applied::Duplicate));
        assert!(s.has(3, Some(9)));
    }

    #[test]
    fn sliding_window_never_goes_below_three_target_durations() {
        let mut s = LiveRendition::new(LiveConfig::sliding(1), &start()).expect("start");
        for msn in 0..10 {
            push_segment(&mut s, msn, 2); // 1 s segments, TD 2: at least 6 s stay
        }
        assert_eq!(s.segments.len(), 6);
        assert_eq!(s.media_sequence(), 4);
    }

    #[test]
    fn unbounded_window_keeps_everything() {
        let mut s = LiveRendition::new(LiveConfig::unbounded(), &start()).expect("start");
        for msn in 0..50 {
            push_segment(&mut s, msn, 4);
        }
        assert_eq!(s.segments.len(), 50);
        assert_eq!(s.media_sequence(), 0);
    }

    #[test]
    fn dropped_discontinuities_raise_the_discontinuity_sequence() {
        let mut s = LiveRendition::new(LiveConfig::sliding(4), &start()).expect("start");
        push_segment(&mut s, 0, 4);
        s.apply(LiveEvent::Discontinuity { next_msn: 1 })
            .expect("d");
        push_segment(&mut s, 1, 4);
        for msn in 2..5 {
            push_segment(&mut s, msn, 4);
        }
        assert_eq!(s.media_sequence(), 1);
        assert_eq!(s.discontinuity_sequence, 0, "segment 1 still listed");
        push_segment(&mut s, 5, 4);
        assert_eq!(s.media_sequence(), 2);
        assert_eq!(s.discontinuity_sequence, 1);
    }

    #[test]
    fn parts_are_kept_only_near_the_live_edge() {
        let mut s = rendition();
        for msn in 0..6 {
            push_segment(&mut s, msn, 4);
        }
        let with_parts: Vec<u64> = s
            .segments
            .iter()
            .filter(|seg| !seg.parts.is_empty())
            .map(|seg| seg.msn)
            .collect();
        assert_eq!(with_parts, [4, 5]);
        // Counts survive the trimming, for blocking reloads and part requests.
        assert_eq!(s.complete(0).and_then(|seg| seg.part_count), Some(4));
    }

    #[test]
    fn trimmed_parts_give_their_memory_back() {
        // The packager's self-check model is unbounded for the whole stream: what a trimmed
        // segment keeps must not grow with its part count (the soak's transcoder RSS growth).
        let mut s = LiveRendition::new(LiveConfig::unbounded(), &start()).expect("start");
        for msn in 0..50 {
            push_segment(&mut s, msn, 10);
        }
        assert_eq!(s.segments.len(), 50);
        let kept: Vec<u64> = s
            .segments
            .iter()
            .filter(|seg| seg.parts.capacity() > 0)
            .map(|seg| seg.msn)
            .collect();
        assert_eq!(
            kept,
            [48, 49],
            "only the segments that still list parts hold memory"
        );
        assert_eq!(s.complete(3).and_then(|seg| seg.part_count), Some(10));
    }

    #[test]
    fn parts_older_than_three_target_durations_go_even_among_the_last_two() {
        // TD 4 with a 2 s part target: parts go once their segment starts 12 s or more from
        // the end. Two 4 s segments, then the open segment's parts push segment 0 back.
        let start4 = LiveEvent::Start {
            target_duration: 4,
            part_target: 2.0,
            init: "init.mp4".into(),
            started_ms: 0,
            part_hold_back: None,
        };
        let mut s = LiveRendition::new(LiveConfig::default(), &start4).expect("start");
        for msn in 0..2 {
            s.apply(part_d(msn, 0, 2.0, true)).expect("p0");
            s.apply(part_d(msn, 1, 2.0, false)).expect("p1");
            s.apply(segment_end(msn, 4.0)).expect("end");
        }
        assert!(s.segments.iter().all(|seg| !seg.parts.is_empty()));
        s.apply(part_d(2, 0, 2.0, true)).expect("open p0");
        assert!(!s.segments[0].parts.is_empty(), "starts 10 s from the end");
        s.apply(part_d(2, 1, 2.0, false)).expect("open p1");
        assert!(s.segments[0].parts.is_empty(), "starts 12 s from the end");
        assert!(!s.segments[1].parts.is_empty());
    }

    #[test]
    fn long_segments_raise_the_target_duration_for_good() {
        let mut s = LiveRendition::new(LiveConfig::sliding(3), &start()).expect("start");
        push_segment(&mut s, 0, 4);
        assert_eq!(s.target_duration(), 2);
        s.apply(part(1, 0)).expect("part");
        s.apply(segment_end(1, 2.6)).expect("a long segment");
        assert_eq!(s.target_duration(), 3);
        for msn in 2..20 {
            push_segment(&mut s, msn, 4);
        }
        assert!(s.complete(1).is_none(), "the long segment left the window");
        assert_eq!(s.target_duration(), 3, "TARGETDURATION never decreases");
    }
}
