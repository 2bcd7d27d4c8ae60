//! [`LiveRendition`]: one rendition's live state, built from its [`LiveEvent`]s.
//!
//! What it enforces and why:
//! - **Order** (the playlist can only describe a contiguous sequence): parts of a segment come
//!   as `0, 1, 2, …`; `SegmentEnd` only after at least one part of that segment; a new segment
//!   only after the previous one's `SegmentEnd`; `Discontinuity` and `End` only between
//!   segments. A gap is a [`LiveError`] with [`LiveError::needs_resync`].
//! - **Idempotence**: an edge that reconnects replays the stream, so an event for something
//!   the state already holds (or has already dropped from its window) is a
//!   [`Applied::Duplicate`], not an error.
//! - **Joining**: the first segment event after `Start` may begin mid-segment (a stream
//!   trimmed by MAXLEN, a `Start` re-announced by the packager). That segment's earlier parts
//!   were never seen, so it is listed without parts.
//! - **Window and part retention**: see [`super::window`], applied after every change.
//! - **Visibility**: the open segment's parts are listed only when all of them are known and
//!   it does not start a new discontinuity: the playlist model has no way to put
//!   `EXT-X-DISCONTINUITY` before pending parts (a client would splice the new timeline
//!   without it). Such a segment appears when complete. A trailing part shorter than 85 % of
//!   `PART-TARGET` is held back too until its `SegmentEnd` (which must follow it): validators
//!   such as hls-parser read the preload hint as one more part of the open segment and would
//!   reject the short part as a non-final one. Blocking reloads follow what is listed
//!   ([`LiveRendition::has`]).
//!
//! What is published and listed is answered in [`super::availability`]; the playlist is
//! rendered by [`LiveRendition::playlist`] ([`super::render`]).

use std::collections::VecDeque;

use super::events::LiveEvent;
use super::timing::{check_positive, rendered, round_half_up, PartTiming};
use super::LiveError;
use crate::keys::part_name;
use crate::playlist::Part;

/// Complete segments a sliding window keeps by default: 60 s of 2 s segments, enough for
/// delta updates (`CAN-SKIP-UNTIL` = 6 × TD) to skip most of the playlist.
pub const DEFAULT_WINDOW_SEGMENTS: usize = 30;

/// Which complete segments the playlist keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Live: the newest `segments` complete segments (more when needed to cover three target
    /// durations). No `EXT-X-PLAYLIST-TYPE` (§6.2.2: a live playlist must not have one).
    Sliding { segments: usize },
    /// Nothing is removed: `EXT-X-PLAYLIST-TYPE:EVENT` (a VOD upload packaged while it
    /// transcodes, a live stream recorded whole).
    Unbounded,
}

/// Configuration of a [`LiveRendition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    pub window: Window,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            window: Window::Sliding {
                segments: DEFAULT_WINDOW_SEGMENTS,
            },
        }
    }
}

impl LiveConfig {
    /// A sliding window of `segments` complete segments.
    pub fn sliding(segments: usize) -> Self {
        Self {
            window: Window::Sliding { segments },
        }
    }

    /// An EVENT playlist that keeps every segment.
    pub fn unbounded() -> Self {
        Self {
            window: Window::Unbounded,
        }
    }
}

/// What an event did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state changed: re-evaluate blocked requests, invalidate cached playlists.
    Updated,
    /// A re-delivery of something already applied (or already out of the window): nothing
    /// changed.
    Duplicate,
}

/// A complete segment in the window.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DoneSegment {
    pub(super) msn: u64,
    pub(super) duration: f64,
    pub(super) program_date_time_ms: u64,
    pub(super) discontinuity: bool,
    /// Parts the segment was announced with; `None` when the state joined after it began and
    /// never learnt how many (only its `SegmentEnd` was seen).
    pub(super) part_count: Option<u32>,
    /// Parts still listed: all of them while near the live edge, none once trimmed (or when
    /// the state never saw them all).
    pub(super) parts: Vec<Part>,
}

/// The segment being produced.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OpenSegment {
    pub(super) msn: u64,
    /// Index of the first part this state saw: 0, unless it joined mid-segment.
    pub(super) first_part: u32,
    /// Parts `first_part..`.
    pub(super) parts: Vec<Part>,
    /// `EXT-X-DISCONTINUITY` before this segment.
    pub(super) discontinuity: bool,
}

impl OpenSegment {
    /// Index of the next part to be announced.
    pub(super) fn next_part(&self) -> u32 {
        self.first_part
            .saturating_add(u32::try_from(self.parts.len()).unwrap_or(u32::MAX))
    }

    /// Whether its parts are listed as pending parts (see the module documentation).
    pub(super) fn visible(&self) -> bool {
        self.first_part == 0 && !self.discontinuity
    }
}

/// The live state of one rendition. See the module documentation for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRendition {
    pub(super) config: LiveConfig,
    pub(super) timing: PartTiming,
    pub(super) init: String,
    pub(super) started_ms: u64,
    /// `PART-HOLD-BACK` from `Start` (`None`: 3 × `PART-TARGET`).
    pub(super) part_hold_back: Option<f64>,
    /// Complete segments of the window, oldest first, consecutive sequence numbers.
    pub(super) segments: VecDeque<DoneSegment>,
    pub(super) open: Option<OpenSegment>,
    /// Sequence number of the next segment when none is open; `None` until the first segment
    /// event positions the state.
    pub(super) next_msn: Option<u64>,
    /// A `Discontinuity` for `next_msn` arrived.
    pub(super) pending_discontinuity: bool,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuity tags dropped with the window (§6.2.2).
    pub(super) discontinuity_sequence: u64,
    /// `EXT-X-TARGETDURATION` as rendered: the configured one, raised (never lowered) when a
    /// segment rounds above it. RFC 8216 forbids both a longer segment and a changing target;
    /// a raised target keeps every playlist parseable, and the packager's
    /// [`PartTiming::check_segment`] keeps it from happening.
    pub(super) target_duration: u64,
    pub(super) ended: bool,
}

impl LiveRendition {
    /// A rendition built from its `Start` event ([`LiveError::NotStarted`] for any other
    /// event, [`LiveError::Timing`] / [`LiveError::InvalidEvent`] for values no playlist can
    /// carry).
    pub fn new(config: LiveConfig, start: &LiveEvent) -> Result<Self, LiveError> {
        let LiveEvent::Start {
            target_duration,
            part_target,
            init,
            started_ms,
            part_hold_back,
        } = start
        else {
            return Err(LiveError::NotStarted);
        };
        let timing = PartTiming::new(*target_duration, *part_target)?;
        if let Some(hb) = part_hold_back {
            if super::rules::check_hold_back(*hb, *part_target).is_some() || !hb.is_finite() {
                return Err(LiveError::InvalidEvent(format!(
                    "PART-HOLD-BACK {hb} is under 3 × PART-TARGET {part_target}"
                )));
            }
        }
        // The init URI is written as a quoted-string (`EXT-X-MAP:URI="..."`).
        if init.is_empty() || init.contains('"') || init.chars().any(char::is_control) {
            return Err(LiveError::InvalidEvent(format!(
                "init URI {init:?} cannot be written into a playlist"
            )));
        }
        Ok(Self {
            config,
            timing,
            init: init.clone(),
            started_ms: *started_ms,
            part_hold_back: *part_hold_back,
            segments: VecDeque::new(),
            open: None,
            next_msn: None,
            pending_discontinuity: false,
            discontinuity_sequence: 0,
            target_duration: *target_duration,
            ended: false,
        })
    }

    /// Applies the next event of the stream. On error the state is unchanged.
    pub fn apply(&mut self, event: LiveEvent) -> Result<Applied, LiveError> {
        let applied = match event {
            LiveEvent::Start {
                target_duration,
                part_target,
                ref init,
                started_ms,
                part_hold_back,
            } => {
                let same = target_duration == self.timing.target_duration()
                    && part_target.to_bits() == self.timing.part_target().to_bits()
                    && *init == self.init
                    && started_ms == self.started_ms
                    && part_hold_back.map(f64::to_bits) == self.part_hold_back.map(f64::to_bits);
                return if same {
                    Ok(Applied::Duplicate)
                } else {
                    Err(LiveError::ConflictingStart)
                };
            }
            LiveEvent::Part {
                msn,
                part,
                duration,
                independent,
            } => self.apply_part(msn, part, duration, independent)?,
            LiveEvent::SegmentEnd {
                msn,
                duration,
                program_date_time_ms,
            } => self.apply_segment_end(msn, duration, program_date_time_ms)?,
            LiveEvent::Discontinuity { next_msn } => self.apply_discontinuity(next_msn)?,
            LiveEvent::End { last_msn } => self.apply_end(last_msn)?,
        };
        if applied == Applied::Updated {
            self.trim_window();
            self.trim_parts();
        }
        Ok(applied)
    }

    fn apply_part(
        &mut self,
        msn: u64,
        part: u32,
        duration: f64,
        independent: bool,
    ) -> Result<Applied, LiveError> {
        if self.is_below_window(msn) {
            return Ok(Applied::Duplicate);
        }
        if let Some(seg) = self.complete(msn) {
            return match seg.part_count {
                Some(count) if part >= count => Err(LiveError::Contradicts {
                    msn,
                    reason: "part beyond the last part of the completed segment",
                }),
                _ => Ok(Applied::Duplicate),
            };
        }
        if let Some(open) = &self.open {
            if msn == open.msn && part < open.next_part() {
                return Ok(Applied::Duplicate);
            }
        }
        if self.ended {
            return Err(LiveError::Ended { event: "Part" });
        }
        // Checked as if last; the previous part is re-checked below now that it is not.
        self.timing.check_part(duration, true, independent)?;
        let new = Part::new(part_name(msn, part), duration, independent);

        if let Some(open) = &mut self.open {
            if msn != open.msn {
                return Err(LiveError::MissingSegmentEnd {
                    open_msn: open.msn,
                    got: msn,
                });
            }
            let expected = open.next_part();
            if part != expected {
                return Err(LiveError::PartGap {
                    msn,
                    expected,
                    got: part,
                });
            }
            if let Some(prev) = open.parts.last() {
                self.timing
                    .check_part(prev.duration, false, prev.independent)?;
            }
            open.parts.push(new);
            return Ok(Applied::Updated);
        }

        match self.next_msn {
            Some(next) if msn > next => {
                return Err(LiveError::MsnGap {
                    expected: next,
                    got: msn,
                })
            }
            // A first part other than 0 is a gap, unless the state is joining (see below).
            Some(_) if part > 0 && !self.segments.is_empty() => {
                return Err(LiveError::PartGap {
                    msn,
                    expected: 0,
                    got: part,
                })
            }
            _ => {}
        }
        // Guard the `msn + 1` of the segment end now, so nothing later can overflow.
        next_of(msn)?;
        let discontinuity = self.next_msn == Some(msn) && self.pending_discontinuity;
        self.pending_discontinuity = false;
        self.open = Some(OpenSegment {
            msn,
            first_part: part,
            parts: vec![new],
            discontinuity,
        });
        Ok(Applied::Updated)
    }

    fn apply_segment_end(
        &mut self,
        msn: u64,
        duration: f64,
        program_date_time_ms: u64,
    ) -> Result<Applied, LiveError> {
        if self.is_below_window(msn) || self.complete(msn).is_some() {
            return Ok(Applied::Duplicate);
        }
        if self.ended {
            return Err(LiveError::Ended {
                event: "SegmentEnd",
            });
        }
        check_positive("segment", duration)?;
        let next = next_of(msn)?;
        let done = match self.open.take() {
            Some(open) if open.msn == msn => {
                let part_count = open.next_part();
                DoneSegment {
                    msn,
                    duration,
                    program_date_time_ms,
                    discontinuity: open.discontinuity,
                    part_count: Some(part_count),
                    // A segment joined mid-way cannot list its parts: their index is their
                    // position in the list.
                    parts: if open.first_part == 0 {
                        open.parts
                    } else {
                        Vec::new()
                    },
                }
            }
            Some(open) => {
                let open_msn = open.msn;
                self.open = Some(open);
                return Err(LiveError::MissingSegmentEnd { open_msn, got: msn });
            }
            None => {
                let joining = self.segments.is_empty();
                match self.next_msn {
                    Some(expected) if msn > expected => {
                        return Err(LiveError::MsnGap { expected, got: msn })
                    }
                    _ if !joining => return Err(LiveError::SegmentEndWithoutParts { msn }),
                    _ => {}
                }
                // Joining: the segment's parts went by before this state existed.
                let discontinuity = self.next_msn == Some(msn) && self.pending_discontinuity;
                self.pending_discontinuity = false;
                DoneSegment {
                    msn,
                    duration,
                    program_date_time_ms,
                    discontinuity,
                    part_count: None,
                    parts: Vec::new(),
                }
            }
        };
        self.target_duration = self.target_duration.max(round_half_up(rendered(duration)));
        self.segments.push_back(done);
        self.next_msn = Some(next);
        Ok(Applied::Updated)
    }

    fn apply_discontinuity(&mut self, next_msn: u64) -> Result<Applied, LiveError> {
        if self.is_below_window(next_msn) {
            return Ok(Applied::Duplicate);
        }
        let already = match (self.complete(next_msn), &self.open) {
            (Some(seg), _) => Some(seg.discontinuity),
            (None, Some(open)) if open.msn == next_msn => Some(open.discontinuity),
            _ => None,
        };
        match already {
            Some(true) => return Ok(Applied::Duplicate),
            Some(false) => {
                return Err(LiveError::Contradicts {
                    msn: next_msn,
                    reason: "discontinuity announced for a segment that began without one",
                })
            }
            None => {}
        }
        if self.ended {
            return Err(LiveError::Ended {
                event: "Discontinuity",
            });
        }
        if let Some(open) = &self.open {
            return Err(LiveError::MissingSegmentEnd {
                open_msn: open.msn,
                got: next_msn,
            });
        }
        match self.next_msn {
            Some(expected) if next_msn != expected => Err(LiveError::MsnGap {
                expected,
                got: next_msn,
            }),
            Some(_) if self.pending_discontinuity => Ok(Applied::Duplicate),
            _ => {
                next_of(next_msn)?;
                self.next_msn = Some(next_msn);
                self.pending_discontinuity = true;
                Ok(Applied::Updated)
            }
        }
    }

    fn apply_end(&mut self, last_msn: u64) -> Result<Applied, LiveError> {
        let last_done = self.segments.back().map(|s| s.msn);
        if self.ended {
            return if last_done.is_none() || last_done == Some(last_msn) {
                Ok(Applied::Duplicate)
            } else {
                Err(LiveError::EndMismatch {
                    last_msn,
                    actual: last_done,
                })
            };
        }
        if let Some(open) = &self.open {
            return Err(LiveError::MissingSegmentEnd {
                open_msn: open.msn,
                got: last_msn,
            });
        }
        if last_done.is_some_and(|done| done != last_msn) {
            return Err(LiveError::EndMismatch {
                last_msn,
                actual: last_done,
            });
        }
        self.ended = true;
        self.pending_discontinuity = false;
        Ok(Applied::Updated)
    }

    // ---- queries -----------------------------------------------------------------------

    /// The complete segment `msn`, if it is in the window.
    pub(super) fn complete(&self, msn: u64) -> Option<&DoneSegment> {
        let first = self.segments.front()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    /// Oldest sequence number the state knows about; everything before it exists (or existed)
    /// and is out of the window.
    pub(super) fn floor_msn(&self) -> Option<u64> {
        self.segments
            .front()
            .map(|s| s.msn)
            .or(self.open.as_ref().map(|o| o.msn))
            .or(self.next_msn)
    }

    pub(super) fn is_below_window(&self, msn: u64) -> bool {
        self.floor_msn().is_some_and(|floor| msn < floor)
    }

    /// `EXT-X-TARGETDURATION` of the rendered playlist.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// `PART-TARGET` in seconds.
    pub fn part_target(&self) -> f64 {
        self.timing.part_target()
    }

    /// `PART-HOLD-BACK` the `Start` event asked for (`None`: 3 × `PART-TARGET`).
    pub fn part_hold_back(&self) -> Option<f64> {
        self.part_hold_back
    }

    /// The rendition's targets.
    pub fn timing(&self) -> &PartTiming {
        &self.timing
    }

    /// Whether `End` was applied (`EXT-X-ENDLIST`).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// `EXT-X-MEDIA-SEQUENCE`: the oldest segment listed (or the open one, or the next one).
    pub fn media_sequence(&self) -> u64 {
        self.floor_msn().unwrap_or(0)
    }
}

/// `msn + 1`, or an error for the last u64 (no playlist can follow it).
fn next_of(msn: u64) -> Result<u64, LiveError> {
    msn.checked_add(1)
        .ok_or_else(|| LiveError::InvalidEvent(format!("media sequence number {msn} overflows")))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::live::TimingError;

    #[test]
    fn only_a_start_event_starts_a_rendition() {
        assert_eq!(
            LiveRendition::new(LiveConfig::default(), &part(0, 0)),
            Err(LiveError::NotStarted)
        );
        let bad_td = LiveEvent::Start {
            target_duration: 0,
            part_target: 0.5,
            init: "init.mp4".into(),
            started_ms: 0,
            part_hold_back: None,
        };
        assert!(matches!(
            LiveRendition::new(LiveConfig::default(), &bad_td),
            Err(LiveError::Timing(TimingError::ZeroTargetDuration))
        ));
        for init in ["", "a\"b", "a\nb"] {
            let bad_init = LiveEvent::Start {
                target_duration: 2,
                part_target: 0.5,
                init: init.into(),
                started_ms: 0,
                part_hold_back: None,
            };
            assert!(matches!(
                LiveRendition::new(LiveConfig::default(), &bad_init),
                Err(LiveError::InvalidEvent(_))
            ));
        }
    }

    #[test]
    fn repeated_start_is_a_duplicate_and_another_start_a_conflict() {
        let mut s = rendition();
        assert_eq!(s.apply(start()), Ok(Applied::Duplicate));
        let LiveEvent::Start {
            target_duration,
            part_target,
            init,
            ..
        } = start()
        else {
            unreachable!()
        };
        let other = LiveEvent::Start {
            target_duration,
            part_target,
            init,
            started_ms: 1,
            part_hold_back: None,
        };
        let err = s.apply(other).expect_err("conflict");
        assert_eq!(err, LiveError::ConflictingStart);
        assert!(err.needs_resync());
    }

    #[test]
    fn parts_in_order_then_segment_end() {
        let mut s = rendition();
        assert_eq!(s.last_msn(), None);
        assert_eq!(s.apply(part(0, 0)), Ok(Applied::Updated));
        assert_eq!(s.apply(part(0, 1)), Ok(Applied::Updated));
        assert_eq!((s.last_msn(), s.last_part()), (Some(0), Some(1)));
        assert_eq!(s.apply(segment_end(0, 1.0)), Ok(Applied::Updated));
        assert_eq!((s.last_msn(), s.last_part()), (Some(0), Some(1)));
        assert_eq!(s.apply(part(1, 0)), Ok(Applied::Updated));
        assert_eq!((s.last_msn(), s.last_part()), (Some(1), Some(0)));
        assert_eq!(s.next_part(), Some((1, 1)));
    }

    #[test]
    fn part_gaps_are_errors_that_ask_for_a_resync() {
        let mut s = rendition();
        s.apply(part(0, 0)).expect("part");
        let err = s.apply(part(0, 2)).expect_err("gap");
        assert_eq!(
            err,
            LiveError::PartGap {
                msn: 0,
                expected: 1,
                got: 2
            }
        );
        assert!(err.needs_resync());
        // The state is unchanged: the missing part still fits.
        assert_eq!(s.apply(part(0, 1)), Ok(Applied::Updated));
    }

    #[test]
    fn new_segment_needs_the_previous_segment_end() {
        let mut s = rendition();
        s.apply(part(0, 0)).expect("part");
        assert_eq!(
            s.apply(part(1, 0)),
            Err(LiveError::MissingSegmentEnd {
                open_msn: 0,
                got: 1
            })
        );
        s.apply(segment_end(0, 0.5)).expect("end");
        assert_eq!(
            s.apply(part(2, 0)),
            Err(LiveError::MsnGap {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            s.apply(part(1, 1)),
            Err(LiveError::PartGap {
                msn: 1,
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            s.apply(segment_end(2, 0.5)),
            Err(LiveError::MsnGap {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn segment_end_needs_a_part() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        let err = s.apply(segment_end(1, 2.0)).expect_err("no parts");
        assert_eq!(err, LiveError::SegmentEndWithoutParts { msn: 1 });
        assert!(err.needs_resync());
        s.apply(part(1, 0)).expect("part");
        assert_eq!(
            s.apply(segment_end(2, 2.0)),
            Err(LiveError::MissingSegmentEnd {
                open_msn: 1,
                got: 2
            })
        );
    }

    #[test]
    fn redeliveries_are_ignored() {
        let mut s = rendition();
        let events = segment_events(0, 4);
        for e in &events {
            s.apply(e.clone()).expect("first delivery");
        }
        s.apply(part(1, 0)).expect("next");
        s.apply(part(1, 1)).expect("next");
        let before = s.clone();
        // A replay of the whole stream so far, as after an edge reconnect.
        assert_eq!(s.apply(start()), Ok(Applied::Duplicate));
        for e in events {
            assert_eq!(s.apply(e), Ok(Applied::Duplicate));
        }
        assert_eq!(s.apply(part(1, 0)), Ok(Applied::Duplicate));
        assert_eq!(s.apply(part(1, 1)), Ok(Applied::Duplicate));
        assert_eq!(s, before);
    }

    #[test]
    fn redeliveries_that_contradict_the_state_are_errors() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        let err = s.apply(part(0, 4)).expect_err("beyond the segment");
        assert!(matches!(err, LiveError::Contradicts { msn: 0, .. }));
        assert!(matches!(
            s.apply(LiveEvent::Discontinuity { next_msn: 0 }),
            Err(LiveError::Contradicts { msn: 0, .. })
        ));
    }

    #[test]
    fn durations_are_checked() {
        let mut s = rendition();
        assert!(matches!(
            s.apply(part_d(0, 0, 0.6, true)),
            Err(LiveError::Timing(TimingError::PartTooLong { .. }))
        ));
        assert!(matches!(
            s.apply(part_d(0, 0, f64::NAN, true)),
            Err(LiveError::Timing(TimingError::InvalidDuration { .. }))
        ));
        // A short part is fine while it may be the last of its segment...
        s.apply(part_d(0, 0, 0.2, false)).expect("short last part");
        // ...and an error once another part follows it.
        assert!(matches!(
            s.apply(part(0, 1)),
            Err(LiveError::Timing(TimingError::PartTooShort { .. }))
        ));
        assert!(matches!(
            s.apply(segment_end(0, -1.0)),
            Err(LiveError::Timing(TimingError::InvalidDuration { .. }))
        ));
        // Independent parts may be short anywhere.
        let mut s = rendition();
        s.apply(part_d(0, 0, 0.2, true)).expect("short independent");
        s.apply(part(0, 1)).expect("follows an independent part");
    }

    #[test]
    fn sequence_numbers_cannot_overflow() {
        let mut s = rendition();
        assert!(matches!(
            s.apply(part(u64::MAX, 0)),
            Err(LiveError::InvalidEvent(_))
        ));
        assert!(matches!(
            s.apply(LiveEvent::Discontinuity { next_msn: u64::MAX }),
            Err(LiveError::InvalidEvent(_))
        ));
    }

    #[test]
    fn end_closes_the_stream() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        assert_eq!(
            s.apply(LiveEvent::End { last_msn: 1 }),
            Err(LiveError::MissingSegmentEnd {
                open_msn: 1,
                got: 1
            })
        );
        s.apply(segment_end(1, 0.5)).expect("end of 1");
        assert_eq!(
            s.apply(LiveEvent::End { last_msn: 0 }),
            Err(LiveError::EndMismatch {
                last_msn: 0,
                actual: Some(1)
            })
        );
        assert_eq!(
            s.apply(LiveEvent::End { last_msn: 1 }),
            Ok(Applied::Updated)
        );
        assert!(s.ended());
        assert_eq!(s.next_part(), None);
        assert_eq!(s.preload_hint(), None);
        assert_eq!(
            s.apply(LiveEvent::End { last_msn: 1 }),
            Ok(Applied::Duplicate)
        );
        assert_eq!(s.apply(part(0, 1)), Ok(Applied::Duplicate), "replayed");
        assert_eq!(s.apply(part(2, 0)), Err(LiveError::Ended { event: "Part" }));
        assert_eq!(
            s.apply(segment_end(2, 1.0)),
            Err(LiveError::Ended {
                event: "SegmentEnd"
            })
        );
        assert_eq!(
            s.apply(LiveEvent::Discontinuity { next_msn: 2 }),
            Err(LiveError::Ended {
                event: "Discontinuity"
            })
        );
    }

    #[test]
    fn discontinuity_only_between_segments() {
        let mut s = rendition();
        s.apply(part(0, 0)).expect("part");
        assert_eq!(
            s.apply(LiveEvent::Discontinuity { next_msn: 1 }),
            Err(LiveError::MissingSegmentEnd {
                open_msn: 0,
                got: 1
            })
        );
        s.apply(segment_end(0, 0.5)).expect("end");
        assert_eq!(
            s.apply(LiveEvent::Discontinuity { next_msn: 2 }),
            Err(LiveError::MsnGap {
                expected: 1,
                got: 2
            })
        );
        let d = LiveEvent::Discontinuity { next_msn: 1 };
        assert_eq!(s.apply(d.clone()), Ok(Applied::Updated));
        assert_eq!(s.apply(d.clone()), Ok(Applied::Duplicate));
        s.apply(part(1, 0)).expect("part after the discontinuity");
        assert_eq!(s.apply(d.clone()), Ok(Applied::Duplicate));
        s.apply(segment_end(1, 0.5)).expect("end");
        assert_eq!(s.apply(d), Ok(Applied::Duplicate));
        assert!(s.complete(1).is_some_and(|seg| seg.discontinuity));
    }
}
