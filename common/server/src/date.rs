//! The `Date` header (RFC 9110 §6.6.1 requires it from an origin with a clock; caches use it
//! with `Age`). IMF-fixdate, formatted at most once per second per worker thread.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringcast_proto::http::date::format;

/// The current date, re-formatted only when the second changes, and shared by every response
/// of that second (a reference count per response, not a string).
pub fn now() -> Arc<str> {
    thread_local! {
        static CACHED: RefCell<Option<(u64, Arc<str>)>> = const { RefCell::new(None) };
    }
    let secs = coarse_unix_secs();
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Some((at, date)) if *at == secs => Arc::clone(date),
            _ => {
                let date: Arc<str> = Arc::from(format(secs));
                *c = Some((secs, Arc::clone(&date)));
                date
            }
        }
    })
}

/// Whole seconds since the epoch from the kernel's coarse real-time clock: it is read from
/// the vDSO without touching the TSC (cheaper than `SystemTime::now`, which every response
/// paid), and its few milliseconds of granularity cannot matter to a header that counts
/// seconds.
pub fn coarse_unix_secs() -> u64 {
    match coarse_clock(libc::CLOCK_REALTIME_COARSE) {
        Some(since_epoch) => since_epoch.as_secs(),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// The time of the kernel's coarse `clock` (`CLOCK_REALTIME_COARSE`, `CLOCK_MONOTONIC_COARSE`):
/// read from the vDSO without touching the TSC, in ticks of a few milliseconds; `None` when it
/// cannot be read.
pub(crate) fn coarse_clock(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_an_imf_fixdate() {
        let d = now();
        assert_eq!(d.len(), 29, "{d}");
        assert!(d.ends_with(" GMT"), "{d}");
    }

    #[test]
    fn the_coarse_clock_agrees_with_the_system_clock() {
        let fine = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs();
        assert!(coarse_unix_secs().abs_diff(fine) <= 1);
    }
}
