//! The state every worker shares: the tiers, the origin, metrics, access rules, the live hub
//! and the platform (visibility, fleet purges).
//!
//! Its own module because the routes, the purge API, the live request handler and the server all
//! take it: kept in `routes` it made each of them import the routes and be imported back.

use std::sync::Arc;

use crate::front_door::FrontDoor;
use crate::live::hub::LiveHub;
use crate::metrics::{Gauges, Metrics};
use crate::origin::Origin;
use crate::peers::Peers;
use crate::platform::Platform;
use crate::prefetch::stats::Prefetch;
use crate::routes::access_control::Access;
use crate::tiers::disk::DiskTier;
use crate::tiers::memory::MemoryCache;
use crate::tiers::{TierSet, Tiering};
use crate::web::Web;

/// State every worker shares (behind one `Arc`; the inner `Arc`s let background playlist
/// refreshes outlive the request that started them).
#[derive(Clone)]
pub struct Shared {
    pub origin: Arc<Origin>,
    pub cache: Arc<MemoryCache>,
    /// The disk tier, when `disk_cache_dir` is set.
    pub disk: Option<Arc<DiskTier>>,
    pub tiering: Tiering,
    pub metrics: Arc<Metrics>,
    /// Admin key and signed-URL secret.
    pub access: Access,
    /// Live LL-HLS: followed event streams (see `live::handler`).
    pub live: LiveHub,
    /// Visibility and fleet purges (see `platform`).
    pub platform: Platform,
    /// The front door to the ingest pool, when `[front_door] nodes` is set.
    pub front_door: Option<Arc<FrontDoor>>,
    /// The browser page at `/` (see `web`).
    pub web: Web,
    /// The edge tier, when `[peers] nodes` is set.
    pub peers: Option<Arc<Peers>>,
    /// CMCD next-object warm-ups (see `prefetch`).
    pub prefetch: Arc<Prefetch>,
}

impl Shared {
    /// The tiers as a viewer's lookup sees them: misses go to the key's owner edge first.
    pub fn tiers(&self) -> TierSet<'_> {
        TierSet {
            origin: &self.origin,
            cache: &self.cache,
            disk: self.disk.as_ref(),
            metrics: &self.metrics,
            tiering: self.tiering,
            peers: self.peers.as_ref(),
        }
    }

    /// The tiers as a peer's lookup sees them: misses go to the origin, never to another edge.
    pub fn tiers_for_peer(&self) -> TierSet<'_> {
        TierSet {
            peers: None,
            ..self.tiers()
        }
    }

    /// Memory and disk gauges for `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let mut g = self.cache.gauges();
        if let Some(disk) = &self.disk {
            let d = disk.gauges();
            g.disk_bytes = d.bytes;
            g.disk_capacity_bytes = d.capacity_bytes;
            g.disk_entries = d.entries;
            g.disk_evictions = disk.evictions();
        }
        g
    }
}
