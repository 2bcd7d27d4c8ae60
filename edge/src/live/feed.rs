//! One followed rendition as every core sees it: the state its follower published last and the
//! cores to wake when it publishes again.
//!
//! The follower task ([`crate::live::follower_task`]) publishes each new state as an immutable
//! snapshot through an `ArcSwap`: readers on any monoio core load it without a lock. Every core
//! that serves the rendition subscribes once with a channel; after each publish the follower
//! sends one wake-up per core, and that core wakes its own waiting requests
//! ([`crate::live::core_view`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use ringcast_proto::live::LiveRendition;

use crate::live::keys::RenditionId;

/// What a rendition's follower knows.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Redis has not answered yet.
    Probing,
    /// No event stream (or Redis unreachable): serve from the store. Final for this [`RenditionFeed`].
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
    /// Unix milliseconds of the Redis entry (the millisecond part of its id) of the last event
    /// this publish applied while tailing; `None` for catch-up, resync and phase changes. The
    /// edge's wake-up histogram measures from it ([`crate::live::stats`]).
    pub entry_ms: Option<u64>,
}

/// A followed rendition's published state and the cores subscribed to it (shared by its
/// follower task and every core serving it).
pub struct RenditionFeed {
    pub id: RenditionId,
    published: ArcSwap<Published>,
    subscribers: Mutex<Vec<UnboundedSender<()>>>,
    /// Milliseconds since the hub's epoch of the latest request (throttled per core).
    last_access_ms: AtomicU64,
    stopped: AtomicBool,
}

impl RenditionFeed {
    pub(crate) fn new(id: RenditionId, now: Instant, now_ms: u64) -> Self {
        Self {
            id,
            published: ArcSwap::from_pointee(Published {
                gen: 0,
                phase: Phase::Probing,
                at: now,
                entry_ms: None,
            }),
            subscribers: Mutex::new(Vec::new()),
            last_access_ms: AtomicU64::new(now_ms),
            stopped: AtomicBool::new(false),
        }
    }

    /// A feed nobody follows (unit tests and the `live_wakeup` bench of the wake-up path).
    pub fn detached(id: RenditionId) -> Self {
        Self::new(id, Instant::now(), 0)
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
        let mut subscribers = super::lock(&self.subscribers);
        if !self.is_stopped() {
            subscribers.push(tx);
        }
        // Otherwise dropping `tx` closes the channel: the core sees the stop at once.
        rx
    }

    /// Publishes a new state (as of `now`) and wakes every subscribed core.
    pub fn publish(&self, phase: Phase, now: Instant) {
        self.publish_entry(phase, now, None);
    }

    /// [`RenditionFeed::publish`] of the state after the Redis entry of Unix ms `entry_ms`.
    pub fn publish_entry(&self, phase: Phase, now: Instant, entry_ms: Option<u64>) {
        let gen = self.gen().wrapping_add(1);
        self.published.store(Arc::new(Published {
            gen,
            phase,
            at: now,
            entry_ms,
        }));
        super::lock(&self.subscribers).retain(|tx| tx.unbounded_send(()).is_ok());
    }

    /// Marks the follower stopped and closes every core's channel (their requests fall back to
    /// a fresh follower or the store).
    pub(crate) fn stop(&self) {
        let mut subscribers = super::lock(&self.subscribers);
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
