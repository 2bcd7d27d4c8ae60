//! The edge's cache of video visibilities, shared by every worker: one bounded `quick_cache`
//! (least recently used ids go first), answers trusted for `visibility_ttl_ms`
//! (`ringcast_proto::visibility::decide`), lookups on the side runtime
//! (`ringcast_infra::visibility`).
//!
//! - Hit path: a shard read lock and a hash probe, no allocation, no await.
//! - Single-flight: a miss or an expired answer goes through `get_value_or_guard_async`, so a
//!   burst of requests for one id (on any worker) makes one Redis call and shares its answer.
//! - Redis failing: an expired answer keeps being used (stale-if-error) and is retried after
//!   `visibility_ttl_ms`; an id never learned is [`Answer::Unavailable`] until the next try
//!   (also after `visibility_ttl_ms`), so an outage costs one failed lookup per id and
//!   interval, not one per request, and never a queue of requests behind a hung Redis.
//! - [`VisibilityCache::forget`] (a purge message's `videos`) and
//!   [`VisibilityCache::forget_all`] (a resubscription) drop answers at once. A lookup that
//!   was already running when one of them happened may carry the old value: it answers the
//!   requests that waited for it, but is stored as expired, so the next request asks again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use ringcast_infra::log_limit::LogEvery;
use ringcast_infra::visibility::VisibilityReader;
use ringcast_proto::visibility::{decide, Decision, Remembered, Timing, Visibility};

use crate::clock::SharedClock;
use crate::platform::stats::PlatformStats;

/// Failed lookups warn at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// What the edge knows about a video's visibility right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Known(Visibility),
    /// Never learned, and Redis failed.
    Unavailable,
}

/// Where answers come from (Redis in production, a stand-in in unit tests).
pub trait Source: Send + Sync {
    fn lookup(&self, id: &str) -> impl std::future::Future<Output = Result<Visibility, String>>;
}

impl Source for VisibilityReader {
    async fn lookup(&self, id: &str) -> Result<Visibility, String> {
        self.get(id).await.map_err(|e| e.to_string())
    }
}

/// The shared visibility cache.
pub struct VisibilityCache<S: Source = VisibilityReader> {
    entries: Cache<String, Remembered>,
    source: S,
    timing: Timing,
    timeout: Duration,
    clock: SharedClock,
    epoch: Instant,
    /// Bumped by every forget: a lookup that started before one stores its answer expired.
    generation: AtomicU64,
    warn: LogEvery,
    stats: Arc<PlatformStats>,
}

impl<S: Source> VisibilityCache<S> {
    /// A cache of at most `max_entries` ids, answers fresh for `ttl`, lookups bounded by
    /// `timeout`.
    pub fn new(
        source: S,
        max_entries: u64,
        ttl: Duration,
        timeout: Duration,
        clock: SharedClock,
        stats: Arc<PlatformStats>,
    ) -> Self {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let items = usize::try_from(max_entries).unwrap_or(usize::MAX);
        Self {
            entries: Cache::new(items),
            source,
            timing: Timing {
                ttl_ms,
                retry_ms: ttl_ms,
            },
            timeout,
            epoch: clock.now(),
            clock,
            generation: AtomicU64::new(0),
            warn: LogEvery::new(WARN_INTERVAL),
            stats,
        }
    }

    fn now_ms(&self) -> u64 {
        let since = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// The visibility of video `id`, from the cache or one shared lookup.
    pub async fn get(&self, id: &str) -> Answer {
        let cached = self.entries.get(id);
        match decide(cached.as_ref(), self.now_ms(), self.timing) {
            Decision::Fresh(v) => return Answer::Known(v),
            Decision::Stale(v) => {
                PlatformStats::bump(&self.stats.visibility_stale_served);
                return Answer::Known(v);
            }
            Decision::Unknown => return Answer::Unavailable,
            Decision::Ask => {}
        }
        if let Some(old) = cached {
            // Only that expired answer: a neighbour's fresh one stays.
            self.entries.remove_if(id, |e| *e == old);
        }
        let guard = match self.entries.get_value_or_guard_async(id).await {
            // Another request's lookup (fresh or failed): share it.
            Ok(e) => return answer_of(&e),
            Err(guard) => guard,
        };
        let generation = self.generation.load(Ordering::Acquire);
        PlatformStats::bump(&self.stats.visibility_lookups);
        let found = monoio::time::timeout(self.timeout, self.source.lookup(id)).await;
        let now = self.now_ms();
        let entry = match found {
            Ok(Ok(v)) => {
                let e = Remembered::learned(v, now);
                if self.generation.load(Ordering::Acquire) == generation {
                    e
                } else {
                    e.expired()
                }
            }
            Ok(Err(error)) => self.failed(id, cached.as_ref(), now, &error),
            Err(_) => self.failed(id, cached.as_ref(), now, "timed out"),
        };
        let _ = guard.insert(entry);
        answer_of(&entry)
    }

    fn failed(&self, id: &str, before: Option<&Remembered>, now: u64, error: &str) -> Remembered {
        PlatformStats::bump(&self.stats.visibility_lookup_errors);
        if let Some(held_back) = self.warn.due_at(now.max(1)) {
            tracing::warn!(
                video = id,
                error,
                known = before.and_then(|b| b.visibility).is_some(),
                held_back,
                "cannot read a video's visibility from Redis; known videos keep their last \
                 answer, unknown ones are refused unsigned (503) until Redis answers"
            );
        }
        Remembered::failed(before, now)
    }

    /// Drop what is known about `ids` (their metadata changed).
    pub fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for id in ids {
            self.entries.remove(id);
        }
    }

    /// Drop every answer (purge messages may have been missed).
    pub fn forget_all(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let n = self.entries.len() as u64;
        self.entries.clear();
        n
    }

    /// Ids held, for `/metrics`.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn answer_of(e: &Remembered) -> Answer {
    match e.visibility {
        Some(v) => Answer::Known(v),
        None => Answer::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Answers from a map (missing id = Redis error), counting calls.
    #[derive(Default)]
    struct Fake {
        answers: Mutex<HashMap<String, Visibility>>,
        calls: AtomicU64,
    }

    impl Fake {
        fn set(&self, id: &str, v: Option<Visibility>) {
            let mut a = self.answers.lock().expect("lock");
            match v {
                Some(v) => a.insert(id.to_string(), v),
                None => a.remove(id),
            };
        }
    }

    impl Source for Arc<Fake> {
        async fn lookup(&self, id: &str) -> Result<Visibility, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // Yield once, so concurrent requests find the lookup in flight.
            monoio::time::sleep(Duration::from_millis(5)).await;
            let found = self.answers.lock().expect("lock").get(id).copied();
            found.ok_or_else(|| "redis down".to_string())
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn cache(clock: &TestClock) -> (VisibilityCache<Arc<Fake>>, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let c = VisibilityCache::new(
            Arc::clone(&fake),
            100,
            Duration::from_millis(5000),
            Duration::from_secs(1),
            clock.shared(),
            Arc::default(),
        );
        (c, fake)
    }

    #[test]
    fn answers_are_reused_until_the_ttl_then_asked_again() {
        let clock = TestClock::default();
        let (c, fake) = cache(&clock);
        fake.set("a", Some(Visibility::Public));
        let private = Answer::Known(Visibility::Private);
        let public = Answer::Known(Visibility::Public);
        run(async {
            assert_eq!(c.get("a").await, public);
            fake.set("a", Some(Visibility::Private));
            clock.advance(Duration::from_millis(4999));
            assert_eq!(c.get("a").await, public, "still within the TTL");
            assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
            clock.advance(Duration::from_millis(1));
            assert_eq!(c.get("a").await, private, "asked again at the TTL");
            assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn forget_takes_effect_at_once() {
        let clock = TestClock::default();
        let (c, fake) = cache(&clock);
        fake.set("a", Some(Visibility::Public));
        run(async {
            assert_eq!(c.get("a").await, Answer::Known(Visibility::Public));
            fake.set("a", Some(Visibility::Private));
            c.forget(["a"]);
            assert_eq!(c.get("a").await, Answer::Known(Visibility::Private));
            fake.set("a", Some(Visibility::Unlisted));
            assert_eq!(c.forget_all(), 1);
            assert_eq!(c.get("a").await, Answer::Known(Visibility::Unlisted));
        });
    }

    #[test]
    fn redis_failing_keeps_known_answers_and_refuses_unknown_ids() {
        let clock = TestClock::default();
        let (c, fake) = cache(&clock);
        fake.set("known", Some(Visibility::Unlisted));
        run(async {
            assert_eq!(c.get("known").await, Answer::Known(Visibility::Unlisted));
            fake.set("known", None); // Redis "down" from now on
            clock.advance(Duration::from_millis(6000));
            assert_eq!(c.get("known").await, Answer::Known(Visibility::Unlisted));
            assert_eq!(c.get("new").await, Answer::Unavailable);
            let calls = fake.calls.load(Ordering::SeqCst);
            // Within the retry interval nobody asks again.
            clock.advance(Duration::from_millis(4999));
            assert_eq!(c.get("known").await, Answer::Known(Visibility::Unlisted));
            assert_eq!(c.get("new").await, Answer::Unavailable);
            assert_eq!(fake.calls.load(Ordering::SeqCst), calls);
            assert_eq!(c.stats.visibility_stale_served.load(Ordering::SeqCst), 1);
            // Back: the next try after the interval learns again.
            fake.set("new", Some(Visibility::Private));
            clock.advance(Duration::from_millis(1));
            assert_eq!(c.get("new").await, Answer::Known(Visibility::Private));
        });
    }

    #[test]
    fn a_burst_of_misses_makes_one_lookup() {
        let clock = TestClock::default();
        let (c, fake) = cache(&clock);
        fake.set("a", Some(Visibility::Private));
        let c = Rc::new(c);
        let answers = Rc::new(RefCell::new(Vec::new()));
        run(async {
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let (c, answers) = (Rc::clone(&c), Rc::clone(&answers));
                    monoio::spawn(async move {
                        let a = c.get("a").await;
                        answers.borrow_mut().push(a);
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
        });
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        assert_eq!(answers.borrow().len(), 50);
        assert!(answers
            .borrow()
            .iter()
            .all(|a| *a == Answer::Known(Visibility::Private)));
    }

    use std::rc::Rc;
}
