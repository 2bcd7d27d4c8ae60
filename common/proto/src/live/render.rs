//! The media playlist of a [`LiveRendition`]: a [`MediaPlaylist`] built from the state, valid
//! LL-HLS by construction (every test runs [`MediaPlaylist::validate`] on it).
//!
//! - Header from [`MediaPlaylist::live`]: version 9, `CAN-BLOCK-RELOAD=YES`,
//!   `PART-HOLD-BACK` = 3 × `PART-TARGET` unless `Start` asked for more, `CAN-SKIP-UNTIL` = 6 × TD (rfc8216bis §4.4.3.8),
//!   `EXT-X-MAP` of the init segment; `PLAYLIST-TYPE:EVENT` for an unbounded window.
//! - `EXT-X-PROGRAM-DATE-TIME` on the first segment listed and on every segment after a
//!   discontinuity (RFC 8216 §4.3.2.6, rfc8216bis §6.2.1 "SHOULD apply an
//!   EXT-X-PROGRAM-DATE-TIME tag to every segment that has an EXT-X-DISCONTINUITY"); the other
//!   dates follow from the durations.
//! - Parts of the segments near the live edge, pending parts of the open segment, one
//!   `EXT-X-PRELOAD-HINT:TYPE=PART` for the next part (§4.4.5.3, §6.2.6), none after
//!   `EXT-X-ENDLIST`.
//! - Delta updates (§6.2.5.1): with [`PlaylistOpts::skip`], the segments further from the end
//!   than `CAN-SKIP-UNTIL` become `EXT-X-SKIP:SKIPPED-SEGMENTS=n`; ignored once the playlist
//!   has ended (§6.2.5.1: "MUST ignore the _HLS_skip directive if ... it contains an
//!   EXT-X-ENDLIST tag"). `_HLS_skip=v2` is answered the same way: this model has no
//!   `EXT-X-DATERANGE` tags to skip.

use super::date_time::format_rfc3339_millis;
use super::state::{LiveRendition, Window};
use super::timing::rendered;
use crate::keys::{part_name, segment_name};
use crate::playlist::{MediaPlaylist, PlaylistType, PreloadHint, RenditionReport, Segment};

/// Tolerance of the skip boundary comparison: summing durations in another order than the
/// validator may differ by float noise; this keeps the delta on the validator's side of its
/// own 1e-9 tolerance.
const SKIP_TOLERANCE: f64 = 1e-10;

/// What a request adds to the playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaylistOpts {
    /// Render a delta update (`_HLS_skip=YES` or `v2`), when the playlist advertises
    /// `CAN-SKIP-UNTIL` and has not ended.
    pub skip: bool,
    /// `EXT-X-RENDITION-REPORT` for every other rendition of the stream (see
    /// [`LiveRendition::rendition_report`]).
    pub rendition_reports: Vec<RenditionReport>,
}

impl LiveRendition {
    /// The media playlist as of now.
    pub fn playlist(&self, opts: &PlaylistOpts) -> MediaPlaylist {
        let mut pl = MediaPlaylist::live(
            self.target_duration(),
            self.part_target(),
            self.init.clone(),
        );
        if let (Some(hb), Some(sc)) = (self.part_hold_back(), pl.server_control.as_mut()) {
            sc.part_hold_back = Some(hb);
        }
        if self.config.window == Window::Unbounded {
            pl.playlist_type = Some(PlaylistType::Event);
        }
        pl.media_sequence = self.media_sequence();
        pl.discontinuity_sequence = self.discontinuity_sequence;
        pl.segments = self
            .segments
            .iter()
            .enumerate()
            .map(|(index, seg)| Segment {
                uri: segment_name(seg.msn),
                duration: seg.duration,
                title: String::new(),
                program_date_time: (index == 0 || seg.discontinuity)
                    .then(|| format_rfc3339_millis(seg.program_date_time_ms)),
                discontinuity: seg.discontinuity,
                parts: seg.parts.clone(),
            })
            .collect();
        pl.pending_parts = self.listed_open_parts().to_vec();
        pl.preload_hint = self.preload_hint().map(|(msn, part)| PreloadHint {
            uri: part_name(msn, part),
        });
        pl.rendition_reports = opts.rendition_reports.clone();
        pl.end_list = self.ended();
        if opts.skip && !pl.end_list {
            apply_skip(&mut pl, self);
        }
        pl
    }

    /// This rendition as another rendition's `EXT-X-RENDITION-REPORT` (`uri` relative to that
    /// playlist, e.g. `../720p/index.m3u8`); `None` while nothing is listed.
    pub fn rendition_report(&self, uri: impl Into<String>) -> Option<RenditionReport> {
        Some(RenditionReport {
            uri: uri.into(),
            last_msn: self.last_msn()?,
            last_part: self.last_part().map(u64::from),
        })
    }
}

/// Turns `pl` into a delta update when it advertises `CAN-SKIP-UNTIL`: skips the oldest
/// segments as long as the rest still spans the Skip Boundary (what
/// [`MediaPlaylist::validate`] checks), and dates the first segment left so a client that
/// lost its copy of the skipped part still has a date.
fn apply_skip(pl: &mut MediaPlaylist, state: &LiveRendition) {
    let Some(boundary) = pl.server_control.as_ref().and_then(|sc| sc.can_skip_until) else {
        return;
    };
    let boundary: f64 = format!("{boundary:.3}").parse().unwrap_or(boundary);
    let mut remaining: f64 = pl.segments.iter().map(|s| rendered(s.duration)).sum();
    let mut skipped = 0usize;
    for seg in &pl.segments {
        let rest = remaining - rendered(seg.duration);
        if rest + SKIP_TOLERANCE < boundary {
            break;
        }
        remaining = rest;
        skipped += 1;
    }
    if skipped == 0 {
        return;
    }
    pl.skipped_segments = skipped as u64;
    let first_msn = pl.media_sequence.saturating_add(skipped as u64);
    if let (Some(seg), Some(ms)) = (
        pl.segments.get_mut(skipped),
        state.program_date_time_ms(first_msn),
    ) {
        seg.program_date_time = Some(format_rfc3339_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::live::{LiveConfig, LiveEvent};
    use crate::playlist::{parse_media, ServerControl};

    fn hint(pl: &MediaPlaylist) -> Option<&str> {
        pl.preload_hint.as_ref().map(|h| h.uri.as_str())
    }

    #[test]
    fn live_playlist_header_and_segments() {
        let mut s = rendition();
        for msn in 0..3 {
            push_segment(&mut s, msn, 4);
        }
        s.apply(part(3, 0)).expect("part");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.version, 9);
        assert_eq!(pl.target_duration, 2);
        assert_eq!(pl.playlist_type, None);
        assert_eq!(pl.map_uri.as_deref(), Some("init.mp4"));
        assert_eq!(pl.part_target, Some(0.5));
        let sc = pl.server_control.as_ref().expect("server control");
        assert!(sc.can_block_reload);
        assert_eq!(sc.can_skip_until, Some(12.0));
        let uris: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["seg0.m4s", "seg1.m4s", "seg2.m4s"]);
        assert_eq!(pl.pending_parts.len(), 1);
        assert_eq!(pl.pending_parts[0].uri, "part3.0.m4s");
        assert!(pl.pending_parts[0].independent);
        assert!(!pl.end_list);
    }

    #[test]
    fn program_date_time_on_the_first_segment_and_after_discontinuities() {
        let mut s = rendition();
        for msn in 0..3 {
            push_segment(&mut s, msn, 4);
        }
        s.apply(LiveEvent::Discontinuity { next_msn: 3 })
            .expect("d");
        push_segment(&mut s, 3, 4);
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        let dates: Vec<Option<&str>> = pl
            .segments
            .iter()
            .map(|s| s.program_date_time.as_deref())
            .collect();
        assert_eq!(
            dates,
            [
                Some("2026-11-27T08:00:00.000Z"),
                None,
                None,
                Some("2026-11-27T08:00:06.000Z")
            ]
        );
        let flags: Vec<bool> = pl.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, false, false, true]);
        let text = pl.render();
        assert!(text.contains(
            "seg2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-27T08:00:06.000Z\n\
             #EXT-X-PART:DURATION=0.50000,URI=\"part3.0.m4s\",INDEPENDENT=YES\n"
        ));
    }

    #[test]
    fn preload_hint_names_the_next_part() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        // After a segment end: part 0 of the next segment.
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(hint(&pl), Some("part1.0.m4s"));
        assert!(pl.pending_parts.is_empty());
        s.apply(part(1, 0)).expect("part");
        s.apply(part(1, 1)).expect("part");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(hint(&pl), Some("part1.2.m4s"));
        assert_eq!(pl.pending_parts.len(), 2);
    }

    #[test]
    fn a_short_trailing_part_waits_for_its_segment_end() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        s.apply(part_d(1, 1, 0.2, false))
            .expect("short part: the segment ends here");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.pending_parts.len(), 1, "the short part is held back");
        assert_eq!(
            hint(&pl),
            Some("part1.1.m4s"),
            "and hinted: it is already there"
        );
        assert_eq!((s.last_msn(), s.last_part()), (Some(1), Some(0)));
        assert!(s.has(1, Some(0)) && !s.has(1, Some(1)));
        assert_eq!(
            crate::live::preload_part_ready(&s, 1, 1),
            crate::live::PartStatus::Ready
        );
        s.apply(segment_end(1, 0.7)).expect("end");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.segments[1].parts.len(), 2);
        assert_eq!(hint(&pl), Some("part2.0.m4s"));
        assert!(s.has(1, Some(1)));
        // A short first part is held back the same way.
        s.apply(part_d(2, 0, 0.1, true)).expect("short first part");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert!(pl.pending_parts.is_empty());
        assert_eq!(hint(&pl), Some("part2.0.m4s"));
        assert_eq!(s.last_msn(), Some(1));
    }

    #[test]
    fn no_hint_and_no_pending_parts_before_a_discontinuity_segment_completes() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(LiveEvent::Discontinuity { next_msn: 1 })
            .expect("d");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(
            hint(&pl),
            None,
            "the hinted part would splice a new timeline"
        );
        s.apply(part(1, 0)).expect("part");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(hint(&pl), None);
        assert!(pl.pending_parts.is_empty());
        assert_eq!(s.last_msn(), Some(0));
        s.apply(segment_end(1, 0.5)).expect("end");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(hint(&pl), Some("part2.0.m4s"));
        assert!(pl.segments[1].discontinuity);
        assert_eq!(pl.segments[1].parts.len(), 1, "complete: parts listed");
    }

    #[test]
    fn ended_playlist_has_endlist_and_no_hint() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        push_segment(&mut s, 1, 3);
        s.apply(LiveEvent::End { last_msn: 1 }).expect("end");
        let pl = checked(s.playlist(&PlaylistOpts {
            skip: true,
            rendition_reports: Vec::new(),
        }));
        assert!(pl.end_list);
        assert_eq!(pl.preload_hint, None);
        assert!(pl.pending_parts.is_empty());
        assert_eq!(pl.skipped_segments, 0, "_HLS_skip is ignored after ENDLIST");
        assert!(pl.render().ends_with("seg1.m4s\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn unbounded_window_is_an_event_playlist() {
        let mut s = LiveRendition::new(LiveConfig::unbounded(), &start()).expect("start");
        for msn in 0..40 {
            push_segment(&mut s, msn, 4);
        }
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.playlist_type, Some(PlaylistType::Event));
        assert_eq!(pl.segments.len(), 40);
        assert_eq!(pl.media_sequence, 0);
        assert!(pl.render().contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        s.apply(LiveEvent::End { last_msn: 39 }).expect("end");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(
            pl.playlist_type,
            Some(PlaylistType::Event),
            "type never changes"
        );
        assert!(pl.end_list);
    }

    #[test]
    fn discontinuity_sequence_is_rendered_once_a_discontinuity_leaves() {
        let mut s = LiveRendition::new(LiveConfig::sliding(3), &start()).expect("start");
        push_segment(&mut s, 0, 4);
        s.apply(LiveEvent::Discontinuity { next_msn: 1 })
            .expect("d");
        for msn in 1..6 {
            push_segment(&mut s, msn, 4);
        }
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.media_sequence, 3);
        assert_eq!(pl.discontinuity_sequence, 1);
        assert!(pl.render().contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    }

    #[test]
    fn skip_counts_follow_can_skip_until() {
        let mut s = rendition();
        // 2 s segments, CAN-SKIP-UNTIL = 12 s.
        for msn in 0..6 {
            push_segment(&mut s, msn, 4);
        }
        let skip = PlaylistOpts {
            skip: true,
            ..PlaylistOpts::default()
        };
        assert_eq!(
            checked(s.playlist(&skip)).skipped_segments,
            0,
            "12 s: nothing"
        );
        push_segment(&mut s, 6, 4);
        assert_eq!(checked(s.playlist(&skip)).skipped_segments, 1);
        for msn in 7..20 {
            push_segment(&mut s, msn, 4);
        }
        let pl = checked(s.playlist(&skip));
        assert_eq!(
            pl.skipped_segments, 14,
            "20 segments, the last 6 (12 s) stay"
        );
        assert_eq!(
            pl.segments[14].program_date_time.as_deref(),
            Some("2026-11-27T08:00:28.000Z"),
            "the first segment left is dated"
        );
        assert_eq!(
            checked(s.playlist(&PlaylistOpts::default())).skipped_segments,
            0
        );
        // A short last segment: the last 6 segments span 10.5 s, so 7 stay (14 of 21 go).
        s.apply(part(20, 0)).expect("part");
        s.apply(segment_end(20, 0.5)).expect("end");
        assert_eq!(checked(s.playlist(&skip)).skipped_segments, 14);
        let text = s.playlist(&skip).render();
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n"));
        assert!(!text.contains("seg13.m4s") && text.contains("seg14.m4s"));
    }

    #[test]
    fn skip_only_when_advertised() {
        let mut s = rendition();
        for msn in 0..20 {
            push_segment(&mut s, msn, 4);
        }
        let mut pl = s.playlist(&PlaylistOpts::default());
        pl.server_control = Some(ServerControl {
            can_skip_until: None,
            ..pl.server_control.clone().unwrap_or_default()
        });
        apply_skip(&mut pl, &s);
        assert_eq!(pl.skipped_segments, 0);
        checked(pl);
    }

    #[test]
    fn rendition_reports_are_passed_through() {
        let mut s = rendition();
        assert_eq!(s.rendition_report("../480p/index.m3u8"), None);
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        let report = s.rendition_report("../480p/index.m3u8").expect("report");
        assert_eq!((report.last_msn, report.last_part), (1, Some(0)));
        let pl = checked(s.playlist(&PlaylistOpts {
            skip: false,
            rendition_reports: vec![report.clone()],
        }));
        assert_eq!(pl.rendition_reports, [report]);
        assert!(pl.render().contains(
            "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=1,LAST-PART=0\n"
        ));
    }

    #[test]
    fn long_segment_raises_targetduration_in_the_playlist() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        s.apply(segment_end(1, 2.5)).expect("end");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.target_duration, 3);
        assert_eq!(
            pl.server_control.and_then(|sc| sc.can_skip_until),
            Some(18.0)
        );
    }

    #[test]
    fn before_any_segment_the_playlist_is_empty_but_valid() {
        let s = rendition();
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert!(pl.segments.is_empty() && pl.pending_parts.is_empty());
        assert_eq!(pl.preload_hint, None);
        let mut s = rendition();
        s.apply(part(5, 0)).expect("first part");
        let pl = checked(s.playlist(&PlaylistOpts::default()));
        assert_eq!(pl.media_sequence, 5);
        assert_eq!(hint(&pl), Some("part5.1.m4s"));
        let parsed = parse_media(&pl.render()).expect("parse");
        assert_eq!(parsed.pending_parts.len(), 1);
    }
}
