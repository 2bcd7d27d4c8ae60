//! What a [`LiveRendition`] has published and what its playlist lists: the answers behind
//! blocking reloads (rfc8216bis §6.2.5.2), preload-hinted part requests (§6.2.6), the preload
//! hint itself (§4.4.5.3) and rendition reports (§4.4.5.4).
//!
//! "Published" means announced by the packager (the object is stored); "listed" means visible
//! in the playlist. They differ for the open segment when its parts are held back (joined
//! mid-segment, starting a discontinuity, or a trailing short part: see [`super::state`]).

use super::state::LiveRendition;
use crate::playlist::Part;

impl LiveRendition {
    /// The open segment's parts as listed in the playlist (pending parts): none unless the
    /// segment is visible, and without a trailing short part (see the module documentation).
    pub(super) fn listed_open_parts(&self) -> &[Part] {
        let Some(open) = self.open.as_ref().filter(|o| o.visible()) else {
            return &[];
        };
        match open.parts.split_last() {
            Some((last, rest)) if self.timing.is_short(last.duration) => rest,
            _ => &open.parts,
        }
    }

    /// Sequence number of the last segment listed in the playlist, complete or with pending
    /// parts (`LAST-MSN` of a rendition report); `None` before anything is listed.
    pub fn last_msn(&self) -> Option<u64> {
        match &self.open {
            Some(open) if !self.listed_open_parts().is_empty() => Some(open.msn),
            _ => self.segments.back().map(|s| s.msn),
        }
    }

    /// Index of the last part listed for [`LiveRendition::last_msn`] (`LAST-PART`); `None`
    /// when that segment is listed without parts.
    pub fn last_part(&self) -> Option<u32> {
        let listed = self.listed_open_parts().len();
        match &self.open {
            Some(_) if listed > 0 => u32::try_from(listed - 1).ok(),
            _ => {
                let seg = self.segments.back()?;
                if seg.parts.is_empty() {
                    None
                } else {
                    seg.part_count.and_then(|c| c.checked_sub(1))
                }
            }
        }
    }

    /// The newest segment announced, listed or not, with the index of its newest part when
    /// known (`_HLS_msn` / `_HLS_part` plausibility, §6.2.5.2), and whether it is still open.
    pub(super) fn newest(&self) -> Option<(u64, Option<u32>, bool)> {
        if let Some(open) = &self.open {
            return Some((open.msn, open.next_part().checked_sub(1), true));
        }
        if let Some(seg) = self.segments.back() {
            return Some((
                seg.msn,
                seg.part_count.and_then(|c| c.checked_sub(1)),
                false,
            ));
        }
        self.next_msn
            .and_then(|n| n.checked_sub(1))
            .map(|n| (n, None, false))
    }

    /// Whether a playlist answering `_HLS_msn=msn[&_HLS_part=part]` can be served now
    /// (rfc8216bis §6.2.5.2):
    /// - `part: None`: segment `msn` (or a later one) is complete;
    /// - `part: Some(p)`: part `p` of segment `msn` is listed, or the segment is complete; a
    ///   part index beyond the last part of a complete segment means part 0 of the next one
    ///   (§6.2.5.2: "the Server MUST treat the request as one for Part Index 0 of the following
    ///   Parent Segment");
    /// - anything before the window: true (the spec answers with the current playlist).
    ///
    /// False for the future, and for parts of an open segment that is not listed yet.
    pub fn has(&self, msn: u64, part: Option<u32>) -> bool {
        let Some(floor) = self.floor_msn() else {
            return false;
        };
        if msn < floor {
            return true;
        }
        if let Some(seg) = self.complete(msn) {
            return match (part, seg.part_count) {
                (None, _) | (Some(_), None) => true,
                (Some(p), Some(count)) if p < count => true,
                (Some(_), Some(_)) => msn
                    .checked_add(1)
                    .is_some_and(|next| self.has(next, Some(0))),
            };
        }
        match (&self.open, part) {
            (Some(open), Some(p)) if open.msn == msn => {
                usize::try_from(p).is_ok_and(|p| p < self.listed_open_parts().len())
            }
            _ => false,
        }
    }

    /// Whether part `part` of segment `msn` was announced (its object is stored), listed or
    /// not. Parts of segments before the window are presumed published: the store answers.
    pub fn part_published(&self, msn: u64, part: u32) -> bool {
        if self.is_below_window(msn) {
            return true;
        }
        if let Some(seg) = self.complete(msn) {
            return seg.part_count.is_none_or(|count| part < count);
        }
        self.open
            .as_ref()
            .is_some_and(|open| open.msn == msn && part < open.next_part())
    }

    /// The next part the packager will announce, `(msn, part)`: the one the preload hint
    /// names (when listed). `None` after `End` or before the first segment event.
    pub fn next_part(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        match &self.open {
            Some(open) => Some((open.msn, open.next_part())),
            None => self.next_msn.map(|n| (n, 0)),
        }
    }

    /// The preload hint's part, `(msn, part)`: the part after the listed ones, when its
    /// segment's parts are listed (not after `End`, not for a segment joined mid-way, not for a
    /// segment that starts a discontinuity). Usually the next part to be announced; a held-back
    /// short part is already published, and then the hint names it.
    pub fn preload_hint(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        match &self.open {
            Some(open) if open.visible() => {
                let listed = u32::try_from(self.listed_open_parts().len()).ok()?;
                Some((open.msn, listed))
            }
            Some(_) => None,
            None if self.pending_discontinuity => None,
            None => self.next_msn.map(|n| (n, 0)),
        }
    }

    /// Unix milliseconds of the start of segment `msn`: its own `SegmentEnd` date when
    /// complete; for the open (or next) segment extrapolated from the last complete one, or
    /// the stream start when none. `None` for segments out of the window or further ahead.
    pub fn program_date_time_ms(&self, msn: u64) -> Option<u64> {
        if let Some(seg) = self.complete(msn) {
            return Some(seg.program_date_time_ms);
        }
        let upcoming = self.open.as_ref().map(|o| o.msn).or(self.next_msn)?;
        if msn != upcoming {
            return None;
        }
        Some(match self.segments.back() {
            Some(last) => last
                .program_date_time_ms
                .saturating_add(secs_to_ms(last.duration)),
            None => self.started_ms,
        })
    }
}

/// Seconds to whole milliseconds (durations are finite and positive here; `as` saturates).
fn secs_to_ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::live::Applied;

    #[test]
    fn joining_mid_segment_lists_it_without_parts() {
        let mut s = rendition();
        // The stream was trimmed: the first event seen is part 2 of segment 57.
        assert_eq!(s.apply(part(57, 2)), Ok(Applied::Updated));
        assert_eq!(s.last_msn(), None, "nothing listed yet");
        assert_eq!(s.preload_hint(), None);
        assert!(!s.has(57, Some(2)));
        assert!(s.part_published(57, 0), "went by before the state existed");
        assert!(s.part_published(57, 2));
        assert_eq!(s.next_part(), Some((57, 3)));
        s.apply(part(57, 3)).expect("next part");
        s.apply(segment_end(57, 2.0)).expect("end");
        assert_eq!((s.last_msn(), s.last_part()), (Some(57), None));
        assert!(s.segments[0].parts.is_empty());
        assert_eq!(s.segments[0].part_count, Some(4));
        assert_eq!(s.preload_hint(), Some((58, 0)));
    }

    #[test]
    fn joining_at_a_segment_end() {
        let mut s = rendition();
        assert_eq!(s.apply(segment_end(9, 2.0)), Ok(Applied::Updated));
        assert_eq!(s.last_msn(), Some(9));
        assert!(
            s.has(9, Some(100)),
            "part count unknown: complete is enough"
        );
        assert!(s.part_published(9, 100));
        assert_eq!(s.apply(part(10, 0)), Ok(Applied::Updated));
    }

    #[test]
    fn program_date_time_is_tracked_and_extrapolated() {
        let mut s = rendition();
        assert_eq!(s.program_date_time_ms(0), None, "not positioned yet");
        s.apply(part(0, 0)).expect("part");
        assert_eq!(s.program_date_time_ms(0), Some(T0));
        s.apply(segment_end_at(0, 0.5, T0 + 40)).expect("end");
        assert_eq!(s.program_date_time_ms(0), Some(T0 + 40));
        assert_eq!(s.program_date_time_ms(1), Some(T0 + 540));
        assert_eq!(s.program_date_time_ms(2), None);
    }
}
