//! The process-wide registry of followed renditions: which feeds exist, when each was last asked
//! for, and the shared settings, Redis client, clock and counters of the live path.
//!
//! Its mutex is taken only to start, find (first time per core) or stop a follower, never per
//! request. The follower tasks ([`crate::live::follower_task`]) read it to know when to stop;
//! the hub ([`crate::live::hub`]) adds and finds feeds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::live::feed::{Phase, RenditionFeed};
use crate::live::keys::RenditionId;
use crate::live::settings::LiveSettings;
use crate::live::stats::LiveStats;

/// Above this many registry entries, expired negative entries are pruned on insert.
const PRUNE_ABOVE: usize = 4096;

/// Shared state of the live path.
pub struct Registry {
    pub settings: LiveSettings,
    pub client: Option<redis::Client>,
    feeds: Mutex<HashMap<RenditionId, Arc<RenditionFeed>>>,
    clock: SharedClock,
    epoch: Instant,
    closed: AtomicBool,
    pub stats: LiveStats,
    /// When a failed probe last logged a warning (ms since the epoch, 0 = never).
    /// At most one probe-failure warning per 10 s (every VOD rendition probes while Redis is
    /// down).
    pub(crate) probe_warn: ringcast_infra::log_limit::LogEvery,
}

impl Registry {
    pub(crate) fn new(
        settings: LiveSettings,
        client: Option<redis::Client>,
        clock: SharedClock,
    ) -> Self {
        Self {
            settings,
            client,
            feeds: Mutex::new(HashMap::new()),
            epoch: clock.now(),
            clock,
            closed: AtomicBool::new(false),
            stats: LiveStats::default(),
            probe_warn: ringcast_infra::log_limit::LogEvery::new(Duration::from_secs(10)),
        }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Milliseconds since the registry was made (what the feeds' access times count in).
    pub(crate) fn now_ms(&self) -> u64 {
        self.ms_at(self.now())
    }

    /// Milliseconds since the epoch of `at` (an instant of this registry's clock).
    pub(crate) fn ms_at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Still worth handing out: running, or a "no stream" answer younger than `probe_ttl_ms`.
    pub(crate) fn usable(&self, f: &RenditionFeed, now: Instant) -> bool {
        self.usable_with(f, || now)
    }

    /// [`Registry::usable`] reading the clock (`now`) only for a "no stream" answer.
    pub(crate) fn usable_with(&self, f: &RenditionFeed, now: impl FnOnce() -> Instant) -> bool {
        let p = f.load();
        match p.phase {
            Phase::NoStream => {
                now().saturating_duration_since(p.at)
                    < Duration::from_millis(self.settings.probe_ttl_ms)
            }
            _ => !f.is_stopped(),
        }
    }

    /// The usable feed of `id`, or a new one (`None` for the feed: the caller starts its
    /// follower).
    pub(crate) fn find_or_insert(&self, id: &RenditionId) -> (Arc<RenditionFeed>, bool) {
        let now = self.now();
        let mut feeds = super::lock(&self.feeds);
        if let Some(f) = feeds.get(id) {
            if self.usable(f, now) {
                return (Arc::clone(f), false);
            }
        }
        if feeds.len() > PRUNE_ABOVE {
            feeds.retain(|_, f| self.usable(f, now));
        }
        let feed = Arc::new(RenditionFeed::new(id.clone(), now, self.now_ms()));
        feeds.insert(id.clone(), Arc::clone(&feed));
        (feed, true)
    }

    /// The usable feed of `id`, if any.
    pub(crate) fn find(&self, id: &RenditionId) -> Option<Arc<RenditionFeed>> {
        let now = self.now();
        super::lock(&self.feeds)
            .get(id)
            .filter(|f| self.usable(f, now))
            .cloned()
    }

    /// Marks the registry closed and stops every feed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Relaxed);
        for f in super::lock(&self.feeds).drain().map(|(_, f)| f) {
            f.stop();
        }
    }

    /// How many feeds have a live state.
    pub(crate) fn live_count(&self) -> usize {
        super::lock(&self.feeds)
            .values()
            .filter(|f| matches!(f.load().phase, Phase::Live(_)))
            .count()
    }

    /// Stops `feed` if nobody asked for it within `idle_stop_ms`; decided under the registry
    /// lock so a core cannot pick it up in between.
    pub(crate) fn stop_if_idle(&self, feed: &Arc<RenditionFeed>) -> bool {
        let mut feeds = super::lock(&self.feeds);
        let idle = self.now_ms().saturating_sub(feed.last_access_ms()) > self.settings.idle_stop_ms;
        if !idle && !self.is_closed() {
            return false;
        }
        if feeds.get(&feed.id).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(&feed.id);
        }
        drop(feeds);
        feed.stop();
        self.stats.followers_stopped.fetch_add(1, Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;

    fn id() -> RenditionId {
        RenditionId {
            video: "v".into(),
            version: 1,
            rendition: "r".into(),
        }
    }

    fn registry(clock: &TestClock) -> Registry {
        let settings = LiveSettings {
            probe_ttl_ms: 1000,
            idle_stop_ms: 5000,
            ..LiveSettings::default()
        };
        Registry::new(settings, None, clock.shared())
    }

    #[test]
    fn a_no_stream_answer_is_kept_until_exactly_probe_ttl() {
        let clock = TestClock::default();
        let r = registry(&clock);
        let (feed, new) = r.find_or_insert(&id());
        assert!(new);
        feed.publish(Phase::NoStream, r.now());
        feed.stop();
        clock.advance(Duration::from_millis(999));
        assert!(r.find(&id()).is_some_and(|f| Arc::ptr_eq(&f, &feed)));
        assert!(!r.find_or_insert(&id()).1, "still remembered: no new probe");
        clock.advance(Duration::from_millis(1));
        assert!(r.find(&id()).is_none(), "expired at the TTL");
        assert!(r.find_or_insert(&id()).1, "probed again");
    }

    #[test]
    fn a_follower_stops_once_idle_for_longer_than_idle_stop_ms() {
        let clock = TestClock::default();
        let r = registry(&clock);
        let (feed, _) = r.find_or_insert(&id());
        feed.publish(Phase::Pending, r.now());
        clock.advance(Duration::from_millis(3000));
        feed.touch(r.now_ms());
        clock.advance(Duration::from_millis(5000));
        assert!(!r.stop_if_idle(&feed), "idle for exactly idle_stop_ms");
        assert!(!feed.is_stopped());
        clock.advance(Duration::from_millis(1));
        assert!(r.stop_if_idle(&feed));
        assert!(feed.is_stopped());
        assert!(r.find(&id()).is_none());
        assert_eq!(r.stats.followers_stopped.load(Relaxed), 1);
    }
}
