//! The object lookup across both tiers and the origin: what `GET /v/...` asks.
//!
//! 1. Memory (`quick_cache`): a fresh entry answers. An entry of kind `OnDisk` is a stand-in
//!    for a disk-tier file: the file is opened and sent with `sendfile`. An expired playlist may
//!    be served stale while one background refresh runs ([`crate::tiers::policy::staleness`]).
//! 2. Disk index: a file known to the disk tier but not (any more) to memory (after a restart,
//!    or after memory evicted the stand-in) answers and gets its stand-in back.
//! 3. Origin, coalesced: the memory cache's load guard makes one request per key (on any worker)
//!    the loader; the others wait for its result. The loader decides the tier
//!    ([`crate::tiers::policy::tier_for`]); a large immutable object is written to the disk tier
//!    (temp file + rename, on the side runtime's blocking pool) and the waiters receive the
//!    stand-in, so N concurrent misses cost one origin fetch and one disk fill. A failed fetch
//!    stores nothing and hands the load to the next waiter; a failed disk write keeps the object
//!    in memory instead.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ringcast_infra::side_runtime;
use ringcast_proto::http::conditional::EntityTag;

use crate::error::EdgeError;
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::peers::{Fetched, Peers};
use crate::tiers::content::{self, Freshness};
use crate::tiers::disk::{DiskObject, DiskTier, Stored};
use crate::tiers::memory::{CacheStatus, Entry, EntryKind, Loaded, MemoryCache, RefreshState};
use crate::tiers::page_cache;
use crate::tiers::policy::{self, StaleWindows, Staleness, Tier};

/// Tiering settings from the config.
#[derive(Debug, Clone, Copy)]
pub struct Tiering {
    /// Immutable objects of at least this size go to the disk tier (when there is one).
    pub disk_min_object_bytes: u64,
    pub stale: StaleWindows,
}

/// What a lookup found.
#[derive(Debug)]
pub struct Found {
    /// Headers (and, unless `disk` is set, the body) of the answer. Kind `Object` or `NotFound`.
    pub entry: Entry,
    /// The disk-tier file to send instead of `entry.body`.
    pub disk: Option<DiskObject>,
    pub status: CacheStatus,
    /// Seconds since the origin answered (`Age`).
    pub age: u64,
}

/// Everything a lookup needs (the `Arc`s let a background refresh outlive its request).
pub struct TierSet<'a> {
    pub origin: &'a Arc<Origin>,
    pub cache: &'a Arc<MemoryCache>,
    pub disk: Option<&'a Arc<DiskTier>>,
    pub metrics: &'a Arc<Metrics>,
    pub tiering: Tiering,
    /// The edge tier: a miss asks the key's owner edge before the origin (`None`: tier off,
    /// or the request came from a peer and must not be forwarded again).
    pub peers: Option<&'a Arc<Peers>>,
}

/// Find `key`. Retries when a disk-tier file vanished between the index and the open (evicted
/// or deleted); gives up after a few rounds with a 500 rather than looping.
pub async fn lookup(t: &TierSet<'_>, key: &str) -> Result<Found, EdgeError> {
    for _ in 0..3 {
        if let Some(found) = lookup_once(t, key).await? {
            if let Some(obj) = &found.disk {
                page_cache::make_resident(&obj.file, obj.len, t.metrics)
                    .await
                    .map_err(EdgeError::DiskTier)?;
            }
            return Ok(found);
        }
    }
    Err(EdgeError::DiskTier(std::io::Error::other(
        "disk-tier object kept vanishing",
    )))
}

async fn lookup_once(t: &TierSet<'_>, key: &str) -> Result<Option<Found>, EdgeError> {
    let now = t.cache.now();
    let m = t.metrics;
    if let Some(entry) = t.cache.peek(key) {
        let failed = entry.refresh.as_ref().is_some_and(|r| r.failed());
        let revalidates = entry.refresh.is_some();
        match policy::staleness(entry.expires, revalidates, failed, now, t.tiering.stale) {
            Staleness::Fresh if entry.kind == EntryKind::OnDisk => {
                match t.disk.and_then(|d| d.lookup(key)) {
                    Some(obj) => {
                        m.cache_hit();
                        return Ok(Some(disk_found(entry, obj, CacheStatus::Hit, m)));
                    }
                    None => t.cache.remove_if(key, |e| e.kind == EntryKind::OnDisk),
                }
            }
            Staleness::Fresh => {
                m.cache_hit();
                let age = entry.age_secs(now);
                return Ok(Some(Found {
                    entry,
                    disk: None,
                    status: CacheStatus::Hit,
                    age,
                }));
            }
            Staleness::ServeStale => {
                if let Some(state) = &entry.refresh {
                    if state.try_start() {
                        spawn_refresh(t, key, Arc::clone(state));
                    }
                }
                m.stale_served();
                let age = entry.age_secs(now);
                return Ok(Some(Found {
                    entry,
                    disk: None,
                    status: CacheStatus::Stale,
                    age,
                }));
            }
            // `get_with` below drops the expired entry and fetches through the guard.
            Staleness::Expired => {}
        }
    } else if let Some(obj) = t.disk.and_then(|d| d.lookup(key)) {
        let etag = disk_etag(&obj).await?;
        let stand_in = disk_stand_in(key, &obj, etag, now);
        t.cache.insert(key, stand_in.clone());
        m.cache_hit();
        return Ok(Some(disk_found(stand_in, obj, CacheStatus::Hit, m)));
    }
    let (entry, status) = t.cache.get_with(key, m, || load(t, key)).await?;
    if entry.kind != EntryKind::OnDisk {
        let age = entry.age_secs(t.cache.now());
        return Ok(Some(Found {
            entry,
            disk: None,
            status,
            age,
        }));
    }
    // Another request filled the disk tier; send its file.
    match t.disk.and_then(|d| d.lookup(key)) {
        Some(obj) => Ok(Some(disk_found(entry, obj, status, m))),
        None => {
            t.cache.remove_if(key, |e| e.kind == EntryKind::OnDisk);
            Ok(None)
        }
    }
}

fn disk_found(entry: Entry, obj: DiskObject, status: CacheStatus, m: &Metrics) -> Found {
    m.disk_hit();
    let age = SystemTime::now()
        .duration_since(obj.filled_at)
        .map_or(0, |d| d.as_secs());
    Found {
        entry,
        disk: Some(obj),
        status,
        age,
    }
}

/// The content-derived ETag of a disk-tier file that has no memory stand-in (after a restart,
/// or after memory evicted it): the file is read once, on the side runtime's blocking pool, so
/// validators stay identical across restarts and tiers.
async fn disk_etag(obj: &DiskObject) -> Result<EntityTag, EdgeError> {
    use std::os::unix::fs::FileExt;
    let file = obj.file.try_clone().map_err(EdgeError::DiskTier)?;
    let len = usize::try_from(obj.len)
        .map_err(|_| EdgeError::DiskTier(std::io::Error::other("disk-tier file too large")))?;
    let hashed = side_runtime::run_blocking(move || {
        let mut buf = vec![0u8; len];
        // Positional read: the shared file offset stays where sendfile does not care.
        file.read_exact_at(&mut buf, 0)
            .map(|()| EntityTag::of(&buf))
    })
    .await
    .map_err(|e| EdgeError::DiskTier(std::io::Error::other(e.to_string())))?;
    hashed.map_err(EdgeError::DiskTier)
}

/// The memory stand-in for a file found in the disk tier (only immutable objects go there).
fn disk_stand_in(key: &str, obj: &DiskObject, etag: EntityTag, now: Instant) -> Entry {
    let filled_ago = SystemTime::now()
        .duration_since(obj.filled_at)
        .unwrap_or_default();
    Entry {
        kind: EntryKind::OnDisk,
        body: bytes::Bytes::new(),
        content_type: content::content_type(key),
        cache_control: Freshness::Immutable.cache_control(),
        fetched_at: now.checked_sub(filled_ago).unwrap_or(now),
        expires: None,
        refresh: None,
        etag,
        last_modified: obj
            .filled_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        gzip: None,
    }
}

/// The loader: one fetch (from the owner edge or the origin, see [`fetch`]), then the tier
/// decision.
async fn load(t: &TierSet<'_>, key: &str) -> Result<Loaded, EdgeError> {
    let fetched = fetch(t.origin, t.peers, t.cache, t.metrics, key).await?;
    let now = t.cache.now();
    let Some(body) = fetched else {
        return Ok(Loaded::same(Entry::not_found(now, t.cache.not_found_ttl())));
    };
    let entry = Entry::object(key, body, now, t.cache.playlist_ttl());
    let Some(disk) = t.disk else {
        return Ok(Loaded::same(entry));
    };
    let freshness = content::freshness(key, &entry.body);
    let size = entry.body.len() as u64;
    let playlist = key.ends_with(".m3u8");
    let disk_min = Some(t.tiering.disk_min_object_bytes);
    if policy::tier_for(freshness, playlist, size, disk_min) != Tier::Disk {
        return Ok(Loaded::same(entry));
    }
    let (d, k, b) = (Arc::clone(disk), key.to_string(), entry.body.clone());
    match side_runtime::run_blocking(move || d.store(&k, &b)).await {
        Ok(Ok(Stored::Yes)) => {
            t.metrics.disk_fill();
            // This request answers from the bytes it holds; everyone else gets the file.
            return Ok(Loaded {
                keep: entry.on_disk(),
                serve: entry,
            });
        }
        Ok(Ok(Stored::TooLarge)) => {}
        Ok(Err(e)) => {
            t.metrics.disk_fill_error();
            tracing::warn!(key, error = %e, "disk-tier fill failed; keeping the object in memory");
        }
        Err(e) => {
            t.metrics.disk_fill_error();
            tracing::warn!(key, error = %e, "disk-tier fill task failed");
        }
    }
    Ok(Loaded::same(entry))
}

/// Refresh an expired playlist in the background on this worker; the stale copy answers
/// meanwhile. A 404 replaces it (the object is gone: no stale-if-error for that); an error or
/// timeout keeps it and marks the refresh failed (stale-if-error).
fn spawn_refresh(t: &TierSet<'_>, key: &str, state: Arc<RefreshState>) {
    let origin = Arc::clone(t.origin);
    let peers = t.peers.map(Arc::clone);
    let cache = Arc::clone(t.cache);
    let metrics = Arc::clone(t.metrics);
    let key = key.to_string();
    monoio::spawn(async move {
        let fetched = fetch(&origin, peers.as_ref(), &cache, &metrics, &key).await;
        let now = cache.now();
        let failed = match fetched {
            Ok(Some(body)) => {
                cache.insert(&key, Entry::object(&key, body, now, cache.playlist_ttl()));
                false
            }
            Ok(None) => {
                if cache.not_found_ttl().is_zero() {
                    cache.remove_if(&key, |_| true);
                } else {
                    cache.insert(&key, Entry::not_found(now, cache.not_found_ttl()));
                }
                false
            }
            Err(e) => {
                metrics.origin_error();
                tracing::warn!(key, error = %e, "playlist refresh failed; serving stale");
                true
            }
        };
        state.finish(failed);
    });
}

/// The object from its owner edge, when the edge tier is on and another (live) edge owns `key`;
/// otherwise, or when the owner fails, from the origin within the origin timeout (504 after).
/// Only origin fetches count as `origin_fetches`.
async fn fetch(
    origin: &Origin,
    peers: Option<&Arc<Peers>>,
    cache: &MemoryCache,
    metrics: &Metrics,
    key: &str,
) -> Result<Option<bytes::Bytes>, EdgeError> {
    if let Some((peers, owner)) = peers.and_then(|p| Some((p, p.owner(key)?))) {
        if let Fetched::Answer(got) = peers.fetch(owner, key).await {
            return Ok(got);
        }
    }
    metrics.origin_fetch();
    match monoio::time::timeout(
        cache.origin_timeout(),
        crate::origin::trace::fetch(origin, key),
    )
    .await
    {
        Ok(fetched) => fetched,
        Err(_elapsed) => Err(EdgeError::OriginTimeout),
    }
}
