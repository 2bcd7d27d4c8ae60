//! The per-core side of live LL-HLS: each monoio worker keeps its own index of the renditions it
//! serves ([`LocalTail`]), so a request touches no lock: it loads the published state
//! (`ArcSwap`, lock-free), waits on a core-local waiter list, and reuses the core's rendered
//! playlists.
//!
//! Wake-up path: the follower (tokio side thread) publishes, then sends one message per
//! subscribed core; on each core a relay task receives it (monoio's `sync` feature lets another
//! thread wake the runtime) and wakes that core's waiting requests. A request re-checks the
//! published generation when polled, so a publish between its check and its registration is
//! never lost (both happen in one poll, and the relay runs after the publish).
//!
//! After waking its requests the relay calls the core's publish hook ([`set_publish_hook`]),
//! which the server uses to load the newest part into the memory cache: the woken players ask
//! for it one round trip later, and find it there instead of queueing behind one origin fetch.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::live::hub::{LiveHub, Tail};
use crate::live::keys::RenditionId;

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

/// The renditions of the version, from its master.
pub struct Siblings {
    pub names: Rc<Vec<String>>,
    /// When to look for the master again (`None`: found, kept).
    pub refresh_at: Option<Instant>,
}

/// A core's handle on one followed rendition.
pub struct LocalTail {
    pub tail: Arc<Tail>,
    waiters: RefCell<Vec<Waker>>,
    last_touch_ms: Cell<u64>,
    /// Rendered playlists by cache key (`cache_key_for`): identical requests of one state
    /// share one render.
    pub renders: RefCell<HashMap<String, Rendered>>,
    pub siblings: RefCell<Option<Siblings>>,
}

impl LocalTail {
    /// Marks the rendition as requested (keeps its follower running).
    pub fn touch(&self, hub: &LiveHub) {
        let now = hub.now_ms();
        if now.saturating_sub(self.last_touch_ms.get()) >= TOUCH_EVERY_MS {
            self.last_touch_ms.set(now);
            self.tail.touch(now);
        }
    }

    /// Waits until the follower publishes something newer than `gen` (true) or `timeout`
    /// passes (false).
    pub async fn wait_change(&self, gen: u64, timeout: Duration) -> bool {
        let changed = std::future::poll_fn(|cx| {
            if self.tail.gen() != gen || self.tail.is_stopped() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        monoio::time::timeout(timeout, changed).await.is_ok()
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
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

    pub fn store_render(&self, key: String, stamp: u64, body: Bytes) {
        let mut renders = self.renders.borrow_mut();
        if renders.len() >= RENDERS_MAX {
            renders.retain(|_, r| r.stamp == stamp);
        }
        renders.insert(
            key,
            Rendered {
                stamp,
                body,
                at: Instant::now(),
            },
        );
    }
}

enum Slot {
    Followed(Rc<LocalTail>),
    /// No follower was running at the last look (part requests do not start one).
    /// Valid until `until`, and while no follower has started anywhere since (`started`).
    NotFollowed {
        until: Instant,
        started: u64,
    },
}

/// What a core does after a publish of a rendition it serves (see the module docs).
pub type PublishHook = Rc<dyn Fn(&Tail)>;

thread_local! {
    static PUBLISH_HOOK: RefCell<Option<PublishHook>> = const { RefCell::new(None) };

    static INDEX: RefCell<HashMap<RenditionId, Slot>> = RefCell::new(HashMap::new());
}

/// This core's handle on the follower of `id`. `start`: start a follower when none runs
/// (playlist requests); otherwise only join a running one (part requests).
pub fn local_tail(hub: &LiveHub, id: &RenditionId, start: bool) -> Option<Rc<LocalTail>> {
    let now = Instant::now();
    let started = hub.stats().followers_started.load(Relaxed);
    let found = INDEX.with_borrow(|index| match index.get(id) {
        Some(Slot::Followed(lt)) if hub.usable(&lt.tail) => Some(Some(Rc::clone(lt))),
        Some(Slot::NotFollowed {
            until,
            started: then,
        }) if !start && now < *until && *then == started => Some(None),
        _ => None,
    });
    if let Some(found) = found {
        return found;
    }
    let tail = if start {
        Some(hub.tail(id))
    } else {
        hub.existing(id)
    };
    let slot = match &tail {
        Some(t) => Slot::Followed(subscribe(Arc::clone(t))),
        None => Slot::NotFollowed {
            until: now + Duration::from_millis(hub.settings().probe_ttl_ms),
            started,
        },
    };
    let out = match &slot {
        Slot::Followed(lt) => Some(Rc::clone(lt)),
        Slot::NotFollowed { .. } => None,
    };
    INDEX.with_borrow_mut(|index| {
        if index.len() >= PRUNE_ABOVE {
            index.retain(|_, s| match s {
                Slot::Followed(lt) => hub.usable(&lt.tail),
                Slot::NotFollowed { until, .. } => now < *until,
            });
        }
        index.insert(id.clone(), slot);
    });
    out
}

/// Install this core's publish hook (once per worker, at start-up).
pub fn set_publish_hook(hook: PublishHook) {
    PUBLISH_HOOK.with_borrow_mut(|h| *h = Some(hook));
}

/// A core-local handle with its relay task.
fn subscribe(tail: Arc<Tail>) -> Rc<LocalTail> {
    let mut rx = tail.subscribe();
    let lt = Rc::new(LocalTail {
        tail,
        waiters: RefCell::new(Vec::new()),
        last_touch_ms: Cell::new(0),
        renders: RefCell::new(HashMap::new()),
        siblings: RefCell::new(None),
    });
    let relay = Rc::clone(&lt);
    monoio::spawn(async move {
        while rx.recv().await.is_ok() {
            // Several publishes may have queued up: one wake-up covers them all.
            while rx.try_recv().is_ok() {}
            relay.wake_all();
            if let Some(hook) = PUBLISH_HOOK.with_borrow(Clone::clone) {
                hook(&relay.tail);
            }
        }
        // The follower stopped: let waiters see it.
        relay.wake_all();
    });
    lt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::hub::Phase;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn tail() -> Arc<Tail> {
        Arc::new(Tail::detached(RenditionId {
            video: "v".into(),
            version: 1,
            rendition: "r".into(),
        }))
    }

    #[test]
    fn a_publish_on_another_thread_wakes_every_waiter_of_the_core() {
        let t = tail();
        let publisher = Arc::clone(&t);
        let woken = block_on(async move {
            let lt = subscribe(t);
            let gen = lt.tail.gen();
            let published = Arc::new(std::sync::Mutex::new(None));
            let at = Arc::clone(&published);
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                *at.lock().expect("lock") = Some(Instant::now());
                publisher.publish(Phase::Pending);
            });
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let lt = Rc::clone(&lt);
                    monoio::spawn(async move {
                        let changed = lt.wait_change(gen, Duration::from_secs(5)).await;
                        (changed, Instant::now())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for w in waiters {
                out.push(w.await);
            }
            thread.join().expect("publisher");
            let at = published.lock().expect("lock").expect("published");
            out.into_iter()
                .map(|(changed, when)| (changed, when.saturating_duration_since(at)))
                .collect::<Vec<_>>()
        });
        for (changed, after) in woken {
            assert!(changed);
            assert!(
                after < Duration::from_millis(20),
                "woken {after:?} after the publish"
            );
        }
    }

    #[test]
    fn waits_time_out_and_a_stop_releases_waiters() {
        let t = tail();
        let stopper = Arc::clone(&t);
        block_on(async move {
            let lt = subscribe(t);
            let gen = lt.tail.gen();
            assert!(!lt.wait_change(gen, Duration::from_millis(30)).await);
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                stopper.stop();
            });
            assert!(lt.wait_change(gen, Duration::from_secs(5)).await);
            assert!(lt.tail.is_stopped());
            thread.join().expect("stopper");
            // A core subscribing after the stop gets a closed channel at once.
            let late = subscribe(Arc::clone(&lt.tail));
            assert!(late.wait_change(gen, Duration::from_secs(5)).await);
        });
    }

    #[test]
    fn render_cache_keeps_current_stamps() {
        let lt = block_on(async { subscribe(tail()) });
        lt.store_render("a".into(), 1, Bytes::from_static(b"one"));
        assert_eq!(
            lt.cached("a", 1).map(|(b, _)| b),
            Some(Bytes::from_static(b"one"))
        );
        assert!(lt.cached("a", 2).is_none(), "another state");
        for i in 0..RENDERS_MAX {
            lt.store_render(format!("k{i}"), 2, Bytes::new());
        }
        assert!(lt.renders.borrow().len() <= RENDERS_MAX);
        assert!(
            lt.cached("a", 1).is_none(),
            "stale renders are dropped when full"
        );
    }
}
