//! Token buckets for the front door's rate limits, sans-IO: the caller passes `now` (monotonic
//! milliseconds) and owns the clock.
//!
//! A bucket holds up to `burst` tokens and gains `per_sec` tokens per second; a request takes
//! one token or is refused with the time until the next token ([`Decision::Deny`], the
//! `Retry-After`). A [`Limiter`] keeps one bucket per key (client address, API key hash) in a
//! map bounded by `max_entries`: a full bucket carries no information (a new bucket starts full),
//! so eviction first drops refilled buckets and only then, if every bucket is in use, the ones
//! touched longest ago. An evicted bucket comes back full: a client can gain at most one burst
//! from being evicted, and only when more than `max_entries` keys are active at once.

use std::collections::HashMap;
use std::hash::Hash;

/// A refill rate and a burst size. `per_sec == 0` means "no limit".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    /// `per_sec` tokens per second, at most `burst` (at least 1) saved up.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec: per_sec.max(0.0),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Whether this rate limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.per_sec <= 0.0 || !self.per_sec.is_finite()
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; the next token arrives in this many milliseconds (at least 1).
    Deny {
        retry_after_ms: u64,
    },
}

impl Decision {
    /// `Retry-After` in whole seconds, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Decision::Allow => 0,
            Decision::Deny { retry_after_ms } => retry_after_ms.div_ceil(1000).max(1),
        }
    }
}

/// Tokens at which a request is allowed: one, less a tolerance for float rounding in the refill.
const TAKE_AT: f64 = 1.0 - 1e-6;

/// One token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at_ms: u64,
}

impl Bucket {
    /// A full bucket (a key seen for the first time gets its whole burst).
    pub fn full(rate: Rate, now_ms: u64) -> Self {
        Self {
            tokens: rate.burst,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, rate: Rate, now_ms: u64) {
        // A clock that went backwards adds nothing (and does not move `at_ms` back).
        let elapsed = now_ms.saturating_sub(self.at_ms);
        self.tokens = self.tokens_after(rate, elapsed);
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Tokens held `elapsed_ms` after `at_ms` (the one formula `refill` and `take`'s
    /// Retry-After both use, so they agree to the last bit).
    fn tokens_after(&self, rate: Rate, elapsed_ms: u64) -> f64 {
        (self.tokens + elapsed_ms as f64 * rate.per_sec / 1000.0).min(rate.burst)
    }

    /// Take one token at `now_ms`.
    pub fn take(&mut self, rate: Rate, now_ms: u64) -> Decision {
        if rate.is_unlimited() {
            return Decision::Allow;
        }
        self.refill(rate, now_ms);
        if self.tokens >= TAKE_AT {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Decision::Allow;
        }
        // The estimate can be a millisecond off either way in floats: settle on the first
        // whole millisecond at which `take` allows, by the same arithmetic, so a client that
        // waits exactly Retry-After succeeds and one that comes a millisecond early does not.
        let allows = |ms: u64| self.tokens_after(rate, ms) >= TAKE_AT;
        let missing = TAKE_AT - self.tokens;
        let mut ms = ((missing * 1000.0 / rate.per_sec).ceil() as u64).max(1);
        for _ in 0..4 {
            if ms > 1 && allows(ms - 1) {
                ms -= 1;
            } else if !allows(ms) {
                ms += 1;
            } else {
                break;
            }
        }
        Decision::Deny { retry_after_ms: ms }
    }

    /// Whether the bucket would be full at `now_ms` (then it is the same as a new one).
    pub fn is_full_at(&self, rate: Rate, now_ms: u64) -> bool {
        let mut b = *self;
        b.refill(rate, now_ms);
        b.tokens >= rate.burst
    }
}

/// One bucket per key, at most `max_entries` of them.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    max_entries: usize,
    buckets: HashMap<K, Bucket>,
    evictions: u64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate, max_entries: usize) -> Self {
        Self {
            rate,
            max_entries: max_entries.max(1),
            buckets: HashMap::new(),
            evictions: 0,
        }
    }

    /// One request of `key` at `now_ms`.
    pub fn check(&mut self, key: &K, now_ms: u64) -> Decision {
        if self.rate.is_unlimited() {
            return Decision::Allow;
        }
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.take(self.rate, now_ms);
        }
        if self.buckets.len() >= self.max_entries {
            self.evict(now_ms);
        }
        let mut bucket = Bucket::full(self.rate, now_ms);
        let decision = bucket.take(self.rate, now_ms);
        self.buckets.insert(key.clone(), bucket);
        decision
    }

    /// Make room: drop every refilled bucket; if that frees nothing, drop the eighth of the
    /// buckets touched longest ago (so a table of active keys is not swept on every insert).
    fn evict(&mut self, now_ms: u64) {
        let rate = self.rate;
        let before = self.buckets.len();
        self.buckets.retain(|_, b| !b.is_full_at(rate, now_ms));
        if self.buckets.len() >= self.max_entries {
            let mut ages: Vec<u64> = self.buckets.values().map(|b| b.at_ms).collect();
            let drop = (self.max_entries / 8).max(1).min(ages.len());
            let (_, cutoff, _) = ages.select_nth_unstable(drop - 1);
            let cutoff = *cutoff;
            let mut left = drop;
            self.buckets.retain(|_, b| {
                if left > 0 && b.at_ms <= cutoff {
                    left -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.evictions += (before - self.buckets.len()) as u64;
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Buckets dropped to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by the property below in CI: 1000 / 25.641… ms per token is 39.00002, the refill
    /// reaches the allow threshold at 39 ms, and Retry-After said 40.
    #[test]
    fn retry_after_is_not_a_millisecond_late() {
        let rate = Rate::new(25.64101370297385, 1);
        let mut b = Bucket::full(rate, 1000);
        assert_eq!(b.take(rate, 1000), Decision::Allow);
        let Decision::Deny { retry_after_ms } = b.take(rate, 1000) else {
            panic!("an empty bucket allowed a request");
        };
        assert_eq!(retry_after_ms, 39);
        assert_ne!(b.clone().take(rate, 1000 + 38), Decision::Allow);
        assert_eq!(b.take(rate, 1000 + 39), Decision::Allow);
    }

    #[test]
    fn a_burst_then_the_rate() {
        let rate = Rate::new(2.0, 3);
        let mut b = Bucket::full(rate, 0);
        for _ in 0..3 {
            assert_eq!(b.take(rate, 0), Decision::Allow);
        }
        let denied = b.take(rate, 0);
        assert_eq!(
            denied,
            Decision::Deny {
                retry_after_ms: 500
            }
        );
        assert_eq!(denied.retry_after_secs(), 1);
        assert_eq!(b.take(rate, 499), Decision::Deny { retry_after_ms: 1 });
        assert_eq!(b.take(rate, 500), Decision::Allow);
        // A clock that goes backwards gives nothing.
        assert!(matches!(b.take(rate, 100), Decision::Deny { .. }));
    }

    #[test]
    fn slow_rates_round_retry_after_up() {
        let rate = Rate::new(0.1, 1);
        let mut b = Bucket::full(rate, 0);
        assert_eq!(b.take(rate, 0), Decision::Allow);
        let d = b.take(rate, 0);
        assert_eq!(
            d,
            Decision::Deny {
                retry_after_ms: 10_000
            }
        );
        assert_eq!(d.retry_after_secs(), 10);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut l = Limiter::new(Rate::new(0.0, 1), 4);
        for i in 0..100 {
            assert_eq!(l.check(&i, 0), Decision::Allow);
        }
        assert!(l.is_empty());
    }

    #[test]
    fn keys_are_independent_and_eviction_prefers_idle_buckets() {
        let rate = Rate::new(1.0, 1);
        let mut l = Limiter::new(rate, 2);
        assert_eq!(l.check(&"a", 0), Decision::Allow);
        assert_eq!(l.check(&"b", 0), Decision::Allow);
        assert!(matches!(l.check(&"a", 0), Decision::Deny { .. }));
        // At 1.5 s "a" and "b" are refilled: both are dropped for "c", nothing is lost.
        assert_eq!(l.check(&"c", 1500), Decision::Allow);
        assert_eq!(l.len(), 1);
        assert_eq!(l.evictions(), 2);
    }

    proptest! {
        /// Over any run of requests, a key never gets more than `burst + rate × elapsed`.
        #[test]
        fn never_more_than_burst_plus_rate(
            per_sec in 0.1f64..100.0,
            burst in 1u32..50,
            gaps in proptest::collection::vec(0u64..200, 1..400),
        ) {
            let rate = Rate::new(per_sec, burst);
            let mut b = Bucket::full(rate, 0);
            let (mut now, mut allowed) = (0u64, 0u64);
            for gap in gaps {
                now += gap;
                if b.take(rate, now) == Decision::Allow {
                    allowed += 1;
                }
                let cap = f64::from(burst) + per_sec * now as f64 / 1000.0;
                prop_assert!(allowed as f64 <= cap + 1e-3, "{allowed} > {cap}");
            }
        }

        /// The Retry-After is exact: waiting that long gets the request through, and a
        /// millisecond less does not (for rates where a millisecond matters).
        #[test]
        fn retry_after_is_when_the_next_token_arrives(
            per_sec in 0.1f64..50.0,
            burst in 1u32..10,
            extra in 0u32..5,
        ) {
            let rate = Rate::new(per_sec, burst);
            let mut b = Bucket::full(rate, 1000);
            for _ in 0..burst {
                prop_assert_eq!(b.take(rate, 1000), Decision::Allow);
            }
            for _ in 0..extra {
                let _ = b.take(rate, 1000);
            }
            let Decision::Deny { retry_after_ms } = b.take(rate, 1000) else {
                return Err(TestCaseError::fail("an empty bucket allowed a request"));
            };
            let mut early = b;
            if retry_after_ms > 1 {
                let early = early.take(rate, 1000 + retry_after_ms - 1);
                prop_assert!(early != Decision::Allow, "allowed before Retry-After");
            }
            prop_assert_eq!(b.take(rate, 1000 + retry_after_ms), Decision::Allow);
        }

        /// Requests spaced at least 1/rate apart are never refused.
        #[test]
        fn a_client_at_the_rate_is_never_refused(per_sec in 0.5f64..100.0, n in 1usize..200) {
            let rate = Rate::new(per_sec, 1);
            let mut l = Limiter::new(rate, 8);
            let step = (1000.0 / per_sec).ceil() as u64;
            for i in 0..n as u64 {
                prop_assert_eq!(l.check(&"k", i * step), Decision::Allow);
            }
        }

        /// The table never holds more than `max_entries` keys, whatever arrives.
        #[test]
        fn memory_stays_bounded(
            max in 1usize..64,
            reqs in proptest::collection::vec((0u32..500, 0u64..50), 1..600),
        ) {
            let mut l = Limiter::new(Rate::new(1.0, 2), max);
            let mut now = 0;
            for (key, gap) in reqs {
                now += gap;
                let _ = l.check(&key, now);
                prop_assert!(l.len() <= max);
            }
        }
    }
}
