//! The per-core side of live LL-HLS: each monoio worker keeps its own index of the renditions it
//! serves ([`CoreRendition`]), so a request touches no lock: it loads the published state
//! (`ArcSwap`, lock-free), waits on a core-local waiter list, and reuses the core's rendered
//! playlists.
//!
//! Wake-up path: the follower (tokio side thread) publishes, then sends one message per
//! subscribed core; on each core a relay task receives it (monoio's `sync` feature lets another
//! thread wake the runtime) and wakes that core's waiting requests. A request re-checks the
//! published generation when polled, so a publish between its check and its registration is
//! never lost (both happen in one poll, and the relay runs after the publish).
//!
//! After waking its requests the relay runs the [`AfterPublish`] action its subscriber passed in
//! (the request handler loads the newest part into the memory cache: the woken players ask for
//! it one round trip later, and find it there instead of queueing behind one origin fetch). It
//! is handed over explicitly when a core first subscribes, so this module knows nothing of the
//! handler, the caches or the server.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_proto::prometheus::Histogram;

use crate::live::feed::RenditionFeed;
use crate::live::hub::LiveHub;
use crate::live::keys::RenditionRef;
use crate::live::stats::LiveStats;

/// Requests refresh the follower's "last access" at most this often per core.
const TOUCH_EVERY_MS: u64 = 500;
/// Above this many entries, a core's index prunes followers that are over.
const PRUNE_ABOVE: usize = 4096;
/// Above this many rendered variants, a rendition's render cache keeps the current ones only.
const RENDERS_MAX: usize = 64;

/// One rendered playlist, valid for one combination of published states.
pub struct Rendered {
    /// Sum of the generations of the rendition and the siblings it reports.
    pub stamp: u64,
    pub body: Bytes,
    pub at: Instant,
}

/// A rendition of the same version, as the core looks it up.
pub struct SiblingName {
    pub name: String,
    /// Its folder (`v/{video}/{version}/{name}`), the core index's key: looked up per request
    /// without building it.
    pub dir: String,
}

/// The renditions of the version, from its master.
pub struct Siblings {
    pub names: Rc<Vec<SiblingName>>,
    /// When to look for the master again (`None`: found, kept).
    pub refresh_at: Option<Instant>,
}

/// A core's handle on one followed rendition.
pub struct CoreRendition {
    pub feed: Arc<RenditionFeed>,
    waiters: RefCell<Vec<Waker>>,
    last_touch_ms: Cell<u64>,
    /// Rendered playlists by cache key (`cache_key_for`): identical requests of one state
    /// share one render.
    pub renders: RefCell<HashMap<String, Rendered>>,
    pub siblings: RefCell<Option<Siblings>>,
    /// This rendition's series of the latency histograms, looked up once per core: a lookup
    /// locks the family and compares label strings, and every request of a herd observes.
    latency: OnceCell<ViewLatency>,
}

/// A rendition's series of [`crate::live::stats::LiveLatency`].
pub struct ViewLatency {
    pub event_to_wake: Arc<Histogram>,
    pub wake_to_response: Arc<Histogram>,
    pub event_to_part_release: Arc<Histogram>,
}

impl CoreRendition {
    /// Marks the rendition as requested (keeps its follower running).
    pub fn touch(&self, hub: &LiveHub) {
        self.touch_at(hub, hub.now());
    }

    /// [`CoreRendition::touch`] with the live path's clock already read (`now`).
    pub fn touch_at(&self, hub: &LiveHub, now: Instant) {
        let now = hub.ms_at(now);
        if now.saturating_sub(self.last_touch_ms.get()) >= TOUCH_EVERY_MS {
            self.last_touch_ms.set(now);
            self.feed.touch(now);
        }
    }

    /// This rendition's latency series (looked up on first use).
    pub fn latency(&self, stats: &LiveStats) -> &ViewLatency {
        self.latency.get_or_init(|| {
            let r = &self.feed.id.rendition;
            let l = &stats.latency;
            ViewLatency {
                event_to_wake: l.event_to_wake.get(r),
                wake_to_response: l.wake_to_response.get(r),
                event_to_part_release: l.event_to_part_release.get(r),
            }
        })
    }

    /// Waits until the follower publishes something newer than `gen` (true) or `timeout`
    /// passes (false).
    pub async fn wait_change(&self, gen: u64, timeout: Duration) -> bool {
        let changed = std::future::poll_fn(|cx| {
            if self.feed.gen() != gen || self.feed.is_stopped() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        monoio::time::timeout(timeout, changed).await.is_ok()
    }

    fn wake_all(&self) {
        let mut waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters.drain(..) {
            w.wake();
        }
        // The list keeps its capacity: the next herd registers without regrowing it (a
        // thousand held players regrew it ten times per part). Waking only schedules the
        // tasks, so nobody registered meanwhile; if someone did, theirs stays.
        let mut slot = self.waiters.borrow_mut();
        if slot.is_empty() {
            *slot = waiters;
        }
    }

    /// The cached render for `key` if still current.
    pub fn cached(&self, key: &str, stamp: u64) -> Option<(Bytes, Instant)> {
        self.renders
            .borrow()
            .get(key)
            .filter(|r| r.stamp == stamp)
            .map(|r| (r.body.clone(), r.at))
    }

    pub fn store_render(&self, key: String, stamp: u64, body: Bytes, now: Instant) {
        let mut renders = self.renders.borrow_mut();
        if renders.len() >= RENDERS_MAX {
            renders.retain(|_, r| r.stamp == stamp);
        }
        renders.insert(
            key,
            Rendered {
                stamp,
                body,
                at: now,
            },
        );
    }
}

enum Slot {
    Followed(Rc<CoreRendition>),
    /// No follower was running at the last look (part requests do not start one).
    /// Valid until `until`, and while no follower has started anywhere since (`started`).
    NotFollowed {
        until: Instant,
        started: u64,
    },
}

/// What a core does after a publish of a rendition it serves, once that core's requests are
/// woken (see the module docs).
pub type AfterPublish = Box<dyn Fn(&RenditionFeed)>;

thread_local! {
    /// This core's renditions by folder (`v/{video}/{version}/{rendition}`, a prefix of the
    /// request's key: found without allocating). Thread-local because a monoio worker is one
    /// thread and its requests reach the live path through the shared, `Send` state only.
    static INDEX: RefCell<HashMap<String, Slot>> = RefCell::new(HashMap::new());
}

/// This core's handle on the follower of `id`. `start`: start a follower when none runs
/// (playlist requests); otherwise only join a running one (part requests). `after_publish` is
/// called only when this core subscribes to the rendition now, and its action then runs after
/// every publish.
pub fn core_rendition(
    hub: &LiveHub,
    id: &RenditionRef<'_>,
    start: bool,
    after_publish: impl FnOnce() -> AfterPublish,
) -> Option<Rc<CoreRendition>> {
    let started = hub.stats().followers_started.load(Relaxed);
    // The clock is read only where an answer depends on it: a followed rendition (every
    // request of a herd) is found without it.
    let found = INDEX.with_borrow(|index| match index.get(id.dir) {
        Some(Slot::Followed(view)) if hub.usable(&view.feed) => Some(Some(Rc::clone(view))),
        Some(Slot::NotFollowed {
            until,
            started: then,
        }) if !start && *then == started && hub.now() < *until => Some(None),
        _ => None,
    });
    if let Some(found) = found {
        return found;
    }
    let now = hub.now();
    let owned = id.to_id();
    let feed = if start {
        Some(hub.feed(&owned))
    } else {
        hub.existing(&owned)
    };
    let slot = match &feed {
        Some(f) => Slot::Followed(subscribe(Arc::clone(f), after_publish())),
        None => Slot::NotFollowed {
            until: now + Duration::from_millis(hub.settings().probe_ttl_ms),
            started,
        },
    };
    let out = match &slot {
        Slot::Followed(view) => Some(Rc::clone(view)),
        Slot::NotFollowed { .. } => None,
    };
    INDEX.with_borrow_mut(|index| {
        if index.len() >= PRUNE_ABOVE {
            index.retain(|_, s| match s {
                Slot::Followed(view) => hub.usable(&view.feed),
                Slot::NotFollowed { until, .. } => now < *until,
            });
        }
        index.insert(id.dir.to_owned(), slot);
    });
    out
}

/// A core-local handle on `feed` with its relay task (what [`core_rendition`] keeps in the
/// core's index; public for the `live_wakeup` bench).
pub fn subscribe(feed: Arc<RenditionFeed>, after_publish: AfterPublish) -> Rc<CoreRendition> {
    let mut rx = feed.subscribe();
    let view = Rc::new(CoreRendition {
        feed,
        waiters: RefCell::new(Vec::new()),
        last_touch_ms: Cell::new(0),
        renders: RefCell::new(HashMap::new()),
        siblings: RefCell::new(None),
        latency: OnceCell::new(),
    });
    let relay = Rc::clone(&view);
    monoio::spawn(async move {
        while rx.recv().await.is_ok() {
            // Several publishes may have queued up: one wake-up covers them all.
            while rx.try_recv().is_ok() {}
            relay.wake_all();
            after_publish(&relay.feed);
        }
        // The follower stopped: let waiters see it.
        relay.wake_all();
    });
    view
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::live::feed::Phase;
    use crate::live::keys::RenditionId;

    /// Far longer than a wake-up takes on any machine: a wait that returns `true` was woken by
    /// the publish (or the stop); one that times out returns `false` and fails the test.
    const NEVER: Duration = Duration::from_secs(30);

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn feed() -> Arc<RenditionFeed> {
        Arc::new(RenditionFeed::detached(RenditionId {
            video: "v".into(),
            version: 1,
            rendition: "r".into(),
        }))
    }

    fn nothing() -> AfterPublish {
        Box::new(|_| {})
    }

    /// Yields to the core's other tasks until `n` requests wait on `view`. Runs in a spawned
    /// task: monoio polls a self-woken `block_on` future again before any other task.
    async fn until_waiting(view: &CoreRendition, n: usize) {
        while view.waiters.borrow().len() < n {
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
    }

    /// A thread that runs `f` when told to (the test tells it once the core's requests wait).
    fn on_signal(
        f: impl FnOnce() + Send + 'static,
    ) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            if rx.recv().is_ok() {
                f();
            }
        });
        (tx, thread)
    }

    #[test]
    fn a_publish_on_another_thread_wakes_every_waiter_then_runs_the_after_publish_action() {
        let f = feed();
        let publisher = Arc::clone(&f);
        let (go, thread) = on_signal(move || publisher.publish(Phase::Pending, Instant::now()));
        let after = Rc::new(Cell::new(0u32));
        let count = Rc::clone(&after);
        let woken = block_on(async move {
            let view = subscribe(f, Box::new(move |_| count.set(count.get() + 1)));
            let gen = view.feed.gen();
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let view = Rc::clone(&view);
                    monoio::spawn(async move { view.wait_change(gen, NEVER).await })
                })
                .collect();
            let ready = Rc::clone(&view);
            monoio::spawn(async move {
                until_waiting(&ready, 3).await;
                go.send(()).expect("publisher");
            });
            let mut out = Vec::new();
            for w in waiters {
                out.push(w.await);
            }
            out
        });
        thread.join().expect("publisher");
        assert_eq!(
            woken,
            [true, true, true],
            "every waiter woken by the publish"
        );
        assert_eq!(after.get(), 1, "the after-publish action ran once");
    }

    #[test]
    fn waits_time_out_and_a_stop_releases_waiters() {
        let f = feed();
        let stopper = Arc::clone(&f);
        let (go, thread) = on_signal(move || stopper.stop());
        block_on(async move {
            let view = subscribe(f, nothing());
            let gen = view.feed.gen();
            assert!(!view.wait_change(gen, Duration::from_millis(1)).await);
            let waiter = {
                let view = Rc::clone(&view);
                monoio::spawn(async move { view.wait_change(gen, NEVER).await })
            };
            let ready = Rc::clone(&view);
            monoio::spawn(async move {
                until_waiting(&ready, 1).await;
                go.send(()).expect("stopper");
            });
            assert!(waiter.await, "released by the stop");
            assert!(view.feed.is_stopped());
            // A core subscribing after the stop gets a closed channel at once.
            let late = subscribe(Arc::clone(&view.feed), nothing());
            assert!(late.wait_change(gen, NEVER).await);
        });
        thread.join().expect("stopper");
    }

    #[test]
    fn render_cache_keeps_current_stamps() {
        let view = block_on(async { subscribe(feed(), nothing()) });
        let now = Instant::now();
        view.store_render("a".into(), 1, Bytes::from_static(b"one"), now);
        assert_eq!(view.cached("a", 1), Some((Bytes::from_static(b"one"), now)));
        assert!(view.cached("a", 2).is_none(), "another state");
        for i in 0..RENDERS_MAX {
            view.store_render(format!("k{i}"), 2, Bytes::new(), now);
        }
        assert!(view.renders.borrow().len() <= RENDERS_MAX);
        assert!(
            view.cached("a", 1).is_none(),
            "stale renders are dropped when full"
        );
    }
}
