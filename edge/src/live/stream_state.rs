//! Following one rendition's event stream, sans-IO: stream entries in, a [`LiveRendition`] out,
//! with the recovery rules the model leaves to its caller ([`LiveError::needs_resync`]).
//!
//! - Joining: entries before the first `Start` are skipped (a trimmed stream); the packager
//!   re-announces `Start` so a late edge can begin.
//! - A `Start` with other values ([`LiveError::ConflictingStart`]) means the packager restarted
//!   the rendition: the state begins again from that `Start`.
//! - A lost or reordered event (any other `needs_resync` error) while tailing: [`Fed::Resync`]
//!   asks the caller to re-read the whole stream and [`StreamState::replay`] it. The edge may simply
//!   have missed entries (a Redis reconnect while the stream was trimmed), and a full replay from
//!   the first `Start` keeps the whole history (an EVENT playlist must not lose its beginning).
//! - A gap inside the stream itself (found during a replay, or when replays are rate-limited):
//!   the state keeps serving what it has and waits for the next `Start` to begin again, dropping
//!   events that do not apply meanwhile. Replaying again would only find the same gap.

use ringcast_proto::live::{Applied, LiveConfig, LiveError, LiveEvent, LiveRendition};

/// What one entry did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fed {
    /// The state changed: publish it.
    Updated,
    /// A duplicate or an event without effect.
    Unchanged,
    /// The entry was dropped (undecodable, before the first `Start`, not applicable).
    Skipped(String),
    /// The stream lost or reordered an event: re-read it and [`StreamState::replay`].
    Resync(LiveError),
}

/// One rendition's state as built from its stream.
#[derive(Debug, Clone)]
pub struct StreamState {
    config: LiveConfig,
    state: Option<LiveRendition>,
    /// A gap was found that a replay cannot repair: drop what does not apply until a `Start`.
    awaiting_start: bool,
}

impl StreamState {
    pub fn new(config: LiveConfig) -> Self {
        Self {
            config,
            state: None,
            awaiting_start: false,
        }
    }

    /// The state, once a `Start` was seen.
    pub fn state(&self) -> Option<&LiveRendition> {
        self.state.as_ref()
    }

    /// Whether the follower waits for a `Start` after an unrepairable gap.
    pub fn awaiting_start(&self) -> bool {
        self.awaiting_start
    }

    /// Applies the payload of the next stream entry (the JSON of field
    /// [`ringcast_proto::live::EVENT_FIELD`]).
    pub fn feed(&mut self, payload: &str) -> Fed {
        match LiveEvent::from_json(payload) {
            Ok(event) => self.feed_event(event, false),
            Err(e) => Fed::Skipped(e.to_string()),
        }
    }

    /// Stop asking for replays: the gap is in the stream, begin again at the next `Start`.
    pub fn wait_for_start(&mut self) {
        self.awaiting_start = true;
    }

    /// Rebuilds from every payload of the stream, oldest first. Without any usable `Start` in
    /// them, `previous` is kept (still serving), waiting for a `Start`.
    pub fn replay<'a>(previous: StreamState, payloads: impl IntoIterator<Item = &'a str>) -> Self {
        let mut fresh = StreamState::new(previous.config);
        for payload in payloads {
            if let Ok(event) = LiveEvent::from_json(payload) {
                fresh.feed_event(event, true);
            }
        }
        if fresh.state.is_some() {
            fresh
        } else {
            StreamState {
                awaiting_start: true,
                ..previous
            }
        }
    }

    fn feed_event(&mut self, event: LiveEvent, replaying: bool) -> Fed {
        let restart = match &mut self.state {
            None => true,
            Some(_) if self.awaiting_start && matches!(event, LiveEvent::Start { .. }) => true,
            Some(state) => match state.apply(event.clone()) {
                Ok(Applied::Updated) => return Fed::Updated,
                Ok(Applied::Duplicate) => return Fed::Unchanged,
                Err(LiveError::ConflictingStart) => true,
                Err(e) if e.needs_resync() && !self.awaiting_start => {
                    if replaying {
                        self.awaiting_start = true;
                        return Fed::Skipped(e.to_string());
                    }
                    return Fed::Resync(e);
                }
                Err(e) => return Fed::Skipped(e.to_string()),
            },
        };
        debug_assert!(restart);
        match LiveRendition::new(self.config, &event) {
            Ok(state) => {
                self.state = Some(state);
                self.awaiting_start = false;
                Fed::Updated
            }
            Err(e) => Fed::Skipped(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(started_ms: u64) -> String {
        LiveEvent::Start {
            target_duration: 2,
            part_target: 0.5,
            init: "init.mp4".into(),
            started_ms,
            part_hold_back: None,
        }
        .to_json()
    }

    fn part(msn: u64, part: u32) -> String {
        LiveEvent::Part {
            msn,
            part,
            duration: 0.5,
            independent: part == 0,
        }
        .to_json()
    }

    fn seg_end(msn: u64) -> String {
        LiveEvent::SegmentEnd {
            msn,
            duration: 2.0,
            program_date_time_ms: 1_795_766_400_000 + msn * 2000,
        }
        .to_json()
    }

    /// Every entry of segments `from..to`, four parts each.
    fn segments(from: u64, to: u64) -> Vec<String> {
        let mut out = Vec::new();
        for msn in from..to {
            for p in 0..4 {
                out.push(part(msn, p));
            }
            out.push(seg_end(msn));
        }
        out
    }

    fn last(f: &StreamState) -> (Option<u64>, Option<u32>) {
        let s = f.state().expect("state");
        (s.last_msn(), s.last_part())
    }

    #[test]
    fn skips_until_start_then_follows() {
        let mut f = StreamState::new(LiveConfig::default());
        assert!(matches!(f.feed(&part(0, 0)), Fed::Skipped(_)));
        assert!(matches!(f.feed("not json"), Fed::Skipped(_)));
        assert_eq!(f.feed(&start(1)), Fed::Updated);
        for e in segments(0, 2) {
            assert_eq!(f.feed(&e), Fed::Updated);
        }
        assert_eq!(f.feed(&part(1, 3)), Fed::Unchanged, "re-delivery");
        assert_eq!(f.feed(&start(1)), Fed::Unchanged, "repeated Start");
        assert_eq!(last(&f), (Some(1), Some(3)));
    }

    #[test]
    fn a_gap_asks_for_a_resync_and_a_replay_of_a_clean_stream_repairs_it() {
        let mut f = StreamState::new(LiveConfig::default());
        let mut stream = vec![start(1)];
        stream.extend(segments(0, 3));
        f.feed(&stream[0]);
        // The edge missed segment 1 (e.g. a reconnect).
        for e in segments(0, 1) {
            f.feed(&e);
        }
        assert!(matches!(f.feed(&part(2, 0)), Fed::Resync(e) if e.needs_resync()));
        let f = StreamState::replay(f, stream.iter().map(String::as_str));
        assert!(!f.awaiting_start());
        assert_eq!(last(&f), (Some(2), Some(3)));
        assert_eq!(f.state().map(|s| s.media_sequence()), Some(0));
    }

    #[test]
    fn a_gap_in_the_stream_itself_waits_for_the_next_start() {
        let mut stream = vec![start(1)];
        stream.extend(segments(0, 1));
        stream.extend(segments(2, 3)); // segment 1 never announced
        let f = StreamState::replay(
            StreamState::new(LiveConfig::default()),
            stream.iter().map(String::as_str),
        );
        assert!(f.awaiting_start());
        assert_eq!(last(&f), (Some(0), Some(3)), "keeps what it had");
        let mut f = f;
        assert!(
            matches!(f.feed(&part(3, 0)), Fed::Skipped(_)),
            "no replay loop"
        );
        // The packager re-announces Start at the next segment: the state begins again there.
        assert_eq!(f.feed(&start(1)), Fed::Updated);
        assert!(!f.awaiting_start());
        for e in segments(4, 5) {
            assert_eq!(f.feed(&e), Fed::Updated);
        }
        assert_eq!(last(&f), (Some(4), Some(3)));
        assert_eq!(f.state().map(|s| s.media_sequence()), Some(4));
    }

    #[test]
    fn a_restarted_rendition_begins_again() {
        let mut f = StreamState::new(LiveConfig::default());
        f.feed(&start(1));
        for e in segments(0, 2) {
            f.feed(&e);
        }
        assert_eq!(f.feed(&start(2)), Fed::Updated);
        assert_eq!(f.state().and_then(|s| s.last_msn()), None);
        assert_eq!(f.feed(&part(0, 0)), Fed::Updated);
    }

    #[test]
    fn replay_without_a_start_keeps_the_previous_state() {
        let mut f = StreamState::new(LiveConfig::default());
        f.feed(&start(1));
        for e in segments(0, 2) {
            f.feed(&e);
        }
        let trimmed = segments(5, 6);
        let f = StreamState::replay(f, trimmed.iter().map(String::as_str));
        assert!(f.awaiting_start());
        assert_eq!(last(&f), (Some(1), Some(3)));
    }

    #[test]
    fn end_then_ended_state() {
        let mut f = StreamState::new(LiveConfig::unbounded());
        f.feed(&start(1));
        for e in segments(0, 2) {
            f.feed(&e);
        }
        assert_eq!(
            f.feed(&LiveEvent::End { last_msn: 1 }.to_json()),
            Fed::Updated
        );
        assert!(f.state().is_some_and(|s| s.ended()));
        assert!(matches!(f.feed(&part(2, 0)), Fed::Skipped(_)));
    }
}
