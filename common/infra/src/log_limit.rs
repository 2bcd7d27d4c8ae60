//! At most one log line per interval for events a client can cause at any rate (a refusal
//! answered in microseconds can otherwise write megabytes of identical warnings a second, as a
//! soak run's full disk showed: 200 MB of one line in minutes).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lets one event through per `interval`; counts the ones it holds back.
#[derive(Debug)]
pub struct LogEvery {
    interval_ms: u64,
    last_ms: AtomicU64,
    held: AtomicU64,
}

impl LogEvery {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last_ms: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(events held back since the last one let through)` when this event should be
    /// logged (at `now_ms`, any monotonic-enough millisecond clock), `None` when it should not.
    pub fn due_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= self.interval_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held.swap(0, Relaxed));
        }
        self.held.fetch_add(1, Relaxed);
        None
    }

    /// [`LogEvery::due_at`] on the wall clock.
    pub fn due(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        self.due_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_and_the_rest_counted() {
        let l = LogEvery::new(Duration::from_secs(10));
        assert_eq!(l.due_at(1_000), Some(0));
        for t in 1_001..1_100 {
            assert_eq!(l.due_at(t), None);
        }
        assert_eq!(l.due_at(10_999), None);
        assert_eq!(l.due_at(11_000), Some(100), "99 + 1 held back");
        assert_eq!(l.due_at(11_001), None);
    }
}
