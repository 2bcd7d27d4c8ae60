//! The edge's part of the platform: per-video visibility (private videos need a signed URL)
//! and fleet-wide purges, both from Redis (DESIGN.md "Edge as a CDN node", "Private playback").
//!
//! - [`settings`]: `[platform]` in the config.
//! - [`visibility`]: the shared visibility cache (TTL, single-flight, stale-if-error).
//! - [`fleet`]: applying what arrives on `rc:purge` (messages and resubscriptions) to every
//!   cache tier; the subscription itself is `ringcast_infra::purge` on the side runtime.
//! - [`stats`]: their counters.
//!
//! With `platform.enabled` off (its default in front of a directory or HTTP origin) every video
//! is public and purges reach this edge only through its own `POST /purge`.

pub mod fleet;
pub mod settings;
pub mod stats;
pub mod visibility;

use std::sync::Arc;
use std::time::Duration;

use ringcast_infra::purge::PurgePublisher;
use ringcast_infra::visibility::VisibilityReader;
use ringcast_proto::prometheus::Writer;

use crate::clock::{self, SharedClock};
use crate::platform::settings::PlatformSettings;
use crate::platform::stats::PlatformStats;
use crate::platform::visibility::VisibilityCache;

/// The platform state every worker shares (cheap to clone).
#[derive(Clone)]
pub struct Platform {
    inner: Option<Arc<Enabled>>,
    pub stats: Arc<PlatformStats>,
}

struct Enabled {
    visibility: VisibilityCache,
    publisher: PurgePublisher,
    redis_url: String,
    settings: PlatformSettings,
}

impl Platform {
    /// The platform of `settings` on the Redis at `redis_url` (connections open lazily), for
    /// an edge whose origin is (`origin_is_store`) or is not the object store.
    pub fn new(
        settings: &PlatformSettings,
        origin_is_store: bool,
        redis_url: &str,
    ) -> Result<Self, String> {
        Self::with_clock(settings, origin_is_store, redis_url, clock::system())
    }

    /// [`Platform::new`] reading `clock` (visibility TTLs).
    pub fn with_clock(
        settings: &PlatformSettings,
        origin_is_store: bool,
        redis_url: &str,
        clock: SharedClock,
    ) -> Result<Self, String> {
        settings.check()?;
        let stats = Arc::<PlatformStats>::default();
        if !settings.is_enabled(origin_is_store) {
            return Ok(Self { inner: None, stats });
        }
        let timeout = Duration::from_millis(settings.redis_timeout_ms);
        let reader =
            VisibilityReader::new(redis_url, timeout).map_err(|e| format!("redis.url: {e}"))?;
        let publisher =
            PurgePublisher::new(redis_url, timeout).map_err(|e| format!("redis.url: {e}"))?;
        let visibility = VisibilityCache::new(
            reader,
            settings.visibility_max_entries,
            Duration::from_millis(settings.visibility_ttl_ms),
            timeout,
            clock,
            Arc::clone(&stats),
        );
        Ok(Self {
            inner: Some(Arc::new(Enabled {
                visibility,
                publisher,
                redis_url: redis_url.to_string(),
                settings: settings.clone(),
            })),
            stats,
        })
    }

    /// Every video public, no fleet purges.
    pub fn disabled() -> Self {
        Self {
            inner: None,
            stats: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The visibility cache, when visibility is enforced.
    pub fn visibility(&self) -> Option<&VisibilityCache> {
        self.inner.as_deref().map(|e| &e.visibility)
    }

    /// The fleet purge publisher, when enabled.
    pub fn publisher(&self) -> Option<&PurgePublisher> {
        self.inner.as_deref().map(|e| &e.publisher)
    }

    /// The Redis URL and Redis timeout, when enabled (to subscribe).
    pub fn redis(&self) -> Option<(&str, Duration)> {
        self.inner.as_deref().map(|e| {
            (
                e.redis_url.as_str(),
                Duration::from_millis(e.settings.redis_timeout_ms),
            )
        })
    }

    /// Prometheus text of the platform counters.
    pub fn render_metrics(&self, w: &mut Writer) {
        let entries = self.visibility().map_or(0, |v| v.len());
        self.stats.render(entries, w);
    }
}
