//! The monotonic clock the caches and the live path read, injectable so that tests can put an
//! entry exactly at its TTL instead of sleeping past it on the wall clock.
//!
//! Production code uses [`SystemClock`] (`Instant::now`). [`TestClock`] only moves when told.
//! Timers (`monoio::time`, `tokio::time`) stay on real time: the clock decides what is fresh or
//! expired, not when a task wakes up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of `Instant`s.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// A clock shared by every worker (cheap to clone).
pub type SharedClock = Arc<dyn Clock>;

/// `Instant::now()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The clock of a running edge.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until [`TestClock::advance`] (tests).
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<Mutex<Instant>>,
}

impl Default for TestClock {
    fn default() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

impl TestClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// This clock as the caches and the live hub take it.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_when_advanced() {
        let c = TestClock::default();
        let shared = c.shared();
        let t0 = shared.now();
        assert_eq!(shared.now(), t0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(shared.now() - t0, Duration::from_millis(1500));
    }
}
