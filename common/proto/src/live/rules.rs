//! LL-HLS rules whose breaking a player would feel as latency or stalls, judged for the
//! metrics of the live path (`*_live_rule_violations_total{rule}`): a part longer than
//! `PART-TARGET` (rfc8216bis §4.4.4.9: the player's buffer plan assumes parts no longer than
//! it) and a `PART-HOLD-BACK` under three part targets (§4.4.3.8: "MUST be at least three
//! times the Part Target Duration") and a part whose audio is not the audio of its video's
//! time span (a player's buffered range is the intersection of its tracks, so audio carried
//! late keeps the playable end that far behind the listed one: with `PART-HOLD-BACK` 0.6 s,
//! audio 0.55 s late left hls.js one part of margin, issue 18). Pure: the producer and the edge
//! pass the values in and count what comes back. The live model ([`super::LiveRendition`])
//! still refuses a part beyond `PART-TARGET` outright; this is how often it happened.

use super::timing::rendered;

/// `PART-HOLD-BACK` must be at least this many part targets (rfc8216bis §4.4.3.8).
pub const MIN_PART_HOLD_BACK_PARTS: f64 = 3.0;

/// Floating-point noise allowance (as in [`super::timing`]).
const EPSILON: f64 = 1e-9;

/// One rule a stream broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A part longer than `PART-TARGET` (as rendered).
    PartOverTarget,
    /// `PART-HOLD-BACK` shorter than 3 × `PART-TARGET`.
    HoldBackTooShort,
    /// A part whose audio starts more than half a `PART-TARGET` away from its video.
    AudioVideoSkew,
}

impl Rule {
    /// Every rule, in label order (metrics write each, zero when never broken).
    pub const ALL: [Rule; 3] = [
        Rule::PartOverTarget,
        Rule::HoldBackTooShort,
        Rule::AudioVideoSkew,
    ];

    /// The `rule` label value.
    pub fn label(self) -> &'static str {
        match self {
            Rule::PartOverTarget => "part_over_target",
            Rule::HoldBackTooShort => "hold_back_too_short",
            Rule::AudioVideoSkew => "audio_video_skew",
        }
    }
}

/// A part of `duration` seconds under `PART-TARGET` `part_target`: the rule it breaks, if any.
pub fn check_part(duration: f64, part_target: f64) -> Option<Rule> {
    (rendered(duration) > rendered(part_target) + EPSILON).then_some(Rule::PartOverTarget)
}

/// A playlist's `PART-HOLD-BACK` against its `PART-TARGET`: the rule it breaks, if any.
pub fn check_hold_back(part_hold_back: f64, part_target: f64) -> Option<Rule> {
    (part_hold_back.is_nan()
        || part_hold_back + EPSILON < MIN_PART_HOLD_BACK_PARTS * rendered(part_target))
    .then_some(Rule::HoldBackTooShort)
}

/// A part whose audio starts `skew` seconds before its video (video start − audio start, on
/// the tracks' own timelines, both starting at 0 in the CMAF output; negative: after it): the
/// rule it breaks, if any. A muxer interleaving the tracks puts audio and video of the same time in one fragment;
/// the two starts then differ by less than an audio frame (21 ms at 48 kHz) plus a video frame.
/// Half a part target is far above that and far below a skew a player feels.
pub fn check_audio_skew(skew: f64, part_target: f64) -> Option<Rule> {
    (skew.is_nan() || skew.abs() > part_target / 2.0).then_some(Rule::AudioVideoSkew)
}

/// `part duration / PART-TARGET`, the fill of a part (1.0 = exactly the target; above 1 breaks
/// [`Rule::PartOverTarget`]); 0 for a non-positive target.
pub fn part_fill(duration: f64, part_target: f64) -> f64 {
    if part_target > 0.0 {
        duration / part_target
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::MediaPlaylist;

    /// A stream built to break both rules is caught; the stream every live playlist describes
    /// (hold-back from [`MediaPlaylist::live`], parts of whole frames within the target) is not.
    #[test]
    fn rules_fire_on_a_broken_stream_and_stay_quiet_on_a_clean_one() {
        let part_target = 0.2;
        let clean_hold_back = MediaPlaylist::live(1, part_target, "init.mp4")
            .server_control
            .and_then(|sc| sc.part_hold_back)
            .expect("a live playlist has PART-HOLD-BACK");
        let mut broken = Vec::new();
        let mut clean = Vec::new();
        // 6 frames of 30 fps = 0.2 s: exactly the target, and the target plus rendering noise.
        for d in [0.2, 6.0 / 30.0, 0.199_999_999_9, 0.15] {
            clean.extend(check_part(d, part_target));
        }
        clean.extend(check_hold_back(clean_hold_back, part_target));
        // One frame too many, and a hold-back of two parts.
        for d in [7.0 / 30.0, 0.200_02] {
            broken.extend(check_part(d, part_target));
        }
        broken.extend(check_hold_back(2.0 * part_target, part_target));
        broken.extend(check_hold_back(f64::NAN, part_target));
        // Audio within a frame of its video (either side) is clean; audio 0.544 s behind its
        // video (what ffmpeg made of a live input whose probe packets it dropped) is not.
        for (v, a) in [(4.0, 3.989_333), (4.0, 4.032), (0.0, 0.0)] {
            clean.extend(check_audio_skew(v - a, part_target));
        }
        broken.extend(check_audio_skew(4.0 - 3.456, part_target));
        broken.extend(check_audio_skew(0.4 - 0.5, 0.1));
        assert_eq!(clean, vec![]);
        assert_eq!(
            broken,
            vec![
                Rule::PartOverTarget,
                Rule::PartOverTarget,
                Rule::HoldBackTooShort,
                Rule::HoldBackTooShort,
                Rule::AudioVideoSkew,
                Rule::AudioVideoSkew
            ]
        );
        assert_eq!(part_fill(0.1, 0.2), 0.5);
        assert_eq!(part_fill(0.1, 0.0), 0.0);
    }

    /// A `Start` asking for a longer hold-back renders it; one under the minimum is refused.
    #[test]
    fn start_carries_a_longer_hold_back_and_refuses_a_short_one() {
        use crate::live::{LiveConfig, LiveEvent, LiveRendition};
        let start = |part_hold_back| LiveEvent::Start {
            target_duration: 2,
            part_target: 0.2,
            init: "init.mp4".into(),
            started_ms: 0,
            part_hold_back,
        };
        let hb = |e| {
            LiveRendition::new(LiveConfig::default(), &e)
                .expect("start")
                .playlist(&Default::default())
                .render()
                .lines()
                .find(|l| l.starts_with("#EXT-X-SERVER-CONTROL"))
                .map(str::to_string)
        };
        let line = hb(start(None)).unwrap();
        assert!(line.ends_with("PART-HOLD-BACK=0.600"), "{line}");
        assert!(hb(start(Some(0.8)))
            .unwrap()
            .ends_with("PART-HOLD-BACK=0.800"));
        assert!(LiveRendition::new(LiveConfig::default(), &start(Some(0.5))).is_err());
        // Absent from the JSON when not set: edges that predate the field read it.
        assert!(!start(None).to_json().contains("part_hold_back"));
        let e = start(Some(0.8));
        assert_eq!(LiveEvent::from_json(&e.to_json()).expect("decodes"), e);
    }
}
