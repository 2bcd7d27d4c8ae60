//! Fleet-wide purges as they arrive on `rc:purge` (`ringcast_infra::purge::subscriber`, on the
//! side runtime's blocking pool): apply each message to every cache tier — the memory cache
//! and the disk tier are shared by all workers, so one application reaches every core — and
//! drop the cached visibility of its `videos`.
//!
//! After every (re)subscription the edge assumes it missed messages (pub/sub keeps nothing for
//! absent subscribers) and drops what a missed message could have made wrong: every cached
//! visibility, and every mutable entry of the memory cache (current-master pointers
//! `v/{id}/master.m3u8`, playlists still growing, remembered "not found"s). Immutable objects
//! (media, versioned and ended playlists, posters) never change under their name, so they stay;
//! a missed purge of a deleted video's media leaves bytes that the next prefix purge or the LRU
//! removes, and the visibility check still guards them.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ringcast_infra::purge::{spawn_subscriber, PurgeEvent, PurgeSubscription, SubscriberSettings};
use ringcast_proto::purge::PurgeMessage;

use crate::error::EdgeError;
use crate::metrics::Metrics;
use crate::platform::stats::PlatformStats;
use crate::platform::Platform;
use crate::routes::purge::{normalize_key, normalize_prefix, purge_tiers};
use crate::shared::Shared;
use crate::tiers::disk::DiskTier;
use crate::tiers::memory::MemoryCache;

/// What a fleet purge acts on (the shared tiers, not the workers).
pub struct FleetTargets {
    cache: Arc<MemoryCache>,
    disk: Option<Arc<DiskTier>>,
    metrics: Arc<Metrics>,
    platform: Platform,
}

impl FleetTargets {
    pub fn new(shared: &Shared) -> Self {
        Self {
            cache: Arc::clone(&shared.cache),
            disk: shared.disk.clone(),
            metrics: Arc::clone(&shared.metrics),
            platform: shared.platform.clone(),
        }
    }

    /// React to one event of the subscription.
    pub fn handle(&self, event: PurgeEvent) {
        let stats = &self.platform.stats;
        match event {
            PurgeEvent::Subscribed { reconnect } => {
                // Dropped before the counters say so: whoever waits for them sees the result.
                let dropped = self.resync();
                stats.resync_dropped.fetch_add(dropped, Relaxed);
                stats.subscribed.store(true, Relaxed);
                PlatformStats::bump(&stats.subscriptions);
                if reconnect {
                    PlatformStats::bump(&stats.subscriber_reconnects);
                }
                tracing::info!(
                    reconnect,
                    dropped,
                    "subscribed to fleet purges; dropped cached visibilities and mutable playlists \
                     a missed purge could have changed"
                );
            }
            PurgeEvent::Disconnected => stats.subscribed.store(false, Relaxed),
            PurgeEvent::Message(msg) => {
                PlatformStats::bump(&stats.purge_received);
                match self.apply(&msg) {
                    Ok(purged) => {
                        PlatformStats::bump(&stats.purge_applied);
                        tracing::info!(
                            keys = msg.keys.len(),
                            prefixes = msg.prefixes.len(),
                            videos = msg.videos.len(),
                            purged,
                            "fleet purge"
                        );
                    }
                    Err(error) => {
                        PlatformStats::bump(&stats.purge_rejected);
                        tracing::warn!(%error, "fleet purge message refused; nothing applied");
                    }
                }
            }
            PurgeEvent::Rejected(error) => {
                PlatformStats::bump(&stats.purge_received);
                PlatformStats::bump(&stats.purge_rejected);
                tracing::warn!(%error, "fleet purge message refused; nothing applied");
            }
        }
    }

    /// Apply a message: every key and prefix checked first (all or nothing), then every tier,
    /// then the visibilities. How many cache entries went.
    pub fn apply(&self, msg: &PurgeMessage) -> Result<u64, EdgeError> {
        let keys = msg
            .keys
            .iter()
            .map(|k| normalize_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let prefixes = msg
            .prefixes
            .iter()
            .map(|p| normalize_prefix(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (purged, _) = purge_tiers(&self.cache, self.disk.as_ref(), &keys, &prefixes);
        self.metrics.purged(purged);
        if let Some(v) = self.platform.visibility() {
            v.forget(msg.videos.iter().map(String::as_str));
        }
        Ok(purged)
    }

    /// Drop what missed messages could have made wrong (see the module docs).
    fn resync(&self) -> u64 {
        let visibilities = self.platform.visibility().map_or(0, |v| v.forget_all());
        visibilities + self.cache.purge_mutable()
    }
}

/// Subscribe this edge to fleet purges (when the platform is enabled).
pub fn subscribe(shared: &Shared) -> Result<Option<PurgeSubscription>, EdgeError> {
    let Some((url, timeout)) = shared.platform.redis() else {
        return Ok(None);
    };
    let targets = FleetTargets::new(shared);
    let settings = SubscriberSettings {
        timeout,
        ..SubscriberSettings::default()
    };
    spawn_subscriber(url, settings, Arc::new(move |e| targets.handle(e)))
        .map(Some)
        .map_err(|e| EdgeError::InvalidConfig(format!("redis.url: {e}")))
}
