//! The memory tier: one byte-weighted `quick_cache` shared by every worker, with single-flight
//! origin fetches.
//!
//! - Lookups take a shard read lock for a hash probe; no lock is held across an await.
//! - A miss goes through `get_value_or_guard_async`: the first request for a key gets the guard
//!   and fetches; concurrent requests for the same key (on any worker) wait and receive the value
//!   the guard inserts. If the fetch fails, the guard is dropped without a value and the next
//!   waiter becomes the loader (it retries the origin), so one failure does not fan out to every
//!   waiter, and no error is ever cached.
//! - Mutable entries carry an expiry; an expired entry is removed (only if it is still the same
//!   expired entry, so a neighbour's fresh insert survives) and the key is fetched again through
//!   the guard.
//! - "Not found" is cached for `not_found_ttl` (≤ 1 s by default) so a burst of requests for a
//!   missing key costs one origin request, while a newly published object shows up quickly.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use ringcast_infra::store::StoreError;
use ringcast_proto::http::conditional::EntityTag;

use crate::clock::{self, SharedClock};
use crate::error::EdgeError;
use crate::metrics::{Gauges, Metrics};
use crate::tiers::content::{self, Freshness};

/// Bookkeeping bytes charged per entry on top of key and body, so empty bodies and negative
/// entries still count against the capacity.
const ENTRY_OVERHEAD: u64 = 128;
/// Typical object size, only used to size the cache's hash tables up front.
const TYPICAL_OBJECT: u64 = 256 * 1024;

/// Whether the origin had the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Object,
    NotFound,
    /// The object lives in the disk tier; this entry only remembers that (and coalesces the
    /// fill). Its `body` is empty.
    OnDisk,
}

/// Background-refresh state of one mutable entry, shared by every clone of it (all workers), so
/// one refresh runs at a time and a failed one is remembered (stale-if-error).
#[derive(Debug, Default)]
pub struct RefreshState {
    running: AtomicBool,
    failed: AtomicBool,
}

impl RefreshState {
    /// Claim the refresh; `false` when one is already running.
    pub fn try_start(&self) -> bool {
        !self.running.swap(true, Ordering::AcqRel)
    }

    /// The refresh ended; `failed` when the origin errored or timed out.
    pub fn finish(&self, failed: bool) {
        self.failed.store(failed, Ordering::Release);
        self.running.store(false, Ordering::Release);
    }

    /// Whether the last refresh failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// One cached origin answer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub body: Bytes,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// When the origin answered (for the `Age` header).
    pub fetched_at: Instant,
    /// `None`: valid until evicted.
    pub expires: Option<Instant>,
    /// Mutable entries: background refresh state (stale-while-revalidate / stale-if-error).
    pub refresh: Option<Arc<RefreshState>>,
    /// Strong validator derived from the body, computed once here (not per request).
    pub etag: EntityTag,
    /// `Last-Modified`: when this edge fetched the object, Unix seconds. The store API gives
    /// no modification time, and the content-derived ETag is the validator that matters.
    pub last_modified: u64,
    /// The gzip-encoded body of a playlist, compressed once when the entry is built; `None`
    /// for media (already compressed) or when gzip does not make it smaller.
    pub gzip: Option<Bytes>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// gzip of a playlist body when it helps (playlists are highly repetitive text).
fn gzip_playlist(content_type: &str, body: &[u8]) -> Option<Bytes> {
    if content_type != ringcast_proto::content_type::PLAYLIST || body.len() < 64 {
        return None;
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3),
        flate2::Compression::fast(),
    );
    enc.write_all(body).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

impl Entry {
    /// Build the entry for an object fetched at `now`, applying the content policy.
    pub fn object(key: &str, body: Bytes, now: Instant, playlist_ttl: Duration) -> Self {
        let freshness = content::freshness(key, &body);
        let content_type = content::content_type(key);
        Self {
            kind: EntryKind::Object,
            content_type,
            etag: EntityTag::of(&body),
            last_modified: unix_now(),
            gzip: gzip_playlist(content_type, &body),
            cache_control: freshness.cache_control(),
            // checked_add: an absurd TTL means "never expires", not a panic.
            expires: match freshness {
                Freshness::Immutable => None,
                Freshness::Mutable => now.checked_add(playlist_ttl),
            },
            refresh: (freshness == Freshness::Mutable).then(Default::default),
            fetched_at: now,
            body,
        }
    }

    /// The memory-tier stand-in for an object stored in the disk tier: same headers, no body.
    pub fn on_disk(&self) -> Self {
        Self {
            kind: EntryKind::OnDisk,
            body: Bytes::new(),
            refresh: None,
            ..self.clone()
        }
    }

    /// The remembered "not found" answer.
    pub fn not_found(now: Instant, ttl: Duration) -> Self {
        Self {
            kind: EntryKind::NotFound,
            body: Bytes::new(),
            content_type: "application/json",
            cache_control: "no-store",
            fetched_at: now,
            expires: now.checked_add(ttl),
            refresh: None,
            etag: EntityTag::of(b""),
            last_modified: 0,
            gzip: None,
        }
    }

    /// Whether the entry may still be served at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// Whole seconds since the origin answered.
    pub fn age_secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.fetched_at).as_secs()
    }
}

/// Weight = bytes the entry pins in memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntryWeighter;

impl Weighter<String, Entry> for EntryWeighter {
    fn weight(&self, key: &String, val: &Entry) -> u64 {
        let gzip = val.gzip.as_ref().map_or(0, |g| g.len() as u64);
        key.len() as u64 + val.body.len() as u64 + gzip + ENTRY_OVERHEAD
    }
}

/// How a lookup was answered (for the `X-Cache` header and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A fresh entry was there.
    Hit,
    /// Another request was already fetching; this one waited for its result.
    Coalesced,
    /// This request fetched from the origin.
    Miss,
    /// An expired playlist served while it is refreshed (or while the origin fails).
    Stale,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit | CacheStatus::Coalesced => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }
}

/// What a loader produced: the entry to keep in memory for everyone and the entry that answers
/// the loading request (they differ when the body went to the disk tier).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub keep: Entry,
    pub serve: Entry,
}

impl Loaded {
    /// Keep and serve the same entry.
    pub fn same(entry: Entry) -> Self {
        Self {
            keep: entry.clone(),
            serve: entry,
        }
    }
}

/// The shared memory cache.
pub struct MemoryCache {
    entries: Cache<String, Entry, EntryWeighter>,
    capacity: u64,
    playlist_ttl: Duration,
    not_found_ttl: Duration,
    origin_timeout: Duration,
    /// What "now" is for freshness (a test clock in unit tests).
    clock: SharedClock,
}

impl MemoryCache {
    pub fn new(
        capacity_bytes: u64,
        playlist_ttl: Duration,
        not_found_ttl: Duration,
        origin_timeout: Duration,
    ) -> Self {
        let estimated_items = (capacity_bytes / TYPICAL_OBJECT).clamp(64, 1 << 20) as usize;
        Self {
            entries: Cache::with_weighter(estimated_items, capacity_bytes, EntryWeighter),
            capacity: capacity_bytes,
            playlist_ttl,
            not_found_ttl,
            origin_timeout,
            clock: clock::system(),
        }
    }

    /// The same cache reading `clock` (tests put entries exactly at their TTL).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The cache's clock: entries are stored and judged fresh as of this instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The entry for `key`, from memory or through one coalesced call of `fetch`.
    ///
    /// `fetch` is the origin read (`|| store.get(key)`); it runs at most once per call, and only
    /// when this request holds the key's load guard.
    pub async fn get<F, Fut>(
        &self,
        key: &str,
        metrics: &Metrics,
        fetch: F,
    ) -> Result<(Entry, CacheStatus), EdgeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, StoreError>>,
    {
        let (playlist_ttl, not_found_ttl) = (self.playlist_ttl, self.not_found_ttl);
        let timeout = self.origin_timeout;
        let clock = &self.clock;
        self.get_with(key, metrics, || async move {
            metrics.origin_fetch();
            let fetched = match monoio::time::timeout(timeout, fetch()).await {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => return Err(EdgeError::Origin(e)),
                Err(_elapsed) => return Err(EdgeError::OriginTimeout),
            };
            let now = clock.now();
            Ok(Loaded::same(match fetched {
                Some(body) => Entry::object(key, body, now, playlist_ttl),
                None => Entry::not_found(now, not_found_ttl),
            }))
        })
        .await
    }

    /// Like [`MemoryCache::get`] with a loader that decides what to keep: `load` runs at most
    /// once per call, only while this request holds the key's load guard; its
    /// [`Loaded::keep`] entry is inserted for everyone, its [`Loaded::serve`] entry answers this
    /// request. An error drops the guard (the next waiter loads) and is counted as an origin
    /// error.
    pub async fn get_with<F, Fut>(
        &self,
        key: &str,
        metrics: &Metrics,
        load: F,
    ) -> Result<(Entry, CacheStatus), EdgeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded, EdgeError>>,
    {
        let now = self.now();
        if let Some(entry) = self.entries.get(key) {
            if entry.is_fresh(now) {
                metrics.cache_hit();
                return Ok((entry, CacheStatus::Hit));
            }
            self.entries.remove_if(key, |e| !e.is_fresh(now));
        }
        metrics.cache_miss();
        let guard = match self.entries.get_value_or_guard_async(key).await {
            // Filled by a concurrent loader; served even if a zero TTL already expired it,
            // because it is as fresh as a fetch of our own would be.
            Ok(entry) => {
                metrics.cache_coalesced();
                return Ok((entry, CacheStatus::Coalesced));
            }
            Err(guard) => guard,
        };
        let started = Instant::now();
        let result = load().await;
        // The load is the fetch (plus, for a disk-tier object, writing its file); the loader
        // counts `origin_fetches` itself, as it may get the object from a peer edge instead.
        metrics.origin_latency(started.elapsed());
        let loaded = match result {
            Ok(loaded) => loaded,
            // Dropping `guard` hands the load to the next waiter.
            Err(e) => {
                metrics.origin_error();
                return Err(e);
            }
        };
        if loaded.keep.kind == EntryKind::NotFound && self.not_found_ttl.is_zero() {
            // Not remembered: waiters take the guard in turn and ask the origin themselves.
            drop(guard);
        } else {
            // Err only when the entry is too heavy for the cache; it is served uncached then.
            let _ = guard.insert(loaded.keep);
        }
        Ok((loaded.serve, CacheStatus::Miss))
    }

    /// The entry for `key` as it is (fresh or not), without counting or loading.
    pub fn peek(&self, key: &str) -> Option<Entry> {
        self.entries.get(key)
    }

    /// Insert or replace `key` (a finished background refresh, a disk-tier pointer).
    pub fn insert(&self, key: &str, entry: Entry) {
        self.entries.insert(key.to_string(), entry);
    }

    /// Remove `key` if `pred` holds for its entry.
    pub fn remove_if(&self, key: &str, pred: impl FnOnce(&Entry) -> bool) {
        self.entries.remove_if(key, pred);
    }

    /// TTLs and the origin timeout this cache was built with.
    pub fn playlist_ttl(&self) -> Duration {
        self.playlist_ttl
    }

    pub fn not_found_ttl(&self) -> Duration {
        self.not_found_ttl
    }

    pub fn origin_timeout(&self) -> Duration {
        self.origin_timeout
    }

    /// Remove the entry of `key`; returns how many entries went (0 or 1).
    pub fn purge_key(&self, key: &str) -> u64 {
        u64::from(self.entries.remove(key).is_some())
    }

    /// Remove every entry whose key starts with `prefix`; returns how many went. Walks every
    /// shard under its write lock, so it is an admin operation, not a request-path one.
    pub fn purge_prefix(&self, prefix: &str) -> u64 {
        let removed = AtomicU64::new(0);
        self.entries.retain(|k, _| {
            let hit = k.starts_with(prefix);
            if hit {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            !hit
        });
        removed.into_inner()
    }

    /// Remove every entry that can change under its name (mutable playlists, the current-master
    /// pointers, remembered "not found"s: everything with an expiry); immutable objects stay.
    /// How many went. After a fleet-purge subscription was lost (`platform::fleet`).
    pub fn purge_mutable(&self) -> u64 {
        let removed = AtomicU64::new(0);
        self.entries.retain(|_, e| {
            let mutable = e.expires.is_some();
            if mutable {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            !mutable
        });
        removed.into_inner()
    }

    /// Drops a remembered "not found" for `key` (an object the edge now knows exists, e.g. a live
    /// part announced after an early request missed it).
    pub fn forget_not_found(&self, key: &str) {
        self.entries
            .remove_if(key, |e| e.kind == EntryKind::NotFound);
    }

    /// Current size, for `/metrics`.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            cache_bytes: self.entries.weight(),
            cache_capacity_bytes: self.capacity,
            cache_entries: self.entries.len() as u64,
            ..Gauges::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    const HOUR: Duration = Duration::from_secs(3600);

    fn block_on<F: Future>(f: F) -> F::Output {
        // The legacy driver works everywhere (io_uring may be blocked in CI sandboxes).
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn cache(playlist_ttl: Duration, not_found_ttl: Duration) -> MemoryCache {
        MemoryCache::new(1 << 20, playlist_ttl, not_found_ttl, HOUR)
    }

    async fn origin(
        body: Option<&'static [u8]>,
        calls: &Cell<u32>,
    ) -> Result<Option<Bytes>, StoreError> {
        calls.set(calls.get() + 1);
        Ok(body.map(Bytes::from_static))
    }

    #[test]
    fn entries_carry_validators_and_a_gzip_variant_for_playlists() {
        let now = Instant::now();
        let playlist = "#EXTM3U\n#EXTINF:2.0,\nseg0.m4s\n".repeat(20);
        let e = Entry::object(
            "v/a/1/720p/index.m3u8",
            Bytes::from(playlist.clone()),
            now,
            HOUR,
        );
        let gz = e.gzip.clone().expect("playlists are gzipped");
        assert!(gz.len() < playlist.len());
        let mut dec = flate2::read::GzDecoder::new(&gz[..]);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut dec, &mut out).expect("gunzip");
        assert_eq!(out, playlist);
        assert_eq!(e.etag, EntityTag::of(playlist.as_bytes()));
        assert!(e.last_modified > 1_600_000_000);
        let seg = Entry::object(
            "v/a/1/720p/seg1.m4s",
            Bytes::from(vec![7u8; 4096]),
            now,
            HOUR,
        );
        assert!(seg.gzip.is_none(), "media is never gzipped");
        let tiny = Entry::object(
            "v/a/master.m3u8",
            Bytes::from_static(b"#EXTM3U\n"),
            now,
            HOUR,
        );
        assert!(tiny.gzip.is_none(), "too small to gain");
    }

    #[test]
    fn purge_by_key_and_prefix() {
        block_on(async {
            let (c, m, calls) = (cache(HOUR, HOUR), Metrics::default(), Cell::new(0));
            for k in [
                "v/a/1/s1.m4s",
                "v/a/1/s2.m4s",
                "v/ab/1/s1.m4s",
                "v/b/1/s1.m4s",
            ] {
                c.get(k, &m, || origin(Some(b"x"), &calls))
                    .await
                    .expect("get");
            }
            assert_eq!(c.purge_key("v/a/1/s1.m4s"), 1);
            assert_eq!(c.purge_key("v/a/1/s1.m4s"), 0);
            assert_eq!(c.purge_prefix("v/a/"), 1, "v/ab/ is not under v/a/");
            assert_eq!(c.purge_prefix("v/"), 2);
            assert_eq!(c.gauges().cache_entries, 0);
            c.get("v/a/1/s1.m4s", &m, || origin(Some(b"x"), &calls))
                .await
                .expect("get");
            assert_eq!(calls.get(), 5, "a purged key is fetched again");
        });
    }

    #[test]
    fn purge_mutable_keeps_only_immutable_entries() {
        let c = cache(Duration::from_secs(60), Duration::from_secs(60));
        let now = c.now();
        let ttl = Duration::from_secs(60);
        let seg = Entry::object("v/a/1/720p/seg1.m4s", Bytes::from_static(b"s"), now, ttl);
        let ptr = Entry::object(
            "v/a/master.m3u8",
            Bytes::from_static(b"#EXTM3U\n"),
            now,
            ttl,
        );
        c.insert("v/a/1/720p/seg1.m4s", seg);
        c.insert("v/a/master.m3u8", ptr);
        c.insert("v/a/missing.m4s", Entry::not_found(now, ttl));
        assert_eq!(c.purge_mutable(), 2);
        assert!(c.peek("v/a/1/720p/seg1.m4s").is_some());
        assert!(c.peek("v/a/master.m3u8").is_none());
        assert!(c.peek("v/a/missing.m4s").is_none());
    }

    #[test]
    fn second_lookup_is_a_hit() {
        block_on(async {
            let (c, m, calls) = (cache(HOUR, HOUR), Metrics::default(), Cell::new(0));
            let key = "v/a/1/720p/seg1.m4s";
            let (e, s) = c
                .get(key, &m, || origin(Some(b"seg"), &calls))
                .await
                .expect("get");
            assert_eq!(
                (s, e.kind, &e.body[..]),
                (CacheStatus::Miss, EntryKind::Object, &b"seg"[..])
            );
            assert_eq!(e.content_type, "video/iso.segment");
            assert_eq!(e.cache_control, content::CACHE_IMMUTABLE);
            let (_, s) = c
                .get(key, &m, || origin(Some(b"other"), &calls))
                .await
                .expect("get");
            assert_eq!(s, CacheStatus::Hit);
            assert_eq!(calls.get(), 1);
            let snap = m.snapshot();
            assert_eq!(
                (snap.cache_hits, snap.cache_misses, snap.origin_fetches),
                (1, 1, 1)
            );
            assert!(c.gauges().cache_bytes >= 3 + key.len() as u64);
        });
    }

    #[test]
    fn mutable_playlists_expire_and_immutable_media_does_not() {
        block_on(async {
            // Zero TTL: a mutable entry is stale the moment it is stored.
            let (c, m, calls) = (
                cache(Duration::ZERO, HOUR),
                Metrics::default(),
                Cell::new(0),
            );
            for _ in 0..3 {
                let (e, s) = c
                    .get("v/a/master.m3u8", &m, || origin(Some(b"#EXTM3U\n"), &calls))
                    .await
                    .expect("get");
                assert_eq!(s, CacheStatus::Miss);
                assert_eq!(e.cache_control, content::CACHE_SHORT);
            }
            assert_eq!(calls.get(), 3, "expired entries are refetched");
            let ended = b"#EXTM3U\n#EXT-X-ENDLIST\n";
            for _ in 0..3 {
                c.get("v/a/1/720p/index.m3u8", &m, || origin(Some(ended), &calls))
                    .await
                    .expect("get");
            }
            assert_eq!(
                calls.get(),
                4,
                "a finished versioned playlist is fetched once"
            );
        });
    }

    #[test]
    fn entries_expire_exactly_at_their_ttl_on_the_cache_clock() {
        let clock = TestClock::default();
        let ttl = Duration::from_millis(2000);
        let c = cache(ttl, ttl).with_clock(clock.shared());
        let (m, calls) = (Metrics::default(), Cell::new(0));
        block_on(async {
            for (key, body) in [
                ("v/a/master.m3u8", Some(&b"#EXTM3U\n"[..])),
                ("v/missing", None),
            ] {
                calls.set(0);
                let get = || c.get(key, &m, || origin(body, &calls));
                assert_eq!(get().await.expect("get").1, CacheStatus::Miss);
                clock.advance(ttl - Duration::from_nanos(1));
                assert_eq!(get().await.expect("get").1, CacheStatus::Hit, "{key}");
                clock.advance(Duration::from_nanos(1));
                assert_eq!(get().await.expect("get").1, CacheStatus::Miss, "{key}");
                assert_eq!(calls.get(), 2, "{key}: refetched once, at the TTL");
            }
        });
    }

    #[test]
    fn not_found_is_remembered_only_for_its_ttl() {
        block_on(async {
            let (c, m, calls) = (cache(HOUR, HOUR), Metrics::default(), Cell::new(0));
            for _ in 0..2 {
                let (e, _) = c
                    .get("v/missing", &m, || origin(None, &calls))
                    .await
                    .expect("get");
                assert_eq!(e.kind, EntryKind::NotFound);
            }
            assert_eq!(calls.get(), 1);
            let (c, calls) = (cache(HOUR, Duration::ZERO), Cell::new(0));
            for _ in 0..2 {
                c.get("v/missing", &m, || origin(None, &calls))
                    .await
                    .expect("get");
            }
            assert_eq!(calls.get(), 2, "a zero TTL disables negative caching");
        });
    }

    #[test]
    fn concurrent_misses_share_one_fetch_and_a_failure_passes_the_load_on() {
        block_on(async {
            let c = Rc::new(cache(HOUR, HOUR));
            let m = Rc::new(Metrics::default());
            let calls = Rc::new(Cell::new(0u32));
            let (release_tx, release_rx) = futures_channel::oneshot::channel::<()>();
            let release_rx = Rc::new(Cell::new(Some(release_rx)));
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let (c, m, calls, release_rx) =
                    (c.clone(), m.clone(), calls.clone(), release_rx.clone());
                tasks.push(monoio::spawn(async move {
                    c.get("v/a/1/720p/seg9.m4s", &m, || async move {
                        calls.set(calls.get() + 1);
                        match release_rx.take() {
                            // The first loader blocks until released, then fails.
                            Some(rx) => {
                                let _ = rx.await;
                                Err(StoreError::Config("origin down".into()))
                            }
                            // The next loader (handed the guard) succeeds.
                            None => Ok(Some(Bytes::from_static(b"media"))),
                        }
                    })
                    .await
                    .map(|(_, s)| s)
                    .map_err(|e| e.status())
                }));
            }
            // Every task registers its miss and joins the key's placeholder in its first poll.
            // (A self-waking yield would starve the spawned tasks: poll through the timer.)
            let deadline = Instant::now() + Duration::from_secs(10);
            while m.snapshot().cache_misses < 20 {
                assert!(
                    Instant::now() < deadline,
                    "tasks never ran: {:?}",
                    m.snapshot()
                );
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = release_tx.send(());
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await);
            }
            assert_eq!(
                calls.get(),
                2,
                "one failed fetch, one retry by the next waiter"
            );
            assert_eq!(statuses.iter().filter(|s| **s == Err(502)).count(), 1);
            assert_eq!(
                statuses
                    .iter()
                    .filter(|s| **s == Ok(CacheStatus::Miss))
                    .count(),
                1
            );
            assert_eq!(
                statuses
                    .iter()
                    .filter(|s| **s == Ok(CacheStatus::Coalesced))
                    .count(),
                18
            );
            let snap = m.snapshot();
            assert_eq!(
                (
                    snap.origin_fetches,
                    snap.origin_errors,
                    snap.cache_coalesced
                ),
                (2, 1, 18)
            );
        });
    }

    #[test]
    fn misses_coalesce_across_runtimes_on_other_threads() {
        // The production shape: one cache behind an Arc, one monoio runtime per thread.
        let c = Arc::new(cache(HOUR, HOUR));
        let m = Arc::new(Metrics::default());
        let (release_tx, release_rx) = futures_channel::oneshot::channel::<()>();
        let loader = {
            let (c, m) = (c.clone(), m.clone());
            std::thread::spawn(move || {
                block_on(async move {
                    c.get("k/x.m4s", &m, || async move {
                        let _ = release_rx.await;
                        Ok(Some(Bytes::from_static(b"x")))
                    })
                    .await
                    .map(|(_, s)| s)
                    .map_err(|e| e.status())
                })
            })
        };
        while m.snapshot().origin_fetches < 1 {
            std::thread::yield_now();
        }
        let waiter = {
            let (c, m) = (c.clone(), m.clone());
            std::thread::spawn(move || {
                block_on(async move {
                    c.get("k/x.m4s", &m, || async {
                        panic!("a waiter must not fetch")
                    })
                    .await
                    .map(|(_, s)| s)
                    .map_err(|e| e.status())
                })
            })
        };
        while m.snapshot().cache_misses < 2 {
            std::thread::yield_now();
        }
        let _ = release_tx.send(());
        assert_eq!(loader.join().expect("loader"), Ok(CacheStatus::Miss));
        // The waiter either joined the placeholder (Coalesced) or arrived after the insert.
        let s = waiter.join().expect("waiter").expect("value");
        assert!(
            matches!(s, CacheStatus::Coalesced | CacheStatus::Hit),
            "{s:?}"
        );
        assert_eq!(m.snapshot().origin_fetches, 1);
    }
}
