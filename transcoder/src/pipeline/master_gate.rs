//! When a live rendition is ready to be advertised in the master playlist: once the producer
//! keeps real time, not at its init segment.
//!
//! Why: at a stream's start the producer is behind real time (ffmpeg's start-up and 0.5 s
//! input probe, then a backlog encoded faster than real time): its first parts are announced
//! ≈0.4–1 s after their last frame was captured, dropping to the steady ≈0.1 s over the first
//! 2–3 s (docs/BENCHMARKS.md, issue 18). A player that joins meanwhile places itself
//! `PART-HOLD-BACK` behind a live edge that is itself that far behind, and a stock hls.js
//! (`maxLiveSyncPlaybackRate` = 1) keeps the difference for the whole session. Advertising the
//! stream once [`CAUGHT_UP_PARTS`] parts in a row are cut within [`CAUGHT_UP_LAG_PART_TARGETS`]
//! part targets of their capture makes every player start from a live edge that keeps time
//! (one part alone is a weak sign: on a loaded host the lag dips and comes back); the price is a stream
//! that becomes visible 1–3 s later (with [`MIN_MSN`], once ≥ 4 s of it are encoded). A producer that never catches up (an overloaded host) is
//! advertised after [`MAX_HOLD_MS`] anyway, and a stream that ends first at its end.
//!
//! Nor before segment 1 is complete ([`MIN_MSN`]): hls.js 1.6 issues its first blocking
//! reload only when the playlist's last complete segment has a non-zero number (`details.endSN
//! && …` in `base-playlist-controller.ts`); a player whose first playlist ends in segment 0
//! reloads after about a target duration instead (1889 ms in the trace), and placed
//! `PART-HOLD-BACK` (0.6 s) behind the edge it runs dry first: the stall, then its target latency
//! raised by a second, of the quiet-machine runs (docs/BENCHMARKS.md, issue 18, 13:42).

use crate::pipeline::rendition::VariantInfo;

/// A part announced at most this many part targets after its last frame was captured means the
/// producer keeps real time (steady state: ≈0.1 s, one frame plus encoding).
pub const CAUGHT_UP_LAG_PART_TARGETS: f64 = 1.0;

/// How many parts in a row must keep real time.
pub const CAUGHT_UP_PARTS: u32 = 3;

/// Longest the master waits for a rendition to catch up, from its init segment.
pub const MAX_HOLD_MS: u64 = 5_000;

/// The master waits for a part of this segment at least: segments 0 and 1 complete, so the
/// first playlist a player reads has a last complete segment numbered 1 or more.
pub const MIN_MSN: u64 = 2;

/// One rendition's report to the master writer, held until the producer keeps real time.
#[derive(Debug, Default)]
pub struct MasterGate {
    pending: Option<(VariantInfo, u64)>,
    /// Parts in a row cut within the lag limit.
    in_time: u32,
}

impl MasterGate {
    /// The init segment is stored at `now_ms`: hold its report.
    pub fn on_init(&mut self, info: VariantInfo, now_ms: u64) {
        self.pending = Some((info, now_ms));
    }

    /// A part of segment `msn` was cut `lag_s` seconds after its last frame's capture, at
    /// `now_ms`: the report to send now, if the producer caught up or the hold ran out, and
    /// the stream reached segment [`MIN_MSN`].
    pub fn on_part(
        &mut self,
        msn: u64,
        lag_s: f64,
        part_target: f64,
        now_ms: u64,
    ) -> Option<VariantInfo> {
        let (_, since) = self.pending.as_ref()?;
        if lag_s <= part_target * CAUGHT_UP_LAG_PART_TARGETS {
            self.in_time += 1;
        } else {
            self.in_time = 0;
        }
        if msn < MIN_MSN {
            return None;
        }
        if self.in_time >= CAUGHT_UP_PARTS || now_ms.saturating_sub(*since) >= MAX_HOLD_MS {
            return self.pending.take().map(|(info, _)| info);
        }
        None
    }

    /// The stream ended: the report still held, if any (a short stream gets its master too).
    pub fn finish(&mut self) -> Option<VariantInfo> {
        self.pending.take().map(|(info, _)| info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> VariantInfo {
        VariantInfo {
            name: "720p".into(),
            codecs: "avc1.64001f,mp4a.40.2".into(),
            width: 1280,
            height: 720,
            bandwidth: 3_000_000,
        }
    }

    #[test]
    fn held_until_a_part_keeps_real_time() {
        let mut g = MasterGate::default();
        assert!(
            g.on_part(2, 0.05, 0.2, 0).is_none(),
            "nothing before the init"
        );
        g.on_init(info(), 1_000);
        // The start-up backlog: parts 1.0, 0.6, 0.35 s behind their capture, one in time that
        // is not followed by another, then three in a row.
        for (lag, at) in [
            (1.0, 1_100),
            (0.6, 1_300),
            (0.1, 1_500),
            (0.35, 1_700),
            (0.15, 1_900),
            (0.1, 2_100),
        ] {
            assert!(g.on_part(2, lag, 0.2, at).is_none(), "lag {lag}");
        }
        let sent = g.on_part(2, 0.2, 0.2, 2_300).expect("caught up");
        assert_eq!(sent.name, "720p");
        assert!(g.on_part(2, 0.05, 0.2, 2_500).is_none(), "sent once");
        assert!(g.finish().is_none());
    }

    #[test]
    fn a_producer_that_never_catches_up_is_advertised_after_the_hold() {
        let mut g = MasterGate::default();
        g.on_init(info(), 1_000);
        assert!(g.on_part(2, 2.0, 0.2, 1_000 + MAX_HOLD_MS - 1).is_none());
        assert!(g.on_part(2, 2.0, 0.2, 1_000 + MAX_HOLD_MS).is_some());
    }

    /// A producer in time from the first part still waits for segment 2, so that a player's
    /// first playlist has a complete segment 1 (hls.js blocks its reloads only then); so does
    /// one that ran out its hold.
    #[test]
    fn held_until_segment_two() {
        let mut g = MasterGate::default();
        g.on_init(info(), 1_000);
        for (i, msn) in [0, 0, 0, 1, 1, 1].into_iter().enumerate() {
            assert!(
                g.on_part(msn, 0.05, 0.2, 1_100 + i as u64 * 200).is_none(),
                "part {i} of segment {msn}"
            );
        }
        assert!(g.on_part(2, 0.05, 0.2, 2_300).is_some());

        let mut slow = MasterGate::default();
        slow.on_init(info(), 1_000);
        assert!(slow.on_part(1, 2.0, 0.2, 1_000 + MAX_HOLD_MS).is_none());
        assert!(slow
            .on_part(2, 2.0, 0.2, 1_000 + MAX_HOLD_MS + 200)
            .is_some());
    }

    #[test]
    fn a_stream_that_ends_first_still_gets_its_master() {
        let mut g = MasterGate::default();
        g.on_init(info(), 1_000);
        assert!(g.on_part(0, 0.9, 0.2, 1_100).is_none());
        assert_eq!(g.finish().map(|i| i.height), Some(720));
    }
}
