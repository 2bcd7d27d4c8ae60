//! What to upload and what to announce for one rendition (live, or VOD while it transcodes),
//! sans-IO: cuts from
//! [`crate::cmaf::cutter`] in, an ordered list of [`Action`]s out. The runner executes them in
//! order, so every object is stored before the event that announces it (an announced part is
//! always fetchable).
//!
//! Event sequence (the schema of `ringcast_proto::live::events`): `start`; per segment its
//! parts `0, 1, 2, …` then `segment_end`; `discontinuity` before the first part of a segment
//! after a publisher reconnect; `end` last. `start` is re-announced (same values, which
//! consumers treat as a duplicate) every `start_every` segments, so an edge that joins a stream
//! trimmed by MAXLEN finds one within the retained entries.
//!
//! Every event is also applied to an unbounded [`LiveRendition`] here: a sequence the edge model
//! would refuse is caught (and logged) at its source, and at the end that state renders the
//! rendition's final playlist (`index.m3u8`, `EXT-X-ENDLIST`), which keeps the stream playable
//! as VOD from the store.
//!
//! `EXT-X-PROGRAM-DATE-TIME`: `anchor_ms` (the wall-clock time the publisher began, i.e. when
//! the ingest queued the job) plus the media time of the segment's first frame. The difference
//! between a part's announce time and the date of its last frame is the glass-to-announce
//! latency of the pipeline. After a reconnect the encoder's timeline continues while the wall
//! clock moved on by the gap, so the anchor moves by that gap (the lag seen before it is kept).

use bytes::Bytes;
use ringcast_proto::content_type;
use ringcast_proto::keys;
use ringcast_proto::live::{rules, LiveConfig, LiveEvent, LiveRendition, PlaylistOpts};

use crate::cmaf::cutter::{Cut, CutSegment, Targets};
use crate::cmaf::names::{INIT_NAME, MEDIA_PLAYLIST};

/// One step for the runner.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store `data` as `file` of this rendition.
    Put {
        file: String,
        data: Bytes,
        content_type: &'static str,
    },
    /// XADD this event to the rendition's event stream.
    Announce(LiveEvent),
}

/// Sequencing state of one rendition.
#[derive(Debug)]
pub struct Announcer {
    rendition: String,
    targets: Targets,
    anchor_ms: u64,
    start_every: u32,
    start: Option<LiveEvent>,
    state: Option<LiveRendition>,
    discontinuity_pending: bool,
    segments_done: u32,
    last_msn: Option<u64>,
    ended: bool,
    /// Whether [`Self::finish`] writes `index.m3u8` (live); a VOD job writes its own VOD
    /// playlist when the transcode is complete ([`crate::pipeline::publish`]).
    final_playlist: bool,
    /// Smallest wall clock minus date of a part's end (ms) in the current and the previous
    /// segment: the pipeline's own delay, the baseline when dates move after a reconnect.
    min_lag_cur: Option<i64>,
    min_lag_prev: Option<i64>,
    /// `PART-HOLD-BACK` asked for in `start` (`None`: the playlists' 3 × `PART-TARGET`).
    part_hold_back: Option<f64>,
}

impl Announcer {
    pub fn new(rendition: &str, targets: Targets, anchor_ms: u64, start_every: u32) -> Self {
        Self {
            rendition: rendition.to_string(),
            targets,
            anchor_ms,
            start_every: start_every.max(1),
            start: None,
            state: None,
            discontinuity_pending: false,
            segments_done: 0,
            last_msn: None,
            ended: false,
            final_playlist: true,
            min_lag_cur: None,
            min_lag_prev: None,
            part_hold_back: None,
        }
    }

    /// `PART-HOLD-BACK` = `parts` × `PART-TARGET` (config `live.part_hold_back_parts`, ≥ 3).
    /// The default 3 is left out of `start` (edges render 3 × `PART-TARGET` without it), so
    /// streams with the default stay readable by edges that predate the field.
    pub fn with_part_hold_back_parts(mut self, parts: f64) -> Self {
        self.part_hold_back = (parts > rules::MIN_PART_HOLD_BACK_PARTS).then(|| {
            // Rounded up to the millisecond as the playlist renders it.
            (parts * self.targets.part_target * 1000.0 - 1e-6).ceil() / 1000.0
        });
        self
    }

    /// No `index.m3u8` at the end (a VOD transcode publishes its VOD playlist itself).
    pub fn without_final_playlist(mut self) -> Self {
        self.final_playlist = false;
        self
    }

    /// The publisher reconnected: the next segment starts a new timeline.
    pub fn mark_discontinuity(&mut self) {
        self.discontinuity_pending = true;
    }

    /// Date (Unix ms) of media time `seconds`.
    pub fn date_ms(&self, seconds: f64) -> u64 {
        self.anchor_ms + (seconds * 1000.0).round().max(0.0) as u64
    }

    /// Apply to the self-check model; a refusal is a packager bug worth a loud log, not a
    /// reason to stop a live stream.
    fn check(&mut self, event: &LiveEvent) {
        if let Some(state) = self.state.as_mut() {
            if let Err(e) = state.apply(event.clone()) {
                tracing::error!(rendition = %self.rendition, ?event, error = %e,
                    "live event refused by the playlist model");
            }
        }
    }

    fn announce(&mut self, out: &mut Vec<Action>, event: LiveEvent) {
        self.check(&event);
        out.push(Action::Announce(event));
    }

    /// The actions for one cut, given the wall clock `now_ms` (the start event's date).
    pub fn on_cut(&mut self, cut: Cut, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match cut {
            Cut::Init { data, .. } => {
                out.push(Action::Put {
                    file: INIT_NAME.into(),
                    data,
                    content_type: content_type::INIT,
                });
                let start = LiveEvent::Start {
                    target_duration: self.targets.target_duration,
                    part_target: self.targets.part_target,
                    init: INIT_NAME.into(),
                    started_ms: now_ms,
                    part_hold_back: self.part_hold_back,
                };
                match LiveRendition::new(LiveConfig::unbounded(), &start) {
                    Ok(state) => self.state = Some(state),
                    Err(e) => tracing::error!(rendition = %self.rendition, error = %e,
                        "start event refused by the playlist model"),
                }
                self.start = Some(start.clone());
                out.push(Action::Announce(start));
            }
            Cut::Part(p) => {
                let lag = now_ms as i64 - self.date_ms(p.start + p.duration) as i64;
                if p.index == 0 && self.discontinuity_pending && self.last_msn.is_some() {
                    self.discontinuity_pending = false;
                    // The encoder's timeline went on across the reconnect but the wall clock
                    // did not wait: move the dates by the gap, keeping the lag seen before it.
                    // The baseline is the smallest lag of the last two segments: parts cut
                    // while the publisher was away already carry part of the gap.
                    let before = match (self.min_lag_prev, self.min_lag_cur) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if let Some(before) = before {
                        if lag > before {
                            self.anchor_ms += (lag - before) as u64;
                        }
                    }
                    self.min_lag_prev = None;
                    self.min_lag_cur = None;
                    self.announce(&mut out, LiveEvent::Discontinuity { next_msn: p.msn });
                }
                let lag = now_ms as i64 - self.date_ms(p.start + p.duration) as i64;
                self.min_lag_cur = Some(self.min_lag_cur.map_or(lag, |m| m.min(lag)));
                out.push(Action::Put {
                    file: keys::part_name(p.msn, p.index),
                    data: p.data,
                    content_type: content_type::SEGMENT,
                });
                self.announce(
                    &mut out,
                    LiveEvent::Part {
                        msn: p.msn,
                        part: p.index,
                        duration: p.duration,
                        independent: p.independent,
                    },
                );
            }
            Cut::SegmentEnd(s) => self.segment_end(s, &mut out),
        }
        out
    }

    fn segment_end(&mut self, s: CutSegment, out: &mut Vec<Action>) {
        let msn = s.msn;
        out.push(Action::Put {
            file: keys::segment_name(msn),
            data: s.data,
            content_type: content_type::SEGMENT,
        });
        let pdt = self.date_ms(s.start);
        self.announce(
            out,
            LiveEvent::SegmentEnd {
                msn,
                duration: s.duration,
                program_date_time_ms: pdt,
            },
        );
        self.last_msn = Some(msn);
        self.min_lag_prev = self.min_lag_cur.take();
        self.segments_done += 1;
        if self.segments_done % self.start_every == 0 {
            if let Some(start) = self.start.clone() {
                self.announce(out, start);
            }
        }
    }

    /// End of stream: the last segment (from [`crate::cmaf::cutter::Cutter::finish`]), the
    /// `end` event and the final playlist. Nothing when the stream never produced a segment.
    pub fn finish(&mut self, last: Option<CutSegment>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ended = true;
        if let Some(s) = last {
            self.segment_end(s, &mut out);
        }
        let Some(last_msn) = self.last_msn else {
            return out;
        };
        // Stored before `end` is announced, like every object before its event: whoever sees
        // `end` (an edge about to answer from the store, a test) finds the final playlist.
        let end = LiveEvent::End { last_msn };
        self.check(&end);
        if let Some(state) = self.state.as_ref().filter(|_| self.final_playlist) {
            let text = state.playlist(&PlaylistOpts::default()).render();
            out.push(Action::Put {
                file: MEDIA_PLAYLIST.into(),
                data: Bytes::from(text),
                content_type: content_type::PLAYLIST,
            });
        }
        out.push(Action::Announce(end));
        out
    }

    /// The targets this rendition announces (and its encoder's GOP).
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// `PART-HOLD-BACK` of the playlists this rendition describes (once `start` was made).
    pub fn part_hold_back(&self) -> Option<f64> {
        let state = self.state.as_ref()?;
        state
            .playlist(&PlaylistOpts::default())
            .server_control
            .and_then(|sc| sc.part_hold_back)
    }

    /// The self-check model (tests, final stats).
    pub fn state(&self) -> Option<&LiveRendition> {
        self.state.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::cutter::CutPart;
    use ringcast_proto::fmp4::InitInfo;

    fn targets() -> Targets {
        Targets::new(0.333, 2.0, 30.0)
    }

    fn part(msn: u64, index: u32) -> Cut {
        Cut::Part(CutPart {
            msn,
            index,
            data: Bytes::from_static(b"p"),
            duration: 1.0 / 3.0,
            independent: index == 0,
            start: msn as f64 * 2.0 + f64::from(index) / 3.0,
            audio_skew: None,
        })
    }

    fn seg(msn: u64) -> CutSegment {
        CutSegment {
            msn,
            data: Bytes::from_static(b"s"),
            duration: 2.0,
            start: msn as f64 * 2.0,
            parts: 6,
        }
    }

    fn events(actions: &[Action]) -> Vec<LiveEvent> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Announce(e) => Some(e.clone()),
                Action::Put { .. } => None,
            })
            .collect()
    }

    fn init() -> Cut {
        Cut::Init {
            data: Bytes::from_static(b"init"),
            info: InitInfo { tracks: Vec::new() },
        }
    }

    #[test]
    fn objects_come_before_their_events_and_the_sequence_is_the_schema() {
        let mut a = Announcer::new("720p", targets(), 1_000_000, 2);
        let mut all = a.on_cut(init(), 999);
        for msn in 0..3 {
            if msn > 0 {
                all.extend(a.on_cut(Cut::SegmentEnd(seg(msn - 1)), 0));
            }
            if msn == 2 {
                a.mark_discontinuity();
            }
            for i in 0..6 {
                all.extend(a.on_cut(part(msn, i), 0));
            }
        }
        all.extend(a.finish(Some(seg(2))));
        // Every announced part/segment was put just before.
        for (i, act) in all.iter().enumerate() {
            let file = match act {
                Action::Announce(LiveEvent::Part { msn, part, .. }) => keys::part_name(*msn, *part),
                Action::Announce(LiveEvent::SegmentEnd { msn, .. }) => keys::segment_name(*msn),
                _ => continue,
            };
            assert!(
                matches!(&all[i - 1], Action::Put { file: f, .. } if *f == file),
                "{act:?} not preceded by its object"
            );
        }
        let ev = events(&all);
        let kinds: Vec<&str> = ev.iter().map(LiveEvent::kind).collect();
        let mut want = vec!["Start"];
        want.extend(["Part"; 6]);
        want.push("SegmentEnd");
        want.extend(["Part"; 6]);
        want.extend(["SegmentEnd", "Start", "Discontinuity"]);
        want.extend(["Part"; 6]);
        want.extend(["SegmentEnd", "End"]);
        assert_eq!(kinds, want);
        assert!(matches!(
            ev[0],
            LiveEvent::Start {
                started_ms: 999,
                target_duration: 2,
                ..
            }
        ));
        assert_eq!(
            ev[14],
            LiveEvent::SegmentEnd {
                msn: 1,
                duration: 2.0,
                program_date_time_ms: 1_002_000
            }
        );
        assert_eq!(ev[16], LiveEvent::Discontinuity { next_msn: 2 });
        assert_eq!(ev.last(), Some(&LiveEvent::End { last_msn: 2 }));

        // The whole sequence applies to a fresh edge model, and the final playlist has ENDLIST.
        let mut edge = LiveRendition::new(LiveConfig::default(), &ev[0]).expect("start");
        for e in &ev[1..] {
            edge.apply(e.clone()).expect("applies");
        }
        assert!(edge.ended());
        let [.., Action::Put { file, data, .. }, Action::Announce(LiveEvent::End { .. })] =
            all.as_slice()
        else {
            panic!("the final playlist is stored right before `end` is announced")
        };
        assert_eq!(file, "index.m3u8");
        let text = String::from_utf8_lossy(data);
        assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
        assert_eq!(a.finish(None), vec![], "finishing twice does nothing");
    }

    #[test]
    fn dates_move_by_the_reconnect_gap() {
        let mut a = Announcer::new("720p", targets(), 1_000_000, 100);
        a.on_cut(init(), 0);
        // Parts cut 300 ms after their last frame, the last one 1 s late (the publisher left).
        for i in 0..6 {
            let end = 1_000_000 + ((f64::from(i) + 1.0) / 3.0 * 1000.0).round() as u64;
            a.on_cut(part(0, i), end + if i == 5 { 1_300 } else { 300 });
        }
        a.mark_discontinuity();
        a.on_cut(Cut::SegmentEnd(seg(0)), 1_002_300);
        // The next part (media 2.0–2.33 s) comes 5 s later in wall time than the timeline says.
        let ev = events(&a.on_cut(part(1, 0), 1_002_333 + 5_300));
        assert!(matches!(ev[0], LiveEvent::Discontinuity { next_msn: 1 }));
        for i in 1..6 {
            a.on_cut(part(1, i), 0);
        }
        let ev = events(&a.on_cut(Cut::SegmentEnd(seg(1)), 0));
        assert_eq!(
            ev[0],
            LiveEvent::SegmentEnd {
                msn: 1,
                duration: 2.0,
                program_date_time_ms: 1_007_000
            }
        );
    }

    #[test]
    fn a_longer_hold_back_rides_in_start_and_the_default_is_left_out() {
        let t = Targets::live(0.2, 0.4, 2.0, 30.0);
        let start = |parts| {
            let mut a = Announcer::new("720p", t, 0, 5).with_part_hold_back_parts(parts);
            let ev = events(&a.on_cut(init(), 1));
            (ev[0].clone(), a.part_hold_back())
        };
        let (ev, rendered) = start(3.0);
        assert!(
            matches!(
                ev,
                LiveEvent::Start {
                    part_hold_back: None,
                    ..
                }
            ),
            "{ev:?}"
        );
        assert_eq!(rendered, Some(0.6));
        let (ev, rendered) = start(4.0);
        assert!(
            matches!(ev, LiveEvent::Start { part_hold_back: Some(hb), .. } if hb == 0.8),
            "{ev:?}"
        );
        assert_eq!(rendered, Some(0.8));
    }

    #[test]
    fn a_stream_without_segments_announces_no_end() {
        let mut a = Announcer::new("360p", targets(), 0, 5);
        a.on_cut(init(), 1);
        assert!(events(&a.finish(None)).is_empty());
    }
}
