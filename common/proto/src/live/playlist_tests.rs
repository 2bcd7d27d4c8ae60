//! Whole-stream tests of the live model: `insta` snapshots of rendered playlists, a property
//! test over random valid event streams (with re-deliveries), and an external check of a
//! deterministic sample of rendered playlists with the npm `hls-parser` in strict mode.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::test_support::*;
use super::{Applied, LiveConfig, LiveEvent, LiveRendition, PlaylistOpts};
use crate::playlist::{MediaPlaylist, RenditionReport};

// ---- snapshots -------------------------------------------------------------------------

/// Segments 100..=111 of 4 parts (independent every 1 s), a publisher reconnect before 106
/// (dates jump by 5 s), two parts of 112 published.
fn snapshot_stream() -> LiveRendition {
    let mut s = rendition();
    for msn in 100..112u64 {
        if msn == 106 {
            s.apply(LiveEvent::Discontinuity { next_msn: 106 })
                .expect("discontinuity");
        }
        for p in 0..4 {
            s.apply(part_d(msn, p, 0.5, p % 2 == 0)).expect("part");
        }
        let shift = if msn >= 106 { 5_000 } else { 0 };
        s.apply(segment_end_at(msn, 2.0, T0 + (msn - 100) * 2000 + shift))
            .expect("segment end");
    }
    s.apply(part_d(112, 0, 0.5, true)).expect("part");
    s.apply(part_d(112, 1, 0.5, false)).expect("part");
    s
}

fn reports() -> Vec<RenditionReport> {
    vec![
        RenditionReport {
            uri: "../1080p/index.m3u8".into(),
            last_msn: 112,
            last_part: Some(1),
        },
        RenditionReport {
            uri: "../480p/index.m3u8".into(),
            last_msn: 112,
            last_part: Some(0),
        },
    ]
}

#[test]
fn live_playlist_snapshot() {
    let s = snapshot_stream();
    let pl = checked(s.playlist(&PlaylistOpts {
        skip: false,
        rendition_reports: reports(),
    }));
    insta::assert_snapshot!("live_playlist", pl.render());
}

#[test]
fn delta_playlist_snapshot() {
    let s = snapshot_stream();
    let pl = checked(s.playlist(&PlaylistOpts {
        skip: true,
        rendition_reports: reports(),
    }));
    // 12 segments of 2 s, CAN-SKIP-UNTIL=12: the oldest 6 go.
    assert_eq!(pl.skipped_segments, 6);
    insta::assert_snapshot!("delta_playlist", pl.render());
}

#[test]
fn ended_playlist_snapshot() {
    let mut s = snapshot_stream();
    s.apply(segment_end_at(112, 1.0, T0 + 24_000 + 5_000))
        .expect("segment end");
    s.apply(LiveEvent::End { last_msn: 112 }).expect("end");
    let pl = checked(s.playlist(&PlaylistOpts::default()));
    insta::assert_snapshot!("ended_playlist", pl.render());
}

// ---- random valid streams ------------------------------------------------------------

/// Targets the packager may choose: (TARGETDURATION, PART-TARGET).
const TARGETS: [(u64, f64); 4] = [(2, 0.5), (2, 0.33334), (4, 1.0), (1, 0.25)];

#[derive(Debug, Clone)]
struct SegmentSpec {
    discontinuity_before: bool,
    /// Per part: share of PART-TARGET in thousandths, independent.
    parts: Vec<(u32, bool)>,
}

#[derive(Debug, Clone)]
struct Scenario {
    targets: usize,
    first_msn: u64,
    window: Option<usize>,
    segments: Vec<SegmentSpec>,
    /// Parts of a last segment that never completes (ignored when the stream ends).
    open_parts: Vec<(u32, bool)>,
    end: bool,
    /// Re-deliveries: (where, what), both taken modulo the number of events in `events()`:
    /// a copy of an earlier event inserted before the event at `where`.
    redeliveries: Vec<(usize, usize)>,
    /// Replay every event up to this share (thousandths) of the stream, as a reconnecting
    /// edge would.
    replay_at: Option<u32>,
}

/// Parts of one segment within the rules: every part but the last ≥ 85 % of PART-TARGET
/// (independent or not: hls-parser's strict mode does not apply the INDEPENDENT exemption),
/// the last anywhere in (0, PART-TARGET]; part 0 independent.
fn parts_strategy() -> impl Strategy<Value = Vec<(u32, bool)>> {
    (
        proptest::collection::vec((851u32..=1000, any::<bool>()), 0..5),
        1u32..=1000,
        any::<bool>(),
    )
        .prop_map(|(mut full, last, last_independent)| {
            full.push((last, last_independent));
            if let Some(first) = full.first_mut() {
                first.1 = true;
            }
            full
        })
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let segment = (proptest::bool::weighted(0.12), parts_strategy()).prop_map(
        |(discontinuity_before, parts)| SegmentSpec {
            discontinuity_before,
            parts,
        },
    );
    (
        0..TARGETS.len(),
        0u64..1000,
        proptest::option::weighted(0.7, 3usize..12),
        proptest::collection::vec(segment, 1..28),
        parts_strategy(),
        0usize..4,
        proptest::bool::weighted(0.3),
        proptest::collection::vec((any::<usize>(), any::<usize>()), 0..6),
        proptest::option::weighted(0.3, 0u32..1000),
    )
        .prop_map(
            |(
                targets,
                first_msn,
                window,
                segments,
                open_parts,
                open_len,
                end,
                redeliveries,
                replay_at,
            )| {
                let open_parts = open_parts.into_iter().take(open_len).collect();
                Scenario {
                    targets,
                    first_msn,
                    window,
                    segments,
                    open_parts,
                    end,
                    redeliveries,
                    replay_at,
                }
            },
        )
}

impl Scenario {
    fn config(&self) -> LiveConfig {
        self.window
            .map_or(LiveConfig::unbounded(), LiveConfig::sliding)
    }

    fn start(&self) -> LiveEvent {
        let (target_duration, part_target) = TARGETS[self.targets];
        LiveEvent::Start {
            target_duration,
            part_target,
            init: "init.mp4".into(),
            started_ms: T0,
            part_hold_back: None,
        }
    }

    /// The stream, each event with whether it is a re-delivery.
    fn events(&self) -> Vec<(LiveEvent, bool)> {
        let pt = TARGETS[self.targets].1;
        let duration = |share: u32| {
            let d = pt * f64::from(share) / 1000.0;
            // Durations as the packager would announce them: what the playlist renders.
            (d * 100_000.0).round() / 100_000.0
        };
        let mut originals = vec![self.start()];
        let mut pdt = T0;
        let mut msn = self.first_msn;
        let push_parts = |events: &mut Vec<LiveEvent>, msn: u64, parts: &[(u32, bool)]| {
            let mut total = 0.0;
            for (p, &(share, independent)) in parts.iter().enumerate() {
                let d = duration(share);
                total += d;
                events.push(LiveEvent::Part {
                    msn,
                    part: p as u32,
                    duration: d,
                    independent,
                });
            }
            total
        };
        for seg in &self.segments {
            if seg.discontinuity_before {
                originals.push(LiveEvent::Discontinuity { next_msn: msn });
                pdt += 3_000; // the publisher was away for a while
            }
            let total = push_parts(&mut originals, msn, &seg.parts);
            originals.push(LiveEvent::SegmentEnd {
                msn,
                duration: total,
                program_date_time_ms: pdt,
            });
            pdt += (total * 1000.0).round() as u64;
            msn += 1;
        }
        if self.end {
            originals.push(LiveEvent::End { last_msn: msn - 1 });
        } else {
            push_parts(&mut originals, msn, &self.open_parts);
        }

        let mut events: Vec<(LiveEvent, bool)> = Vec::new();
        let n = originals.len();
        let replay_at = self
            .replay_at
            .map(|share| (n * share as usize / 1000).max(1));
        for (i, e) in originals.iter().enumerate() {
            if replay_at == Some(i) {
                events.extend(originals[..i].iter().map(|e| (e.clone(), true)));
            }
            for &(at, which) in &self.redeliveries {
                let at = at % n;
                // Only events already delivered can be delivered again.
                if at == i && at > 0 {
                    events.push((originals[which % at].clone(), true));
                }
            }
            events.push((e.clone(), false));
        }
        events
    }
}

/// Applies the scenario, checking every playlist on the way; returns the state and a few
/// playlists (mid-stream full, final full, final delta) for the external validator.
fn run(scenario: &Scenario) -> Result<(LiveRendition, Vec<MediaPlaylist>), TestCaseError> {
    let mut events = scenario.events().into_iter();
    let Some((first, _)) = events.next() else {
        return Err(TestCaseError::fail("no events"));
    };
    let mut s = LiveRendition::new(scenario.config(), &first)
        .map_err(|e| TestCaseError::fail(format!("start: {e}")))?;
    let full = PlaylistOpts::default();
    let delta = PlaylistOpts {
        skip: true,
        rendition_reports: Vec::new(),
    };
    let mut samples = Vec::new();
    let mut previous = s.playlist(&full);
    let total = scenario.events().len();
    for (i, (event, redelivered)) in events.enumerate() {
        let shown = format!("{event:?}");
        let applied = s
            .apply(event)
            .map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
        let expected = if redelivered {
            Applied::Duplicate
        } else {
            Applied::Updated
        };
        prop_assert_eq!(applied, expected, "{}", shown);

        let pl = checked(s.playlist(&full));
        let dl = checked(s.playlist(&delta));
        // What may only grow (rfc8216bis §6.2.1, §6.2.2).
        prop_assert!(pl.media_sequence >= previous.media_sequence);
        prop_assert!(pl.discontinuity_sequence >= previous.discontinuity_sequence);
        prop_assert!(pl.target_duration >= previous.target_duration);
        // At most three entries with parts (hls-parser strict), the open segment included.
        let with_parts = pl.segments.iter().filter(|s| !s.parts.is_empty()).count();
        prop_assert!(with_parts <= super::window::MAX_SEGMENTS_WITH_PARTS);
        prop_assert!(!(pl.preload_hint.is_some() && pl.end_list));
        prop_assert_eq!(dl.segments.len(), pl.segments.len());
        // The blocking-reload view agrees with the playlist.
        if let (Some(msn), Some(part)) = (s.last_msn(), s.last_part()) {
            prop_assert!(s.has(msn, Some(part)));
        }
        if let Some((msn, part)) = s.preload_hint() {
            prop_assert!(
                !s.has(msn, Some(part)),
                "hinted part {}.{} already there",
                msn,
                part
            );
        }
        if i == total / 2 {
            samples.push(pl.clone());
        }
        previous = pl;
    }
    samples.push(s.playlist(&full));
    samples.push(s.playlist(&delta));
    Ok((s, samples))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any valid stream, re-deliveries included, is accepted and renders playlists that
    /// validate and re-parse to the same segments and parts after every event.
    #[test]
    fn valid_streams_render_valid_playlists(scenario in scenario_strategy()) {
        let (s, _) = run(&scenario)?;
        prop_assert_eq!(s.ended(), scenario.end);
        let listed = s.playlist(&PlaylistOpts::default()).segments.len();
        match scenario.window {
            None => prop_assert_eq!(listed, scenario.segments.len()),
            Some(window) => {
                prop_assert!(listed <= scenario.segments.len());
                prop_assert!(listed >= scenario.segments.len().min(window));
            }
        }
    }
}

// ---- external validator ----------------------------------------------------------------

/// The npm project with `hls-parser` (installed by `scripts/install-deps`).
fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/js")
}

/// Parses every file given as argument with hls-parser in strict mode (which throws on spec
/// violations) and exits non-zero with the first errors.
const HLS_PARSER_CHECK: &str = r#"
import HLS from 'hls-parser';
import { readFileSync } from 'node:fs';
HLS.setOptions({ strictMode: true });
const files = process.argv.slice(1);
if (files.length === 0) { console.error('no playlists given'); process.exit(2); }
let failed = 0;
for (const file of files) {
  try {
    const pl = HLS.parse(readFileSync(file, 'utf8'));
    if (pl.isMasterPlaylist) throw new Error('parsed as a multivariant playlist');
  } catch (e) {
    failed += 1;
    if (failed <= 5) console.error(`${file}: ${e.message}`);
  }
}
console.log(`${files.length - failed}/${files.length} playlists pass hls-parser strict mode`);
process.exit(failed === 0 ? 0 : 1);
"#;

/// A deterministic sample of 30 streams (proptest's deterministic runner), three playlists
/// each, checked by a real client-side parser.
#[test]
fn hls_parser_strict_mode_accepts_sampled_playlists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut runner = TestRunner::deterministic();
    let strategy = scenario_strategy();
    let mut files = Vec::new();
    for case in 0..30 {
        let scenario = strategy
            .new_tree(&mut runner)
            .expect("generate a scenario")
            .current();
        let (_, samples) = run(&scenario).unwrap_or_else(|e| panic!("case {case}: {e}"));
        for (i, pl) in samples.iter().enumerate() {
            let path = dir.path().join(format!("case{case:02}_{i}.m3u8"));
            std::fs::write(&path, pl.render()).expect("write playlist");
            files.push(path);
        }
    }
    // The snapshot playlists too.
    let s = snapshot_stream();
    for (name, skip) in [("snapshot_live", false), ("snapshot_delta", true)] {
        let path = dir.path().join(format!("{name}.m3u8"));
        let pl = s.playlist(&PlaylistOpts {
            skip,
            rendition_reports: reports(),
        });
        std::fs::write(&path, pl.render()).expect("write playlist");
        files.push(path);
    }

    let js = js_dir();
    assert!(
        js.join("node_modules/hls-parser").is_dir(),
        "hls-parser is not installed in {} (run scripts/install-deps, or `npm ci` there)",
        js.display()
    );
    let output = Command::new("node")
        .current_dir(&js)
        .arg("--input-type=module")
        .arg("-e")
        .arg(HLS_PARSER_CHECK)
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `node` ({e}): Node.js is required for this test (CI installs it)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "hls-parser rejected rendered playlists ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("{n}/{n} playlists pass", n = files.len())),
        "{stdout}"
    );
}
