//! A fresh playlist for a request without delivery directives: held until the next part is
//! listed (at most [`FRESH_HOLD_PART_TARGETS`] part targets), so the response leaves the moment
//! the live edge moved.
//!
//! Why: a player's first request of a media playlist carries no `_HLS_msn` (it does not know
//! the sequence numbers yet), and LL-HLS players place their start position from that response
//! as if it described the live edge at the time it arrived: hls.js aims at
//! `edge + age − PART-HOLD-BACK`, with `age` counted from the response's first byte
//! (`LevelDetails.age`, `LatencyController.liveSyncPosition`). A playlist answered at once is
//! on average half a part (and, with a jittery producer, up to several parts) older than that;
//! the player starts that much further behind, and a stock hls.js (with
//! `maxLiveSyncPlaybackRate` = 1) never makes it up (docs/BENCHMARKS.md, issue 18). Answering
//! when the next part is announced makes the player's assumption true. The cost is the wait
//! itself, at most one part on a producer that keeps time, on the first request only: later
//! reloads carry directives and are held by [`crate::live::decide`] as before.
//!
//! Not a blocking reload in the §6.2.5.2 sense: the answer is always 200 with the current
//! playlist (never 503), it only comes a little later, which a server may do for any request.
//! An ended playlist, or one whose next part has no preload hint (a segment joined mid-way or
//! starting a discontinuity), is answered at once.

use std::time::Duration;

use super::blocking_reload::{Decision, ReloadQuery};
use super::state::LiveRendition;

/// Longest hold of a directive-less request, in part targets: a producer on time lists the
/// next part within one; the second absorbs its jitter. Beyond that the producer is late and
/// the request is answered with what there is.
pub const FRESH_HOLD_PART_TARGETS: f64 = 2.0;

/// The part a directive-less playlist request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshHold {
    pub msn: u64,
    pub part: u32,
}

impl FreshHold {
    /// The hold for request `q` arriving at `state`: the preload hint's part, for a request
    /// without `_HLS_msn` of a playlist that has not ended. `None`: answer as usual
    /// ([`crate::live::decide`]).
    pub fn for_request(state: &LiveRendition, q: &ReloadQuery) -> Option<Self> {
        if q.msn.is_some() || q.part.is_some() || state.ended() {
            return None;
        }
        let (msn, part) = state.preload_hint()?;
        Some(Self { msn, part })
    }

    /// How long the request may be held: [`FRESH_HOLD_PART_TARGETS`] part targets.
    pub fn limit(state: &LiveRendition) -> Duration {
        Duration::try_from_secs_f64(state.part_target() * FRESH_HOLD_PART_TARGETS)
            .unwrap_or(Duration::ZERO)
    }

    /// [`Decision::Ready`] once the part is listed, the playlist ended, or the request waited
    /// [`FreshHold::limit`]; otherwise [`Decision::Wait`] for the rest of the limit. Never 400
    /// or 503: the request asked for no particular part.
    pub fn decide(&self, state: &LiveRendition, waited: Duration) -> Decision {
        if state.ended() || state.has(self.msn, Some(self.part)) {
            return Decision::Ready;
        }
        match Self::limit(state).checked_sub(waited) {
            Some(remaining) if !remaining.is_zero() => Decision::Wait { remaining },
            _ => Decision::Ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::live::{LiveEvent, PlaylistOpts};

    fn plain() -> ReloadQuery {
        ReloadQuery::default()
    }

    /// Three segments and part 3.0 listed: the next part is 3.1.
    fn live() -> LiveRendition {
        let mut s = rendition();
        for msn in 0..3 {
            push_segment(&mut s, msn, 4);
        }
        s.apply(part(3, 0)).expect("part");
        s
    }

    #[test]
    fn a_plain_request_waits_for_the_next_part_and_gets_it() {
        let mut s = live();
        let hold = FreshHold::for_request(&s, &plain()).expect("held");
        assert_eq!(hold, FreshHold { msn: 3, part: 1 });
        // PART-TARGET 0.5 s: held for at most 1 s.
        assert_eq!(FreshHold::limit(&s), Duration::from_secs(1));
        assert_eq!(
            hold.decide(&s, Duration::ZERO),
            Decision::Wait {
                remaining: Duration::from_secs(1)
            }
        );
        s.apply(part(3, 1)).expect("part");
        assert_eq!(hold.decide(&s, Duration::from_millis(480)), Decision::Ready);
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(
            pl.pending_parts.last().map(|p| p.uri.as_str()),
            Some("part3.1.m4s"),
            "the answer lists the part it waited for"
        );
    }

    #[test]
    fn a_late_producer_gets_the_current_playlist_after_the_limit_never_a_503() {
        let s = live();
        let hold = FreshHold::for_request(&s, &plain()).expect("held");
        assert_eq!(
            hold.decide(&s, Duration::from_millis(999)),
            Decision::Wait {
                remaining: Duration::from_millis(1)
            }
        );
        assert_eq!(hold.decide(&s, Duration::from_secs(1)), Decision::Ready);
        assert_eq!(hold.decide(&s, Duration::from_secs(60)), Decision::Ready);
    }

    #[test]
    fn a_segment_end_lists_a_held_back_short_part() {
        let mut s = live();
        s.apply(part_d(3, 1, 0.2, false)).expect("short part");
        let hold = FreshHold::for_request(&s, &plain()).expect("held");
        assert_eq!(
            hold,
            FreshHold { msn: 3, part: 1 },
            "hinted, not yet listed"
        );
        assert!(matches!(
            hold.decide(&s, Duration::ZERO),
            Decision::Wait { .. }
        ));
        s.apply(segment_end(3, 0.7)).expect("end");
        assert_eq!(hold.decide(&s, Duration::ZERO), Decision::Ready);
    }

    #[test]
    fn directives_an_ended_playlist_and_no_hint_are_not_held() {
        let s = live();
        for q in [
            "_HLS_msn=3",
            "_HLS_msn=3&_HLS_part=1",
            "_HLS_msn=1&_HLS_skip=YES",
        ] {
            let q = ReloadQuery::parse(q).expect("valid");
            assert_eq!(FreshHold::for_request(&s, &q), None, "{q:?}");
        }
        // A delta update without _HLS_msn is a plain request too.
        let skip = ReloadQuery::parse("_HLS_skip=YES").expect("valid");
        assert!(FreshHold::for_request(&s, &skip).is_some());

        let mut ended = live();
        ended.apply(segment_end(3, 0.5)).expect("segment end");
        ended.apply(LiveEvent::End { last_msn: 3 }).expect("end");
        assert_eq!(FreshHold::for_request(&ended, &plain()), None);

        // A held request whose playlist ends meanwhile is answered at once.
        let mut s = live();
        let hold = FreshHold::for_request(&s, &plain()).expect("held");
        s.apply(segment_end(3, 0.5)).expect("segment end");
        s.apply(LiveEvent::End { last_msn: 3 }).expect("end");
        assert_eq!(hold.decide(&s, Duration::ZERO), Decision::Ready);

        // No hint before a discontinuity segment completes: nothing to wait for.
        let mut d = live();
        d.apply(segment_end(3, 0.5)).expect("end");
        d.apply(LiveEvent::Discontinuity { next_msn: 4 })
            .expect("d");
        assert_eq!(FreshHold::for_request(&d, &plain()), None);
    }
}
