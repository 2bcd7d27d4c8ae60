//! The live streams of the process, shared by every monoio core: one publisher pushes bytes on
//! one core, pullers (the transcoder) read them on any core.
//!
//! Cross-core fan-out without a runtime in common: each stream is a bounded log of chunks behind
//! a `std::sync::Mutex` (held for a few pointer copies, never across an await) plus a
//! `tokio::sync::watch` that bumps on every change; `watch` only uses wakers, so a puller on
//! another monoio runtime is woken directly. The publisher never waits for pullers: the log keeps
//! at most `buffer_bytes`, a puller that falls behind the oldest retained byte is
//! [`PullRead::Lagged`] (its connection is closed) instead of stalling the publisher.
//!
//! Lifecycle of a stream (key → [`LiveStream`]): `Publishing` → publisher gone →
//! `Disconnected` (grace period; a new publisher continues the same stream, same version, same
//! pull offsets) → grace over → `Ended` (pullers get EOF once drained, the key is free for a new
//! stream with a new version). Decisions take `now` so they are unit-tested without sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

/// Phase of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A publisher is connected (`publisher` generation).
    Publishing,
    /// The publisher left at `since`; a new one may continue until the grace period ends.
    Disconnected { since: Instant },
    /// No more bytes will come.
    Ended,
}

/// What a puller gets for its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRead {
    /// Chunks from the requested offset on; the next offset to ask for.
    Data(Vec<Bytes>, u64),
    /// Nothing new yet: wait for a change.
    Wait,
    /// The stream ended and the puller has everything.
    Eof,
    /// The bytes at this offset were dropped from the bounded log: the puller was too slow.
    Lagged,
}

/// Why a publisher cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("stream key {0} already has a publisher")]
    Busy(String),
    /// A new stream is needed (the grace period ran out since the caller looked) and the caller
    /// had no identity ready: reserve a version and call again.
    #[error("a new stream needs a version")]
    NeedsIdentity,
}

#[derive(Debug)]
struct Log {
    chunks: VecDeque<Bytes>,
    /// Offset of `chunks[0]`.
    start: u64,
    /// Offset after the last byte.
    end: u64,
    retained: usize,
    phase: Phase,
    /// Bumped by every publisher that attaches: 1 for the first, 2 after a reconnect, …
    publishes: u32,
}

/// One live stream: identity plus the bounded byte log.
#[derive(Debug)]
pub struct LiveStream {
    pub key: String,
    pub video_id: String,
    pub version: u32,
    /// Secret of the pull URL (`?token=`), so only the job that was handed the URL can pull.
    pub token: String,
    buffer_bytes: usize,
    log: Mutex<Log>,
    changed: watch::Sender<u64>,
}

impl LiveStream {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned lock means a panic while holding it; the log itself stays consistent
        // (every mutation is a few field writes), so keep serving.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that resolves `changed()` after the next change; take it before reading so
    /// no change is missed between the read and the wait.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Append a chunk from the publisher, dropping the oldest chunks beyond the buffer bound.
    pub fn push(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        {
            let mut log = self.log();
            log.end += data.len() as u64;
            log.retained += data.len();
            log.chunks.push_back(data);
            while log.retained > self.buffer_bytes && log.chunks.len() > 1 {
                if let Some(old) = log.chunks.pop_front() {
                    log.start += old.len() as u64;
                    log.retained -= old.len();
                }
            }
        }
        self.bump();
    }

    /// Offset a new puller starts from: the oldest byte still retained (the whole stream while
    /// it fits the buffer, so the transcoder sees the stream from its first byte).
    pub fn first_offset(&self) -> u64 {
        self.log().start
    }

    /// What a puller at `offset` gets now.
    pub fn read(&self, offset: u64) -> PullRead {
        let log = self.log();
        if offset < log.start {
            return PullRead::Lagged;
        }
        if offset >= log.end {
            return if log.phase == Phase::Ended {
                PullRead::Eof
            } else {
                PullRead::Wait
            };
        }
        let mut pos = log.start;
        let mut out = Vec::new();
        for c in &log.chunks {
            let next = pos + c.len() as u64;
            if next > offset {
                let skip = offset.saturating_sub(pos) as usize;
                out.push(c.slice(skip..));
            }
            pos = next;
        }
        PullRead::Data(out, log.end)
    }

    pub fn phase(&self) -> Phase {
        self.log().phase
    }

    /// Publishers attached so far (2 or more after a reconnect).
    pub fn publishes(&self) -> u32 {
        self.log().publishes
    }
}

/// Every live stream of the process, by stream key.
#[derive(Debug)]
pub struct LiveFanout {
    grace: Duration,
    buffer_bytes: usize,
    streams: Mutex<HashMap<String, Arc<LiveStream>>>,
}

/// What [`LiveFanout::publish`] did.
#[derive(Debug, Clone)]
pub enum Attached {
    /// A new stream: the caller assigns nothing more (video/version are in it) and enqueues the
    /// live job.
    New(Arc<LiveStream>),
    /// A publisher came back within the grace period: the stream continues.
    Resumed(Arc<LiveStream>),
}

impl LiveFanout {
    pub fn new(grace: Duration, buffer_bytes: usize) -> Self {
        Self {
            grace,
            buffer_bytes: buffer_bytes.max(1),
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveStream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The stream of `key`, if one is publishing or within its grace period (or ended but not
    /// yet replaced, so late pullers still get EOF).
    pub fn get(&self, key: &str) -> Option<Arc<LiveStream>> {
        self.streams().get(key).cloned()
    }

    /// Whether a new publisher on `key` would start a new stream (and so needs a version): no
    /// stream, or one that ended or whose grace period is over at `now`.
    pub fn needs_new_stream(&self, key: &str, now: Instant) -> bool {
        match self.get(key) {
            None => true,
            Some(s) => {
                let phase = s.phase();
                phase == Phase::Ended || self.grace_over(phase, now)
            }
        }
    }

    fn grace_over(&self, phase: Phase, now: Instant) -> bool {
        matches!(phase, Phase::Disconnected { since } if now.saturating_duration_since(since) >= self.grace)
    }

    /// Attach a publisher to `key`. `fresh` gives the identity of a new stream (video, version,
    /// token) when one is needed; it is only called in that case, and `None` from it is
    /// [`PublishError::NeedsIdentity`] (a version is reserved asynchronously, so the caller
    /// prepares one only when [`LiveFanout::needs_new_stream`] said so).
    pub fn publish(
        &self,
        key: &str,
        now: Instant,
        fresh: impl FnOnce() -> Option<(String, u32, String)>,
    ) -> Result<Attached, PublishError> {
        let mut streams = self.streams();
        if let Some(s) = streams.get(key).cloned() {
            let resumed = {
                let mut log = s.log();
                match log.phase {
                    Phase::Publishing => return Err(PublishError::Busy(key.to_string())),
                    Phase::Disconnected { since }
                        if now.saturating_duration_since(since) < self.grace =>
                    {
                        log.phase = Phase::Publishing;
                        log.publishes += 1;
                        true
                    }
                    Phase::Disconnected { .. } => {
                        // Grace over but not expired yet by its timer: end it now.
                        log.phase = Phase::Ended;
                        false
                    }
                    Phase::Ended => false,
                }
            };
            s.bump();
            if resumed {
                return Ok(Attached::Resumed(s));
            }
        }
        let Some((video_id, version, token)) = fresh() else {
            return Err(PublishError::NeedsIdentity);
        };
        let (tx, _) = watch::channel(0);
        let s = Arc::new(LiveStream {
            key: key.to_string(),
            video_id,
            version,
            token,
            buffer_bytes: self.buffer_bytes,
            log: Mutex::new(Log {
                chunks: VecDeque::new(),
                start: 0,
                end: 0,
                retained: 0,
                phase: Phase::Publishing,
                publishes: 1,
            }),
            changed: tx,
        });
        streams.insert(key.to_string(), Arc::clone(&s));
        Ok(Attached::New(s))
    }

    /// The publisher of `stream` left (cleanly or not) at `now`: the grace period starts. A
    /// publisher that ended its body cleanly still gets the grace period: ffmpeg restarted by a
    /// supervisor reconnects the same way.
    pub fn publisher_left(&self, stream: &LiveStream, now: Instant) {
        {
            let mut log = stream.log();
            if log.phase == Phase::Publishing {
                log.phase = Phase::Disconnected { since: now };
            }
        }
        stream.bump();
    }

    /// End `stream` if its grace period is over at `now` (called by a timer after the grace
    /// period); true if it ended. A stream that was resumed meanwhile is left alone.
    pub fn expire(&self, stream: &Arc<LiveStream>, now: Instant) -> bool {
        let ended = {
            let mut log = stream.log();
            if self.grace_over(log.phase, now) {
                log.phase = Phase::Ended;
                true
            } else {
                false
            }
        };
        if ended {
            stream.bump();
        }
        ended
    }

    /// End `stream` at once (its job could not be queued: nobody will ever pull it).
    pub fn end_now(&self, stream: &LiveStream) {
        stream.log().phase = Phase::Ended;
        stream.bump();
    }

    /// Drop ended streams nobody needs (called when a new stream starts; pullers hold their own
    /// `Arc`). Keeps the map from growing with every stream key ever used.
    pub fn sweep(&self) {
        self.streams().retain(|_, s| s.phase() != Phase::Ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> LiveFanout {
        LiveFanout::new(Duration::from_secs(5), 10)
    }

    fn fresh() -> Option<(String, u32, String)> {
        Some(("vid".into(), 1, "tok".into()))
    }

    fn new_stream(h: &LiveFanout, now: Instant) -> Arc<LiveStream> {
        match h.publish("k", now, fresh).expect("publish") {
            Attached::New(s) => s,
            Attached::Resumed(_) => panic!("expected a new stream"),
        }
    }

    #[test]
    fn one_publisher_per_key() {
        let h = hub();
        let now = Instant::now();
        let s = new_stream(&h, now);
        assert_eq!(
            h.publish("k", now, fresh).err(),
            Some(PublishError::Busy("k".into()))
        );
        assert!(h.publish("other", now, fresh).is_ok());
        assert_eq!(s.publishes(), 1);
    }

    #[test]
    fn pullers_read_from_their_offset_and_wait_at_the_end() {
        let h = hub();
        let s = new_stream(&h, Instant::now());
        assert_eq!(s.read(0), PullRead::Wait);
        s.push(Bytes::from_static(b"abc"));
        s.push(Bytes::from_static(b"de"));
        assert_eq!(
            s.read(0),
            PullRead::Data(
                vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")],
                5
            )
        );
        assert_eq!(
            s.read(1),
            PullRead::Data(
                vec![Bytes::from_static(b"bc"), Bytes::from_static(b"de")],
                5
            )
        );
        assert_eq!(s.read(5), PullRead::Wait);
    }

    #[test]
    fn the_log_is_bounded_and_slow_pullers_lag() {
        let h = hub();
        let s = new_stream(&h, Instant::now());
        for _ in 0..5 {
            s.push(Bytes::from_static(b"xyz"));
        }
        // 10-byte bound: 3 chunks of 3 bytes remain (offsets 6..15).
        assert_eq!(s.first_offset(), 6);
        assert_eq!(s.read(3), PullRead::Lagged);
        assert!(matches!(s.read(6), PullRead::Data(c, 15) if c.len() == 3));
    }

    #[test]
    fn reconnect_within_grace_continues_the_stream() {
        let h = hub();
        let t0 = Instant::now();
        let s = new_stream(&h, t0);
        s.push(Bytes::from_static(b"ab"));
        h.publisher_left(&s, t0);
        assert_eq!(s.read(2), PullRead::Wait, "no EOF during the grace period");
        assert!(!h.needs_new_stream("k", t0 + Duration::from_secs(4)));
        let again = h
            .publish("k", t0 + Duration::from_secs(4), || {
                panic!("no new identity")
            })
            .expect("resume");
        let Attached::Resumed(again) = again else {
            panic!("expected a resumed stream")
        };
        assert!(Arc::ptr_eq(&again, &s));
        assert_eq!(s.publishes(), 2);
        // The timer of the first disconnect finds the stream resumed and leaves it.
        assert!(!h.expire(&s, t0 + Duration::from_secs(6)));
        again.push(Bytes::from_static(b"c"));
        assert_eq!(s.read(2), PullRead::Data(vec![Bytes::from_static(b"c")], 3));
    }

    #[test]
    fn after_the_grace_period_pullers_get_eof_and_the_key_starts_over() {
        let h = hub();
        let t0 = Instant::now();
        let s = new_stream(&h, t0);
        s.push(Bytes::from_static(b"ab"));
        h.publisher_left(&s, t0);
        assert!(!h.expire(&s, t0 + Duration::from_secs(4)));
        assert!(h.expire(&s, t0 + Duration::from_secs(5)));
        assert_eq!(s.phase(), Phase::Ended);
        assert!(matches!(s.read(0), PullRead::Data(_, 2)), "drain first");
        assert_eq!(s.read(2), PullRead::Eof);
        assert!(h.needs_new_stream("k", t0 + Duration::from_secs(5)));
        let next = h
            .publish("k", t0 + Duration::from_secs(6), || {
                Some(("vid".into(), 2, "t2".into()))
            })
            .expect("publish");
        assert!(matches!(next, Attached::New(ref n) if n.version == 2));
    }

    #[test]
    fn a_publisher_after_an_unexpired_grace_starts_a_new_stream() {
        let h = hub();
        let t0 = Instant::now();
        let s = new_stream(&h, t0);
        h.publisher_left(&s, t0);
        // The caller looked before the grace ran out and brought no identity: asked for one.
        assert_eq!(
            h.publish("k", t0 + Duration::from_secs(9), || None).err(),
            Some(PublishError::NeedsIdentity)
        );
        assert_eq!(s.phase(), Phase::Ended, "the old stream's pullers get EOF");
        let next = h
            .publish("k", t0 + Duration::from_secs(9), || {
                Some(("vid".into(), 2, "t".into()))
            })
            .expect("publish");
        assert!(matches!(next, Attached::New(_)));
    }

    #[test]
    fn changes_wake_subscribers() {
        let h = hub();
        let s = new_stream(&h, Instant::now());
        let mut rx = s.subscribe();
        assert!(!rx.has_changed().expect("open"));
        s.push(Bytes::from_static(b"a"));
        assert!(rx.has_changed().expect("open"));
        rx.mark_unchanged();
        h.publisher_left(&s, Instant::now());
        assert!(rx.has_changed().expect("open"));
    }
}
