//! Validation of a [`MediaPlaylist`] against RFC 8216 / rfc8216bis and the LL-HLS rules of
//! DESIGN.md, plus the derived values a packager needs to stay valid (`TARGETDURATION`,
//! `EXT-X-VERSION`). Durations are judged as rendered (rounded to the tag's precision),
//! because that is the text a client checks.
//!
//! Sections: RFC 8216 §4.3.3.1 (`EXTINF` rounded ≤ `TARGETDURATION`), §7 and rfc8216bis §8
//! (versions), rfc8216bis §4.4.3.7–4.4.3.8 (`PART-TARGET`, hold backs, `CAN-SKIP-UNTIL`),
//! §4.4.4.9 (part durations), §4.4.5.2 and §6.2.5.1 (delta updates).

use super::media::{MediaPlaylist, Part};
use super::render::{
    check_number, check_quoted, check_text, rendered, round_half_up, COARSE_DECIMALS,
    DURATION_DECIMALS, PART_TARGET_DECIMALS,
};
use super::PlaylistError;

/// Absorbs binary floating-point noise in products such as `0.85 * PART-TARGET`; far below
/// the 10 µs rendering precision.
const EPSILON: f64 = 1e-9;

impl MediaPlaylist {
    /// Lowest `EXT-X-VERSION` the rendered tags need: 3 for decimal `EXTINF`, 6 for
    /// `EXT-X-MAP` (RFC 8216 §7), 9 for `EXT-X-SKIP` (rfc8216bis §8). The other LL-HLS tags
    /// need no particular version.
    pub fn required_version(&self) -> u8 {
        if self.skipped_segments > 0 {
            9
        } else if self.map_uri.is_some() {
            6
        } else {
            3
        }
    }

    /// Smallest valid `EXT-X-TARGETDURATION` for the segments: the largest rendered `EXTINF`
    /// rounded half up, at least 1.
    pub fn required_target_duration(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| round_half_up(rendered(s.duration, DURATION_DECIMALS)))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// Checks the model against the spec and DESIGN.md's LL-HLS rules, judging durations as
    /// rendered:
    /// - `EXT-X-VERSION` ≥ [`MediaPlaylist::required_version`], `TARGETDURATION` ≥ 1;
    /// - every `EXTINF` rounded to the nearest integer ≤ `TARGETDURATION`;
    /// - parts need `PART-TARGET`; every part ≤ `PART-TARGET`; every part except the last of
    ///   its segment (or of the pending parts) and `INDEPENDENT=YES` parts ≥ 85 % of it
    ///   (rfc8216bis §4.4.4.9 exempts both);
    /// - `PART-HOLD-BACK` present with parts and ≥ 2 x `PART-TARGET` (the spec's MUST; DESIGN's
    ///   3x is what [`MediaPlaylist::live`] sets); `HOLD-BACK` ≥ 3 x TD; `CAN-SKIP-UNTIL` ≥ 6 x TD;
    /// - `EXT-X-SKIP` only with `CAN-SKIP-UNTIL`, for at most all segments, leaving at least
    ///   `CAN-SKIP-UNTIL` seconds of segments;
    /// - no preload hint after `EXT-X-ENDLIST` (at most one is guaranteed by the type);
    /// - every URI, title and date renderable (no `"`, no control characters, URIs non-empty).
    pub fn validate(&self) -> Result<(), PlaylistError> {
        let required = self.required_version();
        if self.version < required {
            return Err(PlaylistError::VersionTooLow {
                required,
                actual: self.version,
            });
        }
        let td = self.target_duration;
        if td == 0 {
            return Err(PlaylistError::ZeroTargetDuration);
        }
        if let Some(map) = &self.map_uri {
            check_quoted("EXT-X-MAP URI", map)?;
        }

        let part_target = match self.part_target {
            None => None,
            Some(pt) => {
                check_number("PART-TARGET", pt)?;
                let pt_r = rendered(pt, PART_TARGET_DECIMALS);
                if pt_r <= 0.0 {
                    return Err(PlaylistError::InvalidPartTarget(pt));
                }
                Some(pt_r)
            }
        };
        let has_parts = !self.pending_parts.is_empty()
            || self.preload_hint.is_some()
            || self.segments.iter().any(|s| !s.parts.is_empty());
        if has_parts && part_target.is_none() {
            return Err(PlaylistError::MissingPartTarget);
        }

        for (i, seg) in self.segments.iter().enumerate() {
            let msn = self.msn_at(i);
            check_quoted("segment URI", &seg.uri)?;
            check_text("EXTINF title", &seg.title)?;
            if let Some(pdt) = &seg.program_date_time {
                check_quoted("EXT-X-PROGRAM-DATE-TIME", pdt)?;
            }
            check_number("segment duration", seg.duration)?;
            let d = rendered(seg.duration, DURATION_DECIMALS);
            if round_half_up(d) > td {
                return Err(PlaylistError::SegmentExceedsTargetDuration {
                    msn,
                    duration: d,
                    target_duration: td,
                });
            }
            if let Some(pt) = part_target {
                check_parts(msn, &seg.parts, pt)?;
            }
        }
        if let Some(pt) = part_target {
            // The pending segment's last part may be the final, shorter one: check_parts
            // exempts the last part either way.
            check_parts(self.msn_at(self.segments.len()), &self.pending_parts, pt)?;
        }

        let sc = self.server_control.as_ref();
        if let Some(pt) = part_target {
            let phb = sc
                .and_then(|s| s.part_hold_back)
                .ok_or(PlaylistError::MissingPartHoldBack)?;
            check_number("PART-HOLD-BACK", phb)?;
            let phb = rendered(phb, COARSE_DECIMALS);
            if phb + EPSILON < 2.0 * pt {
                return Err(PlaylistError::PartHoldBackTooSmall {
                    part_hold_back: phb,
                    part_target: pt,
                });
            }
        }
        if let Some(sc) = sc {
            if let Some(phb) = sc.part_hold_back {
                check_number("PART-HOLD-BACK", phb)?;
            }
            if let Some(hb) = sc.hold_back {
                check_number("HOLD-BACK", hb)?;
                let hb = rendered(hb, COARSE_DECIMALS);
                if hb + EPSILON < 3.0 * td as f64 {
                    return Err(PlaylistError::HoldBackTooSmall {
                        hold_back: hb,
                        target_duration: td,
                    });
                }
            }
            if let Some(csu) = sc.can_skip_until {
                check_number("CAN-SKIP-UNTIL", csu)?;
                let csu = rendered(csu, COARSE_DECIMALS);
                if csu + EPSILON < 6.0 * td as f64 {
                    return Err(PlaylistError::CanSkipUntilTooSmall {
                        can_skip_until: csu,
                        target_duration: td,
                    });
                }
            }
        }

        if self.skipped_segments > 0 {
            let csu = sc
                .and_then(|s| s.can_skip_until)
                .ok_or(PlaylistError::SkipNotAdvertised)?;
            let skipped = usize::try_from(self.skipped_segments)
                .ok()
                .filter(|&n| n <= self.segments.len())
                .ok_or(PlaylistError::SkipBeyondPlaylist {
                    skipped: self.skipped_segments,
                    segments: self.segments.len(),
                })?;
            let remaining: f64 = self.segments[skipped..]
                .iter()
                .map(|s| rendered(s.duration, DURATION_DECIMALS))
                .sum();
            let csu = rendered(csu, COARSE_DECIMALS);
            if remaining + EPSILON < csu {
                return Err(PlaylistError::SkipInsideBoundary {
                    remaining,
                    can_skip_until: csu,
                });
            }
        }

        if let Some(hint) = &self.preload_hint {
            check_quoted("EXT-X-PRELOAD-HINT URI", &hint.uri)?;
            if self.end_list {
                return Err(PlaylistError::PreloadHintAfterEndList);
            }
        }
        for r in &self.rendition_reports {
            check_quoted("EXT-X-RENDITION-REPORT URI", &r.uri)?;
        }
        Ok(())
    }

    /// Media sequence number of `segments[index]` (or of the pending segment for
    /// `index == segments.len()`).
    fn msn_at(&self, index: usize) -> u64 {
        self.media_sequence.saturating_add(index as u64)
    }
}

/// Part rules of one segment: ≤ `part_target` always; ≥ 85 % of it unless last or independent.
fn check_parts(msn: u64, parts: &[Part], part_target: f64) -> Result<(), PlaylistError> {
    for (index, p) in parts.iter().enumerate() {
        check_quoted("EXT-X-PART URI", &p.uri)?;
        check_number("part duration", p.duration)?;
        // Both sides are rendered with the same precision, so equal text compares equal.
        let duration = rendered(p.duration, DURATION_DECIMALS);
        if duration > part_target {
            return Err(PlaylistError::PartExceedsPartTarget {
                msn,
                index,
                duration,
                part_target,
            });
        }
        let last = index + 1 == parts.len();
        if !last && !p.independent && duration + EPSILON < 0.85 * part_target {
            return Err(PlaylistError::PartTooShort {
                msn,
                index,
                duration,
                part_target,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::media::fixtures::{live, vod};
    use super::*;
    use crate::playlist::{PreloadHint, Segment};
    use proptest::prelude::*;

    #[test]
    fn required_target_duration_rounds_half_up() {
        let mut p = MediaPlaylist::vod(1, "init.mp4");
        assert_eq!(p.required_target_duration(), 1, "empty playlist");
        p.segments = vec![Segment::new("a", 0.2)];
        assert_eq!(p.required_target_duration(), 1, "at least 1");
        p.segments = vec![Segment::new("a", 2.49)];
        assert_eq!(p.required_target_duration(), 2);
        p.segments = vec![Segment::new("a", 2.5)];
        assert_eq!(p.required_target_duration(), 3);
        p.segments = vec![Segment::new("a", 2.499_996)];
        assert_eq!(p.required_target_duration(), 3, "renders as 2.50000");
        p.segments = vec![
            Segment::new("a", 1.0),
            Segment::new("b", 6.006),
            Segment::new("c", 4.0),
        ];
        assert_eq!(p.required_target_duration(), 6);
    }

    #[test]
    fn required_version() {
        let mut p = vod();
        assert_eq!(p.required_version(), 6);
        p.map_uri = None;
        assert_eq!(p.required_version(), 3);
        let mut l = live();
        assert_eq!(l.required_version(), 6);
        l.skipped_segments = 1;
        assert_eq!(l.required_version(), 9);
    }

    #[test]
    fn err_version_too_low() {
        let mut p = vod();
        p.version = 5;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::VersionTooLow {
                required: 6,
                actual: 5
            })
        );
        let mut p = live();
        p.version = 6;
        p.skipped_segments = 1;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::VersionTooLow {
                required: 9,
                actual: 6
            })
        );
    }

    #[test]
    fn err_zero_target_duration() {
        let mut p = MediaPlaylist::vod(0, "init.mp4");
        p.segments.clear();
        assert_eq!(p.validate(), Err(PlaylistError::ZeroTargetDuration));
    }

    #[test]
    fn err_invalid_text() {
        type Mutation = fn(&mut MediaPlaylist);
        let cases: [(&str, Mutation); 8] = [
            ("EXT-X-MAP URI", |p| p.map_uri = Some("in\"it.mp4".into())),
            ("segment URI", |p| p.segments[0].uri = "seg\n0.m4s".into()),
            ("segment URI", |p| p.segments[0].uri = String::new()),
            ("EXTINF title", |p| p.segments[0].title = "a\rb".into()),
            ("EXT-X-PROGRAM-DATE-TIME", |p| {
                p.segments[0].program_date_time = Some("x\n".into())
            }),
            ("EXT-X-PART URI", |p| p.pending_parts[0].uri = "p\"".into()),
            ("EXT-X-PRELOAD-HINT URI", |p| {
                p.preload_hint.as_mut().unwrap().uri = "\n".into()
            }),
            ("EXT-X-RENDITION-REPORT URI", |p| {
                p.rendition_reports[1].uri = "a\"b".into()
            }),
        ];
        for (field, mutate) in cases {
            let mut p = live();
            mutate(&mut p);
            match p.validate() {
                Err(PlaylistError::InvalidText { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn err_invalid_number() {
        let mut p = vod();
        p.segments[1].duration = f64::NAN;
        assert!(matches!(
            p.validate(),
            Err(PlaylistError::InvalidNumber {
                what: "segment duration",
                ..
            })
        ));
        let mut p = live();
        p.pending_parts[0].duration = -0.5;
        assert!(matches!(
            p.validate(),
            Err(PlaylistError::InvalidNumber {
                what: "part duration",
                ..
            })
        ));
        let mut p = live();
        p.server_control.as_mut().unwrap().hold_back = Some(f64::INFINITY);
        assert!(matches!(
            p.validate(),
            Err(PlaylistError::InvalidNumber {
                what: "HOLD-BACK",
                ..
            })
        ));
    }

    #[test]
    fn err_segment_exceeds_target_duration() {
        let mut p = vod();
        p.segments[2].duration = 2.5;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::SegmentExceedsTargetDuration {
                msn: 2,
                duration: 2.5,
                target_duration: 2
            })
        );
        p.segments[2].duration = 2.49999;
        p.validate().unwrap();
    }

    #[test]
    fn err_missing_part_target() {
        let mut p = vod();
        p.segments[0].parts.push(Part::new("p", 0.5, true));
        assert_eq!(p.validate(), Err(PlaylistError::MissingPartTarget));
        let mut p = vod();
        p.end_list = false;
        p.preload_hint = Some(PreloadHint { uri: "p".into() });
        assert_eq!(p.validate(), Err(PlaylistError::MissingPartTarget));
    }

    #[test]
    fn err_invalid_part_target() {
        let mut p = live();
        p.part_target = Some(0.000_001);
        assert_eq!(
            p.validate(),
            Err(PlaylistError::InvalidPartTarget(0.000_001))
        );
    }

    #[test]
    fn err_part_exceeds_part_target() {
        let mut p = live();
        p.segments[7].parts[3].duration = 0.50001;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::PartExceedsPartTarget {
                msn: 107,
                index: 3,
                duration: 0.50001,
                part_target: 0.5
            })
        );
        // Sub-precision noise that renders as 0.50000 is fine.
        p.segments[7].parts[3].duration = 0.500_004;
        p.validate().unwrap();
    }

    #[test]
    fn err_part_too_short() {
        let mut p = live();
        // Part 1 is neither last nor independent: 0.4 < 0.425.
        p.segments[6].parts[1].duration = 0.4;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::PartTooShort {
                msn: 106,
                index: 1,
                duration: 0.4,
                part_target: 0.5
            })
        );
        // Exactly 85 % passes.
        p.segments[6].parts[1].duration = 0.425;
        p.validate().unwrap();
        // The last part of a segment and independent parts are exempt.
        let mut p = live();
        p.segments[6].parts[3].duration = 0.1;
        p.segments[6].parts[2].duration = 0.1;
        p.validate().unwrap();
        // Pending parts: all but the (possibly final) last one are checked.
        let mut p = live();
        p.pending_parts[1].duration = 0.1;
        p.validate().unwrap();
        p.pending_parts.push(Part::new("part108.2.m4s", 0.5, false));
        assert!(matches!(
            p.validate(),
            Err(PlaylistError::PartTooShort {
                msn: 108,
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn err_missing_part_hold_back() {
        let mut p = live();
        p.server_control.as_mut().unwrap().part_hold_back = None;
        assert_eq!(p.validate(), Err(PlaylistError::MissingPartHoldBack));
        p.server_control = None;
        assert_eq!(p.validate(), Err(PlaylistError::MissingPartHoldBack));
    }

    #[test]
    fn err_part_hold_back_too_small() {
        let mut p = live();
        p.server_control.as_mut().unwrap().part_hold_back = Some(0.999);
        assert_eq!(
            p.validate(),
            Err(PlaylistError::PartHoldBackTooSmall {
                part_hold_back: 0.999,
                part_target: 0.5
            })
        );
        // 2x is the spec's floor; DESIGN's 3x is only the default.
        p.server_control.as_mut().unwrap().part_hold_back = Some(1.0);
        p.validate().unwrap();
    }

    #[test]
    fn err_hold_back_too_small() {
        let mut p = live();
        p.server_control.as_mut().unwrap().hold_back = Some(5.999);
        assert_eq!(
            p.validate(),
            Err(PlaylistError::HoldBackTooSmall {
                hold_back: 5.999,
                target_duration: 2
            })
        );
    }

    #[test]
    fn err_can_skip_until_too_small() {
        let mut p = live();
        p.server_control.as_mut().unwrap().can_skip_until = Some(11.9);
        assert_eq!(
            p.validate(),
            Err(PlaylistError::CanSkipUntilTooSmall {
                can_skip_until: 11.9,
                target_duration: 2
            })
        );
    }

    #[test]
    fn err_skip_rules() {
        let mut p = live();
        p.skipped_segments = 1;
        p.server_control.as_mut().unwrap().can_skip_until = None;
        assert_eq!(p.validate(), Err(PlaylistError::SkipNotAdvertised));

        let mut p = live();
        p.skipped_segments = 9;
        assert_eq!(
            p.validate(),
            Err(PlaylistError::SkipBeyondPlaylist {
                skipped: 9,
                segments: 8
            })
        );

        let mut p = live();
        p.skipped_segments = 3; // leaves 10 s < CAN-SKIP-UNTIL 12 s
        assert_eq!(
            p.validate(),
            Err(PlaylistError::SkipInsideBoundary {
                remaining: 10.0,
                can_skip_until: 12.0
            })
        );
    }

    #[test]
    fn err_preload_hint_after_end_list() {
        let mut p = live();
        p.end_list = true;
        assert_eq!(p.validate(), Err(PlaylistError::PreloadHintAfterEndList));
    }

    proptest! {
        #[test]
        fn required_target_duration_always_validates(
            durations in proptest::collection::vec(0.0f64..30.0, 0..60)
        ) {
            let mut p = MediaPlaylist::vod(1, "init.mp4");
            p.segments = durations
                .iter()
                .enumerate()
                .map(|(i, &d)| Segment::new(format!("seg{i}.m4s"), d))
                .collect();
            p.target_duration = p.required_target_duration();
            prop_assert!(p.validate().is_ok(), "{:?}", p.validate());
            let text = p.render();
            let td_line = format!("#EXT-X-TARGETDURATION:{}\n", p.target_duration);
            prop_assert!(text.contains(&td_line));
            // One smaller is always too small once there is a segment above 1 s.
            if p.target_duration > 1 {
                p.target_duration -= 1;
                prop_assert!(p.validate().is_err());
            }
        }
    }
}
