//! The handle every worker holds on the live path: find or start the follower of a rendition,
//! stop them all at shutdown, render the counters.
//!
//! Lifecycle: a follower starts on the first playlist request for a rendition and first probes
//! Redis. No stream → [`Phase::NoStream`](crate::live::feed::Phase), remembered for
//! `probe_ttl_ms`, and the request is served from the object store (VOD). It stops after
//! `idle_stop_ms` without requests.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use ringcast_proto::prometheus::Writer;

use crate::clock::{self, SharedClock};
use crate::live::feed::RenditionFeed;
use crate::live::follower_task;
use crate::live::keys::RenditionId;
use crate::live::registry::Registry;
use crate::live::settings::LiveSettings;
use crate::live::stats::LiveStats;

/// Handle to the live path's shared state (cheap to clone).
#[derive(Clone)]
pub struct LiveHub {
    pub registry: Arc<Registry>,
}

impl LiveHub {
    /// A hub for `settings`; the Redis client is only built here (connections are opened by the
    /// followers).
    pub fn new(settings: LiveSettings, redis_url: &str) -> Result<Self, String> {
        Self::with_clock(settings, redis_url, clock::system())
    }

    /// [`LiveHub::new`] reading `clock` (tests put "no stream" answers and idle followers
    /// exactly at their limits).
    pub fn with_clock(
        settings: LiveSettings,
        redis_url: &str,
        clock: SharedClock,
    ) -> Result<Self, String> {
        settings.check()?;
        let client = if settings.enabled {
            Some(redis::Client::open(redis_url).map_err(|e| format!("redis.url: {e}"))?)
        } else {
            None
        };
        Ok(Self::from_registry(Registry::new(settings, client, clock)))
    }

    /// A hub that never serves live (every request goes to the store).
    pub fn disabled() -> Self {
        let settings = LiveSettings {
            enabled: false,
            ..LiveSettings::default()
        };
        Self::from_registry(Registry::new(settings, None, clock::system()))
    }

    fn from_registry(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
        }
    }

    pub fn enabled(&self) -> bool {
        self.registry.client.is_some() && !self.registry.is_closed()
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.registry.settings
    }

    pub fn stats(&self) -> &LiveStats {
        &self.registry.stats
    }

    /// The live path's clock.
    pub fn now(&self) -> Instant {
        self.registry.now()
    }

    pub fn now_ms(&self) -> u64 {
        self.registry.now_ms()
    }

    /// [`LiveHub::now_ms`] of an instant already read from [`LiveHub::now`].
    pub fn ms_at(&self, at: Instant) -> u64 {
        self.registry.ms_at(at)
    }

    /// The feed of `id`, its follower started when there is none (or the previous one is over).
    pub fn feed(&self, id: &RenditionId) -> Arc<RenditionFeed> {
        let (feed, new) = self.registry.find_or_insert(id);
        if new {
            self.registry.stats.followers_started.fetch_add(1, Relaxed);
            follower_task::spawn(Arc::clone(&self.registry), Arc::clone(&feed));
        }
        feed
    }

    /// Whether `feed` is still worth using: running, or a "no stream" answer younger than
    /// `probe_ttl_ms`.
    pub fn usable(&self, feed: &RenditionFeed) -> bool {
        self.registry.usable_with(feed, || self.now())
    }

    /// The feed of `id` if its follower is running (never starts one).
    pub fn existing(&self, id: &RenditionId) -> Option<Arc<RenditionFeed>> {
        self.registry.find(id)
    }

    /// Stops every follower (at shutdown); they notice within one `read_block_ms`.
    pub fn close(&self) {
        self.registry.close();
    }

    /// Prometheus text of the live counters.
    pub fn render_metrics(&self, w: &mut Writer) {
        self.registry.stats.render(self.registry.live_count(), w);
    }
}
