//! Which tier keeps an object, and when an expired playlist may still be served. Pure
//! functions of the object and the clock; ADR 0005 explains the choices.
//!
//! - Playlists (mutable or not) and anything smaller than `disk_min_object_bytes` (LL-HLS parts,
//!   init segments) live in memory: they are hot, small, and a 1 KB answer goes out in the same
//!   write as its head.
//! - Immutable objects of at least `disk_min_object_bytes` (media segments) go to the disk tier
//!   and are sent with `sendfile` from the page cache: no userspace copy, and their bytes do not
//!   count against the process's memory. There is no promotion of hot segments into memory:
//!   the page cache already is the hot tier for them, and serving from it is cheaper than from
//!   the memory tier (ADR 0005's measurement).
//! - Without a disk tier everything lives in memory.
//!
//! Stale serving (RFC 5861 semantics, for mutable entries only):
//! - within `stale_while_revalidate` after expiry: serve the stale copy, refresh in the
//!   background (one refresh at a time across all workers);
//! - after a refresh failed (origin error or timeout, not a 404) and within `stale_if_error`
//!   after expiry: keep serving the stale copy and keep retrying in the background;
//! - otherwise: fetch before answering (coalesced).

use std::time::{Duration, Instant};

use crate::tiers::content::Freshness;

/// Where an object is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
}

/// The tier for an object of `size` bytes with `freshness`; `disk_min` is `None` without a disk
/// tier. Playlists always stay in memory, even large finished ones: they are text the edge may
/// compress or rewrite per request, which needs the bytes at hand.
pub fn tier_for(freshness: Freshness, playlist: bool, size: u64, disk_min: Option<u64>) -> Tier {
    match (freshness, disk_min) {
        (Freshness::Immutable, Some(min)) if size >= min && !playlist => Tier::Disk,
        _ => Tier::Memory,
    }
}

/// Stale-serving windows after a mutable entry expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleWindows {
    pub while_revalidate: Duration,
    pub if_error: Duration,
}

/// What to do with a cached entry at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// Serve it.
    Fresh,
    /// Serve it and refresh it in the background.
    ServeStale,
    /// Do not serve it; fetch again.
    Expired,
}

/// Decide for an entry that `expires` (`None` = never) and whose last background refresh
/// `refresh_failed`; `revalidates` is false for entries that must not be served stale (404s).
pub fn staleness(
    expires: Option<Instant>,
    revalidates: bool,
    refresh_failed: bool,
    now: Instant,
    windows: StaleWindows,
) -> Staleness {
    let Some(expires) = expires else {
        return Staleness::Fresh;
    };
    if now < expires {
        return Staleness::Fresh;
    }
    if !revalidates {
        return Staleness::Expired;
    }
    let late = now.saturating_duration_since(expires);
    if late < windows.while_revalidate || (refresh_failed && late < windows.if_error) {
        Staleness::ServeStale
    } else {
        Staleness::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_immutable_objects_go_to_disk_when_there_is_one() {
        let min = Some(512 * 1024);
        let immutable = Freshness::Immutable;
        assert_eq!(tier_for(immutable, false, 2 << 20, min), Tier::Disk);
        assert_eq!(tier_for(immutable, false, 512 * 1024, min), Tier::Disk);
        assert_eq!(tier_for(immutable, false, 1024, min), Tier::Memory);
        assert_eq!(
            tier_for(Freshness::Mutable, false, 2 << 20, min),
            Tier::Memory
        );
        assert_eq!(tier_for(immutable, false, 2 << 20, None), Tier::Memory);
        assert_eq!(
            tier_for(immutable, true, 2 << 20, min),
            Tier::Memory,
            "big VOD playlist"
        );
    }

    #[test]
    fn stale_windows() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let w = StaleWindows {
            while_revalidate: s(2),
            if_error: s(60),
        };
        let at = |secs| t0 + s(secs);
        assert_eq!(staleness(None, true, false, at(999), w), Staleness::Fresh);
        assert_eq!(
            staleness(Some(at(10)), true, false, at(9), w),
            Staleness::Fresh
        );
        assert_eq!(
            staleness(Some(at(10)), true, false, at(10), w),
            Staleness::ServeStale
        );
        assert_eq!(
            staleness(Some(at(10)), true, false, at(11), w),
            Staleness::ServeStale
        );
        assert_eq!(
            staleness(Some(at(10)), true, false, at(12), w),
            Staleness::Expired
        );
        // After a failed refresh the stale copy lasts for the stale-if-error window.
        assert_eq!(
            staleness(Some(at(10)), true, true, at(50), w),
            Staleness::ServeStale
        );
        assert_eq!(
            staleness(Some(at(10)), true, true, at(70), w),
            Staleness::Expired
        );
        // Negative entries are never served stale.
        assert_eq!(
            staleness(Some(at(10)), false, true, at(11), w),
            Staleness::Expired
        );
    }
}
