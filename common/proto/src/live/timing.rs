//! Part and segment duration rules, for the packager (before it announces a part) and the live
//! model (which refuses events that would render an invalid playlist).
//!
//! rfc8216bis §4.4.4.9 (`EXT-X-PART`): every part ≤ `PART-TARGET`; every part except the last
//! of its Parent Segment and `INDEPENDENT=YES` parts ≥ 85 % of it (DESIGN.md "LL-HLS rules").
//! RFC 8216 §4.3.3.1 / rfc8216bis §6.2.1: a segment's `EXTINF` rounded to the nearest integer ≤
//! `EXT-X-TARGETDURATION`. Durations are judged as rendered (5 decimals, like
//! [`crate::playlist`]), because that is the text a client checks; a duration that passes here
//! passes [`crate::playlist::MediaPlaylist::validate`].

/// Decimals of `EXTINF` and `EXT-X-PART:DURATION` in the rendered playlist (same as
/// `crate::playlist`'s renderer).
const DURATION_DECIMALS: usize = 5;

/// Share of `PART-TARGET` a part must reach unless it ends its segment or is independent.
pub const MIN_PART_SHARE: f64 = 0.85;

/// Absorbs binary floating-point noise in products such as `0.85 * PART-TARGET`; the same
/// tolerance as the playlist validator, far below the 10 µs rendering precision.
const EPSILON: f64 = 1e-9;

/// `value` as a client reads it back from the playlist text.
///
/// Formatted on the stack: the edge asks this for every blocking reload it decides (through
/// [`PartTiming::is_short`]), and a heap `String` per call showed in its profile under an
/// LL-HLS herd. Values whose text does not fit the buffer (beyond any real duration) take the
/// heap.
pub(crate) fn rendered(value: f64) -> f64 {
    use std::io::Write as _;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{value:.DURATION_DECIMALS$}").is_ok() {
        let len = cursor.position() as usize;
        if let Some(v) = std::str::from_utf8(&buf[..len])
            .ok()
            .and_then(|t| t.parse().ok())
        {
            return v;
        }
    }
    format!("{value:.DURATION_DECIMALS$}")
        .parse()
        .unwrap_or(value)
}

/// Farther than this from a threshold, rounding both sides to [`DURATION_DECIMALS`] (at most
/// 0.5e-5 each) cannot change a comparison with it.
const ROUNDING_MARGIN: f64 = 1e-4;

/// Nearest integer, halves up (the `EXTINF` ≤ `TARGETDURATION` rounding); saturates on
/// NaN/negative (0) and huge values.
pub(crate) fn round_half_up(value: f64) -> u64 {
    (value + 0.5).floor() as u64
}

/// A duration or target that breaks the timing rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimingError {
    /// `EXT-X-TARGETDURATION` must be at least one second.
    #[error("EXT-X-TARGETDURATION must be at least 1 second")]
    ZeroTargetDuration,
    /// `PART-TARGET` must be a finite number greater than 0 (as rendered).
    #[error("PART-TARGET {0} is not a finite number of seconds greater than 0")]
    InvalidPartTarget(f64),
    /// A part target longer than the segment target cannot divide a segment.
    #[error("PART-TARGET {part_target} exceeds EXT-X-TARGETDURATION {target_duration}")]
    PartTargetAboveTargetDuration {
        part_target: f64,
        target_duration: u64,
    },
    /// A part or segment duration that is not a finite number greater than 0.
    #[error("{what} duration {value} is not a finite number of seconds greater than 0")]
    InvalidDuration { what: &'static str, value: f64 },
    /// A part longer than `PART-TARGET`.
    #[error("part lasts {duration} s, more than PART-TARGET {part_target}")]
    PartTooLong { duration: f64, part_target: f64 },
    /// A part that is neither last in its segment nor independent, under 85 % of `PART-TARGET`.
    #[error(
        "part lasts {duration} s, less than 85 % of PART-TARGET {part_target} \
         (only the last part of a segment or an INDEPENDENT part may)"
    )]
    PartTooShort { duration: f64, part_target: f64 },
    /// A segment whose duration rounds above the target duration.
    #[error(
        "segment lasts {duration} s, which rounds above EXT-X-TARGETDURATION {target_duration}"
    )]
    SegmentTooLong { duration: f64, target_duration: u64 },
}

/// The timing parameters of one rendition: `EXT-X-TARGETDURATION` and `PART-TARGET`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartTiming {
    target_duration: u64,
    part_target: f64,
    /// `part_target` as the playlist writes it ([`rendered`]), computed once: every blocking
    /// reload's [`PartTiming::advance_part_limit`] needs it, and formatting a float per
    /// request showed in the herd's profile.
    part_target_rendered: f64,
}

impl PartTiming {
    /// Checks that the targets can describe a valid LL-HLS playlist: a target duration of at
    /// least 1 s and a part target in (0, target duration].
    pub fn new(target_duration: u64, part_target: f64) -> Result<Self, TimingError> {
        if target_duration == 0 {
            return Err(TimingError::ZeroTargetDuration);
        }
        if !part_target.is_finite() || rendered(part_target) <= 0.0 {
            return Err(TimingError::InvalidPartTarget(part_target));
        }
        if rendered(part_target) > target_duration as f64 {
            return Err(TimingError::PartTargetAboveTargetDuration {
                part_target,
                target_duration,
            });
        }
        Ok(Self {
            target_duration,
            part_target,
            part_target_rendered: rendered(part_target),
        })
    }

    /// `EXT-X-TARGETDURATION` in seconds.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// `PART-TARGET` in seconds.
    pub fn part_target(&self) -> f64 {
        self.part_target
    }

    /// One part's duration: ≤ `PART-TARGET`; ≥ 85 % of it unless `is_last_of_segment` or
    /// `independent` (rfc8216bis §4.4.4.9 exempts both).
    ///
    /// The packager knows whether a part ends its segment when it cuts it; the live model
    /// checks a part as "last" when it arrives and again as "not last" when the next part of
    /// the same segment arrives.
    pub fn check_part(
        &self,
        duration: f64,
        is_last_of_segment: bool,
        independent: bool,
    ) -> Result<(), TimingError> {
        check_positive("part", duration)?;
        let d = rendered(duration);
        let pt = self.part_target_rendered;
        if d > pt {
            return Err(TimingError::PartTooLong {
                duration: d,
                part_target: self.part_target,
            });
        }
        if !is_last_of_segment && !independent && self.is_short(d) {
            return Err(TimingError::PartTooShort {
                duration: d,
                part_target: self.part_target,
            });
        }
        Ok(())
    }

    /// Whether a part (as rendered) is under 85 % of `PART-TARGET`: allowed only as the last
    /// part of its segment or as an independent part.
    pub fn is_short(&self, duration: f64) -> bool {
        // Most parts are nowhere near the threshold: the comparison of the raw values is the
        // comparison of the rendered ones, without formatting either.
        let threshold = MIN_PART_SHARE * self.part_target;
        if (duration - threshold).abs() > ROUNDING_MARGIN {
            return duration < threshold;
        }
        rendered(duration) + EPSILON < MIN_PART_SHARE * self.part_target_rendered
    }

    /// One segment's duration: rounded half up, at most the target duration.
    pub fn check_segment(&self, duration: f64) -> Result<(), TimingError> {
        check_positive("segment", duration)?;
        let d = rendered(duration);
        if round_half_up(d) > self.target_duration {
            return Err(TimingError::SegmentTooLong {
                duration: d,
                target_duration: self.target_duration,
            });
        }
        Ok(())
    }

    /// rfc8216bis §6.2.5.2 Advance Part Limit: 3 / `PART-TARGET` when the part target is under
    /// one second, 3 otherwise (three seconds' worth of parts, at least three parts).
    pub fn advance_part_limit(&self) -> f64 {
        let pt = self.part_target_rendered;
        if pt < 1.0 {
            3.0 / pt
        } else {
            3.0
        }
    }
}

/// Rejects NaN, infinities, zero and negatives (a zero-length part is not media).
pub(crate) fn check_positive(what: &'static str, value: f64) -> Result<(), TimingError> {
    if value.is_finite() && rendered(value) > 0.0 {
        Ok(())
    } else {
        Err(TimingError::InvalidDuration { what, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> PartTiming {
        PartTiming::new(2, 0.5).expect("valid targets")
    }

    #[test]
    fn targets_are_checked() {
        assert_eq!(
            PartTiming::new(0, 0.5),
            Err(TimingError::ZeroTargetDuration)
        );
        for bad in [0.0, -0.5, f64::NAN, f64::INFINITY, 0.000_001] {
            assert!(
                matches!(
                    PartTiming::new(2, bad),
                    Err(TimingError::InvalidPartTarget(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            PartTiming::new(2, 2.5),
            Err(TimingError::PartTargetAboveTargetDuration { .. })
        ));
        assert!(PartTiming::new(2, 2.0).is_ok());
        assert_eq!(timing().target_duration(), 2);
        assert_eq!(timing().part_target(), 0.5);
    }

    #[test]
    fn parts_never_exceed_the_part_target() {
        let t = timing();
        assert!(t.check_part(0.5, false, false).is_ok());
        // Rounds to 0.50000 in the playlist: equal to the target.
        assert!(t.check_part(0.500_001, false, false).is_ok());
        for (last, independent) in [(false, false), (true, false), (false, true), (true, true)] {
            assert!(
                matches!(
                    t.check_part(0.500_01, last, independent),
                    Err(TimingError::PartTooLong { .. })
                ),
                "exemptions do not apply to the upper bound"
            );
        }
    }

    #[test]
    fn is_short_agrees_with_the_rendered_comparison_everywhere() {
        // The fast path (raw values far from the threshold) must answer what comparing the
        // rendered values answers; sweep across and around each threshold.
        for pt in [0.33334, 0.5, 1.0, 0.2, 1.99999] {
            let t = PartTiming::new(2, pt).expect("valid targets");
            let threshold = MIN_PART_SHARE * pt;
            let mut durations: Vec<f64> = (0..=4000).map(|i| i as f64 * pt / 2000.0).collect();
            durations.extend((-300..=300).map(|i| threshold + i as f64 * 1e-6));
            for d in durations {
                let reference = rendered(d) + EPSILON < MIN_PART_SHARE * rendered(pt);
                assert_eq!(t.is_short(d), reference, "part target {pt}, duration {d}");
            }
        }
        assert_eq!(rendered(0.123_456_7), 0.12346);
        assert_eq!(rendered(1e300), 1e300, "text beyond the stack buffer");
    }

    #[test]
    fn short_parts_only_at_the_end_or_when_independent() {
        let t = timing();
        // 85 % of 0.5 is 0.425.
        assert!(t.check_part(0.425, false, false).is_ok());
        assert!(matches!(
            t.check_part(0.424_99, false, false),
            Err(TimingError::PartTooShort { .. })
        ));
        assert!(
            t.check_part(0.1, true, false).is_ok(),
            "last of its segment"
        );
        assert!(t.check_part(0.1, false, true).is_ok(), "independent");
        assert!(t.is_short(0.424_99) && !t.is_short(0.425));
    }

    #[test]
    fn durations_must_be_positive_and_finite() {
        let t = timing();
        for bad in [0.0, -0.1, f64::NAN, f64::INFINITY, 0.000_001] {
            assert!(matches!(
                t.check_part(bad, true, true),
                Err(TimingError::InvalidDuration { what: "part", .. })
            ));
            assert!(matches!(
                t.check_segment(bad),
                Err(TimingError::InvalidDuration {
                    what: "segment",
                    ..
                })
            ));
        }
    }

    #[test]
    fn segments_round_to_the_target_duration() {
        let t = timing();
        assert!(t.check_segment(2.0).is_ok());
        assert!(t.check_segment(2.499).is_ok(), "rounds to 2");
        assert!(matches!(
            t.check_segment(2.5),
            Err(TimingError::SegmentTooLong { .. })
        ));
        // Renders as 2.50000, which a client rounds to 3.
        assert!(t.check_segment(2.499_996).is_err());
    }

    #[test]
    fn advance_part_limit() {
        assert_eq!(timing().advance_part_limit(), 6.0);
        assert_eq!(
            PartTiming::new(4, 1.0)
                .expect("targets")
                .advance_part_limit(),
            3.0
        );
        assert_eq!(
            PartTiming::new(4, 2.0)
                .expect("targets")
                .advance_part_limit(),
            3.0
        );
    }
}
