//! The process-wide side of live LL-HLS: which renditions the edge follows, and what each one
//! published last.
//!
//! One [`Tail`] per followed rendition. Its follower task runs on the tokio side runtime
//! ([`crate::live::follower_task`]), applies the stream's events and publishes each new state as an
//! immutable snapshot through an `ArcSwap`: readers on any monoio core load it without a lock.
//! Every core that serves the rendition subscribes once with a channel; after each publish the
//! follower sends one wake-up per core, and that core wakes its own waiting requests
//! ([`crate::live::core_view`]). The registry's mutex is taken only to start, find (first time per
//! core) or stop a follower, never per request.
//!
//! Lifecycle: a follower starts on the first playlist request for a rendition and first probes
//! Redis. No stream → [`Phase::NoStream`], remembered for `probe_ttl_ms`, and the request is
//! served from the object store (VOD). It stops after `idle_stop_ms` without requests.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use ringcast_proto::live::LiveRendition;

use crate::live::keys::RenditionId;
use crate::live::settings::LiveSettings;

/// Above this many registry entries, expired negative entries are pruned on insert.
const PRUNE_ABOVE: usize = 4096;

/// What a rendition's follower knows.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Redis has not answered yet.
    Probing,
    /// No event stream (or Redis unreachable): serve from the store. Final for this [`Tail`].
    NoStream,
    /// The stream exists but holds no usable `Start` yet: serve from the store meanwhile.
    Pending,
    /// The live state.
    Live(Arc<LiveRendition>),
}

/// One published state.
#[derive(Debug)]
pub struct Published {
    /// Increases with every publish.
    pub gen: u64,
    pub phase: Phase,
    pub at: Instant,
}

/// A followed rendition (shared by its follower task and every core serving it).
pub struct Tail {
    pub id: RenditionId,
    published: ArcSwap<Published>,
    subscribers: Mutex<Vec<UnboundedSender<()>>>,
    /// Milliseconds since the hub's epoch of the latest request (throttled per core).
    last_access_ms: AtomicU64,
    stopped: AtomicBool,
}

impl Tail {
    fn new(id: RenditionId, now_ms: u64) -> Self {
        Self {
            id,
            published: ArcSwap::from_pointee(Published {
                gen: 0,
                phase: Phase::Probing,
                at: Instant::now(),
            }),
            subscribers: Mutex::new(Vec::new()),
            last_access_ms: AtomicU64::new(now_ms),
            stopped: AtomicBool::new(false),
        }
    }

    /// A tail nobody follows (unit tests of the wake-up path).
    #[cfg(test)]
    pub(crate) fn detached(id: RenditionId) -> Self {
        Self::new(id, 0)
    }

    /// The latest state (lock-free).
    pub fn load(&self) -> Arc<Published> {
        self.published.load_full()
    }

    /// Generation of the latest state (lock-free).
    pub fn gen(&self) -> u64 {
        self.published.load().gen
    }

    /// Whether the follower has stopped (idle, shut down, or no stream).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// A wake-up channel for one core: one message per publish, closed when the follower stops.
    pub fn subscribe(&self) -> UnboundedReceiver<()> {
        let (tx, rx) = unbounded();
        // Checked under the lock `stop` takes, so a sender is never kept after a stop.
        let mut subscribers = lock(&self.subscribers);
        if !self.is_stopped() {
            subscribers.push(tx);
        }
        // Otherwise dropping `tx` closes the channel: the core sees the stop at once.
        rx
    }

    /// Publishes a new state and wakes every subscribed core.
    pub(crate) fn publish(&self, phase: Phase) {
        let gen = self.gen().wrapping_add(1);
        self.published.store(Arc::new(Published {
            gen,
            phase,
            at: Instant::now(),
        }));
        lock(&self.subscribers).retain(|tx| tx.unbounded_send(()).is_ok());
    }

    /// Marks the follower stopped and closes every core's channel (their requests fall back to
    /// a fresh follower or the store).
    pub(crate) fn stop(&self) {
        let mut subscribers = lock(&self.subscribers);
        self.stopped.store(true, Relaxed);
        subscribers.clear();
    }

    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_access_ms.store(now_ms, Relaxed);
    }

    pub(crate) fn last_access_ms(&self) -> u64 {
        self.last_access_ms.load(Relaxed)
    }
}

/// Counters of the live path (rendered into `/metrics`).
#[derive(Debug, Default)]
pub struct LiveStats {
    pub followers_started: AtomicU64,
    pub followers_stopped: AtomicU64,
    pub events_applied: AtomicU64,
    pub events_skipped: AtomicU64,
    pub resyncs: AtomicU64,
    pub redis_errors: AtomicU64,
    pub playlists: AtomicU64,
    pub blocked: AtomicU64,
    pub blocked_unavailable: AtomicU64,
    pub part_waits: AtomicU64,
    pub renders: AtomicU64,
    pub part_prefetches: AtomicU64,
}

/// Shared state of the live path.
pub struct HubInner {
    pub settings: LiveSettings,
    pub client: Option<redis::Client>,
    tails: Mutex<HashMap<RenditionId, Arc<Tail>>>,
    epoch: Instant,
    closed: AtomicBool,
    pub stats: LiveStats,
    /// When a failed probe last logged a warning (ms since the epoch, 0 = never).
    pub(crate) last_probe_warn_ms: AtomicU64,
}

/// Handle to the live path's shared state (cheap to clone).
#[derive(Clone)]
pub struct LiveHub {
    pub inner: Arc<HubInner>,
}

impl LiveHub {
    /// A hub for `settings`; the Redis client is only built here (connections are opened by the
    /// followers).
    pub fn new(settings: LiveSettings, redis_url: &str) -> Result<Self, String> {
        settings.check()?;
        let client = if settings.enabled {
            Some(redis::Client::open(redis_url).map_err(|e| format!("redis.url: {e}"))?)
        } else {
            None
        };
        Ok(Self::with_client(settings, client))
    }

    /// A hub that never serves live (every request goes to the store).
    pub fn disabled() -> Self {
        Self::with_client(
            LiveSettings {
                enabled: false,
                ..LiveSettings::default()
            },
            None,
        )
    }

    fn with_client(settings: LiveSettings, client: Option<redis::Client>) -> Self {
        Self {
            inner: Arc::new(HubInner {
                settings,
                client,
                tails: Mutex::new(HashMap::new()),
                epoch: Instant::now(),
                closed: AtomicBool::new(false),
                stats: LiveStats::default(),
                last_probe_warn_ms: AtomicU64::new(0),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.client.is_some() && !self.inner.is_closed()
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.inner.settings
    }

    pub fn stats(&self) -> &LiveStats {
        &self.inner.stats
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// The follower of `id`, started when there is none (or the previous one is over).
    pub fn tail(&self, id: &RenditionId) -> Arc<Tail> {
        let now = Instant::now();
        let mut tails = lock(&self.inner.tails);
        if let Some(t) = tails.get(id) {
            if self.inner.usable(t, now) {
                return Arc::clone(t);
            }
        }
        if tails.len() > PRUNE_ABOVE {
            tails.retain(|_, t| self.inner.usable(t, now));
        }
        let tail = Arc::new(Tail::new(id.clone(), self.inner.now_ms()));
        tails.insert(id.clone(), Arc::clone(&tail));
        drop(tails);
        self.inner.stats.followers_started.fetch_add(1, Relaxed);
        crate::live::follower_task::spawn(Arc::clone(&self.inner), Arc::clone(&tail));
        tail
    }

    /// Whether `tail` is still worth using (see [`HubInner::usable`]).
    pub fn usable(&self, tail: &Tail) -> bool {
        self.inner.usable(tail, Instant::now())
    }

    /// The follower of `id` if one is running (never starts one).
    pub fn existing(&self, id: &RenditionId) -> Option<Arc<Tail>> {
        let now = Instant::now();
        lock(&self.inner.tails)
            .get(id)
            .filter(|t| self.inner.usable(t, now))
            .cloned()
    }

    /// Stops every follower (at shutdown); they notice within one `read_block_ms`.
    pub fn close(&self) {
        self.inner.closed.store(true, Relaxed);
        for t in lock(&self.inner.tails).drain().map(|(_, t)| t) {
            t.stop();
        }
    }

    /// Prometheus text of the live counters.
    pub fn render_metrics(&self, out: &mut String) {
        let s = &self.inner.stats;
        let followed = lock(&self.inner.tails)
            .values()
            .filter(|t| matches!(t.load().phase, Phase::Live(_)))
            .count();
        for (name, help, v) in [
            (
                "live_followers_started_total",
                "Event-stream followers started (one per rendition requested).",
                &s.followers_started,
            ),
            (
                "live_followers_stopped_total",
                "Followers stopped after being idle (or at shutdown).",
                &s.followers_stopped,
            ),
            (
                "live_events_applied_total",
                "Live events that changed a rendition's state.",
                &s.events_applied,
            ),
            (
                "live_events_skipped_total",
                "Live events dropped (undecodable, before Start, not applicable).",
                &s.events_skipped,
            ),
            (
                "live_resyncs_total",
                "Full re-reads of a stream after a lost or reordered event.",
                &s.resyncs,
            ),
            (
                "live_redis_errors_total",
                "Redis commands of the followers that failed.",
                &s.redis_errors,
            ),
            (
                "live_playlists_total",
                "Playlists rendered from the live model (responses, including coalesced ones).",
                &s.playlists,
            ),
            (
                "live_blocked_total",
                "Playlist requests held for a part or segment (blocking reload).",
                &s.blocked,
            ),
            (
                "live_blocked_unavailable_total",
                "Held requests answered 503 after three target durations.",
                &s.blocked_unavailable,
            ),
            (
                "live_part_waits_total",
                "GETs of the preload-hinted part held until it was announced.",
                &s.part_waits,
            ),
            (
                "live_renders_total",
                "Playlist renders (identical requests of one state share one).",
                &s.renders,
            ),
            (
                "live_part_prefetches_total",
                "Newly announced parts loaded into the memory cache before players asked.",
                &s.part_prefetches,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP ringcast_edge_{name} {help}\n# TYPE ringcast_edge_{name} counter\n\
                 ringcast_edge_{name} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ringcast_edge_live_renditions Renditions followed with a live state.\n\
             # TYPE ringcast_edge_live_renditions gauge\nringcast_edge_live_renditions {followed}"
        );
    }
}

impl HubInner {
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Still worth handing out: running, or a "no stream" answer younger than `probe_ttl_ms`.
    fn usable(&self, t: &Tail, now: Instant) -> bool {
        let p = t.load();
        match p.phase {
            Phase::NoStream => {
                now.saturating_duration_since(p.at)
                    < Duration::from_millis(self.settings.probe_ttl_ms)
            }
            _ => !t.is_stopped(),
        }
    }

    /// Stops `tail` if nobody asked for it within `idle_stop_ms`; decided under the registry
    /// lock so a core cannot pick it up in between.
    pub(crate) fn stop_if_idle(&self, tail: &Arc<Tail>) -> bool {
        let mut tails = lock(&self.tails);
        let idle = self.now_ms().saturating_sub(tail.last_access_ms()) > self.settings.idle_stop_ms;
        if !idle && !self.is_closed() {
            return false;
        }
        if tails.get(&tail.id).is_some_and(|t| Arc::ptr_eq(t, tail)) {
            tails.remove(&tail.id);
        }
        drop(tails);
        tail.stop();
        self.stats.followers_stopped.fetch_add(1, Relaxed);
        true
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (plain collections).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
