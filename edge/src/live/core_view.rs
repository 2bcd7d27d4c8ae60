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
//! Timeouts of held requests: a held request registers its waker and its deadline on the
//! rendition's list; no timer per request. One watchdog task per rendition and core sleeps until
//! the earliest deadline registered since the last wake-up and then wakes the list (the ones
//! not yet due register again). Why: a herd of held reloads each armed and cancelled a
//! `monoio::time::timeout` (clock read, timer-wheel insert and removal, a second future polled
//! per wake-up), and nearly every one of them ends by a publish, not by its timeout.
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
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_proto::prometheus::Histogram;
use ringcast_server::SharedHead;

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
    /// The head of its cache hits in the current second ([`ReadyHead`]).
    pub head: RefCell<Option<ReadyHead>>,
}

/// A ready-made head of a render's cache hits: every request of a herd woken by one publish
/// gets the same head within a second (same `Date`, `Age`, `Cache-Control`, `X-Cache: HIT`),
/// so it is built once and shared ([`ringcast_server::SharedHead`]; the connection copies its
/// cached bytes instead of formatting the fields per response).
pub struct ReadyHead {
    /// Everything the head is made from besides the render itself.
    pub key: ReadyKey,
    pub head: Arc<SharedHead>,
}

/// What a render's head depends on per request (the path, hence the content type and whether
/// it is a blocking reload, and the state are the render's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyKey {
    /// The second of the `Date` header.
    pub date_secs: u64,
    pub age_secs: u64,
    pub private: bool,
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
    /// The earliest deadline of the waits registered since the list was last woken.
    earliest: Cell<Option<Instant>>,
    /// The deadline watchdog (see the module docs).
    watchdog: RefCell<Watchdog>,
    last_touch_ms: Cell<u64>,
    /// Rendered playlists by cache key (`cache_key_for`): identical requests of one state
    /// share one render.
    pub renders: RefCell<HashMap<String, Rc<Rendered>>>,
    pub siblings: RefCell<Option<Siblings>>,
    /// This rendition's series of the latency histograms, looked up once per core: a lookup
    /// locks the family and compares label strings, and every request of a herd observes.
    latency: OnceCell<ViewLatency>,
}

/// The watchdog task's side of a rendition's waiter list.
#[derive(Default)]
struct Watchdog {
    /// When it is set to wake up (`None`: idle, no deadline registered).
    armed_at: Option<Instant>,
    /// Its waker while it sleeps or idles: a deadline earlier than `armed_at` wakes it to re-arm.
    waker: Option<Waker>,
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
    /// passes (false; real time, as a `monoio` timer would: the live path's clock decides what
    /// is due, not when a task wakes up).
    pub async fn wait_change(&self, gen: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut first = true;
        std::future::poll_fn(|cx| {
            if self.feed.gen() != gen || self.feed.is_stopped() {
                return Poll::Ready(true);
            }
            // Polled again: woken by the watchdog (or a publish that changed nothing). Due?
            let due = if std::mem::take(&mut first) {
                timeout.is_zero()
            } else {
                Instant::now() >= deadline
            };
            if due {
                return Poll::Ready(false);
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            self.note_deadline(deadline);
            Poll::Pending
        })
        .await
    }

    /// A wait until `deadline` was registered: keep the earliest, and wake the watchdog when it
    /// would sleep past it.
    fn note_deadline(&self, deadline: Instant) {
        if self.earliest.get().is_some_and(|e| e <= deadline) {
            return;
        }
        self.earliest.set(Some(deadline));
        let mut dog = self.watchdog.borrow_mut();
        if dog.armed_at.is_none_or(|at| at > deadline) {
            if let Some(w) = dog.waker.take() {
                w.wake();
            }
        }
    }

    /// Wakes every waiting request (they look at the state, and register again if they still
    /// wait).
    fn wake_all(&self) {
        // Whoever still waits registers its deadline again.
        self.earliest.set(None);
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

    /// Wakes the watchdog (the follower stopped: it ends).
    fn wake_watchdog(&self) {
        if let Some(w) = self.watchdog.borrow_mut().waker.take() {
            w.wake();
        }
    }

    /// The watchdog's poll: ready when the earliest registered deadline is due (or gone, or
    /// earlier than what `sleep` is armed for, or the follower stopped); otherwise it keeps
    /// `cx`'s waker for [`CoreRendition::note_deadline`].
    fn poll_watchdog(
        &self,
        cx: &mut Context<'_>,
        sleep: Option<std::pin::Pin<&mut monoio::time::Sleep>>,
    ) -> Poll<()> {
        let mut dog = self.watchdog.borrow_mut();
        if self.feed.is_stopped() || self.earliest.get() != dog.armed_at {
            return Poll::Ready(());
        }
        if let Some(sleep) = sleep {
            if std::future::Future::poll(sleep, cx).is_ready() {
                return Poll::Ready(());
            }
        }
        dog.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The cached render for `key` if still current.
    pub fn cached(&self, key: &str, stamp: u64) -> Option<Rc<Rendered>> {
        self.renders
            .borrow()
            .get(key)
            .filter(|r| r.stamp == stamp)
            .map(Rc::clone)
    }

    pub fn store_render(&self, key: String, stamp: u64, body: Bytes, now: Instant) {
        let mut renders = self.renders.borrow_mut();
        if renders.len() >= RENDERS_MAX {
            renders.retain(|_, r| r.stamp == stamp);
        }
        renders.insert(
            key,
            Rc::new(Rendered {
                stamp,
                body,
                at: now,
                head: RefCell::new(None),
            }),
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
        earliest: Cell::new(None),
        watchdog: RefCell::new(Watchdog::default()),
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
        // The follower stopped: let waiters and the watchdog see it.
        relay.wake_all();
        relay.wake_watchdog();
    });
    monoio::spawn(watch_deadlines(Rc::clone(&view)));
    view
}

/// The watchdog of `view`'s waiter list (see the module docs): sleeps until the earliest
/// registered deadline, then wakes the list; ends when the follower stops.
async fn watch_deadlines(view: Rc<CoreRendition>) {
    let mut sleep: Option<std::pin::Pin<Box<monoio::time::Sleep>>> = None;
    while !view.feed.is_stopped() {
        let earliest = view.earliest.get();
        match earliest {
            Some(at) if Instant::now() >= at => {
                view.wake_all();
                continue;
            }
            Some(at) => {
                let at = monoio::time::Instant::from_std(at);
                match sleep.as_mut() {
                    Some(s) => s.as_mut().reset(at),
                    None => sleep = Some(Box::pin(monoio::time::sleep_until(at))),
                }
            }
            None => {}
        }
        view.watchdog.borrow_mut().armed_at = earliest;
        std::future::poll_fn(|cx| {
            let armed = earliest.and(sleep.as_mut()).map(|s| s.as_mut());
            view.poll_watchdog(cx, armed)
        })
        .await;
    }
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
    fn each_wait_times_out_on_its_own_deadline_without_a_timer_of_its_own() {
        let f = feed();
        let publisher = Arc::clone(&f);
        let (go, thread) = on_signal(move || publisher.publish(Phase::Pending, Instant::now()));
        let (short, long) = block_on(async move {
            let view = subscribe(f, nothing());
            let gen = view.feed.gen();
            // A long wait first: the watchdog arms towards its deadline, and a shorter wait
            // registered later must wake it to re-arm (else that one would wait 30 s).
            let long = {
                let view = Rc::clone(&view);
                monoio::spawn(async move { view.wait_change(gen, NEVER).await })
            };
            // One round of the core's tasks (the long wait registers, the watchdog arms).
            monoio::spawn(async {}).await;
            assert!(
                view.watchdog.borrow().armed_at.is_some(),
                "armed for the long wait"
            );
            let short = {
                let view = Rc::clone(&view);
                monoio::spawn(async move {
                    let started = Instant::now();
                    let changed = view.wait_change(gen, Duration::from_millis(20)).await;
                    (changed, started.elapsed())
                })
            };
            let short = monoio::time::timeout(Duration::from_secs(10), short)
                .await
                .expect("the short wait ends on its deadline, not the long one's");
            // The long wait is still held (registered again after the watchdog's wake-up)
            // and ends with the publish.
            assert_eq!(view.waiters.borrow().len(), 1, "the long wait is held");
            go.send(()).expect("publisher");
            let long = long.await;
            assert_eq!(view.earliest.get(), None, "nobody waits");
            (short, long)
        });
        thread.join().expect("publisher");
        let (short_changed, short_waited) = short;
        assert!(!short_changed, "timed out");
        assert!(
            short_waited >= Duration::from_millis(20),
            "{short_waited:?}"
        );
        assert!(long, "released by the publish");
    }

    #[test]
    fn a_zero_timeout_returns_at_once() {
        block_on(async {
            let view = subscribe(feed(), nothing());
            assert!(!view.wait_change(view.feed.gen(), Duration::ZERO).await);
            assert!(view.waiters.borrow().is_empty());
        });
    }

    #[test]
    fn render_cache_keeps_current_stamps() {
        let view = block_on(async { subscribe(feed(), nothing()) });
        let now = Instant::now();
        view.store_render("a".into(), 1, Bytes::from_static(b"one"), now);
        let hit = view.cached("a", 1).expect("current");
        assert_eq!((&hit.body, hit.at), (&Bytes::from_static(b"one"), now));
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
