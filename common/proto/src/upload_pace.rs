//! The pace an upload body must keep, sans-IO (the caller passes `now` in milliseconds).
//!
//! Two limits against slow clients that would otherwise hold a connection, a lock and a buffer
//! for as long as they like while sending just enough to dodge the idle timeout:
//! - a minimum rate: over every window of `window_ms`, at least `min_bytes_per_sec × window`
//!   bytes must arrive (checked whenever a window has passed, so a burst at the start does not
//!   pay for an hour of trickling);
//! - a total deadline: one request body may take at most `deadline_ms`.
//!
//! Either limit ends the request; the ingest keeps what arrived (the upload resumes at its last
//! acknowledged offset).

/// The configured limits; a zero field disables that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceLimits {
    pub min_bytes_per_sec: u64,
    pub window_ms: u64,
    pub deadline_ms: u64,
}

/// Why a body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooSlow {
    /// Fewer than the minimum bytes arrived over the last window.
    BelowMinimumRate { bytes: u64, window_ms: u64 },
    /// The body took longer than the deadline.
    PastDeadline { deadline_ms: u64 },
}

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TooSlow::BelowMinimumRate { bytes, window_ms } => write!(
                f,
                "the request body arrived too slowly ({bytes} bytes in {} s)",
                window_ms / 1000
            ),
            TooSlow::PastDeadline { deadline_ms } => write!(
                f,
                "the request body took longer than {} s",
                deadline_ms / 1000
            ),
        }
    }
}

/// The pace of one request body.
#[derive(Debug, Clone)]
pub struct Pace {
    limits: PaceLimits,
    started_ms: u64,
    window_start_ms: u64,
    window_bytes: u64,
}

impl Pace {
    pub fn new(limits: PaceLimits, now_ms: u64) -> Self {
        Self {
            limits,
            started_ms: now_ms,
            window_start_ms: now_ms,
            window_bytes: 0,
        }
    }

    /// Record `bytes` received at `now_ms` (0 to just check the clock).
    pub fn observe(&mut self, now_ms: u64, bytes: u64) -> Result<(), TooSlow> {
        self.window_bytes = self.window_bytes.saturating_add(bytes);
        let l = self.limits;
        if l.deadline_ms > 0 && now_ms.saturating_sub(self.started_ms) > l.deadline_ms {
            return Err(TooSlow::PastDeadline {
                deadline_ms: l.deadline_ms,
            });
        }
        if l.min_bytes_per_sec == 0 || l.window_ms == 0 {
            return Ok(());
        }
        let elapsed = now_ms.saturating_sub(self.window_start_ms);
        if elapsed < l.window_ms {
            return Ok(());
        }
        // Required over the time actually elapsed (a read that returned late covers more than
        // one window), rounded down.
        let need = (u128::from(l.min_bytes_per_sec) * u128::from(elapsed) / 1000) as u64;
        if self.window_bytes < need {
            return Err(TooSlow::BelowMinimumRate {
                bytes: self.window_bytes,
                window_ms: elapsed,
            });
        }
        self.window_start_ms = now_ms;
        self.window_bytes = 0;
        Ok(())
    }

    /// How long until [`Pace::observe`] fails for certain if no further byte arrives (the
    /// caller bounds its next read by this, so a client that sends nothing is cut off on time
    /// rather than at the idle timeout, and a read that times out then is always a pace
    /// violation); `None` when no limit is set. A window that already holds enough bytes for
    /// longer than itself fails only once the time those bytes cover at the minimum rate has
    /// passed.
    pub fn next_check_in_ms(&self, now_ms: u64) -> Option<u64> {
        let l = self.limits;
        let deadline = (l.deadline_ms > 0)
            .then(|| (self.started_ms + l.deadline_ms + 1).saturating_sub(now_ms));
        let window = (l.min_bytes_per_sec > 0 && l.window_ms > 0).then(|| {
            let covered =
                u128::from(self.window_bytes) * 1000 / u128::from(l.min_bytes_per_sec) + 1;
            let covered = u64::try_from(covered).unwrap_or(u64::MAX / 2);
            let fails_at = self.window_start_ms + l.window_ms.max(covered);
            fails_at.saturating_sub(now_ms)
        });
        match (deadline, window) {
            (Some(a), Some(b)) => Some(a.min(b).max(1)),
            (a, b) => a.or(b).map(|v| v.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: PaceLimits = PaceLimits {
        min_bytes_per_sec: 1000,
        window_ms: 10_000,
        deadline_ms: 60_000,
    };

    #[test]
    fn a_trickle_is_cut_at_the_end_of_its_window() {
        let mut p = Pace::new(LIMITS, 0);
        for s in 1..10 {
            assert_eq!(p.observe(s * 1000, 10), Ok(()), "inside the first window");
        }
        assert_eq!(
            p.observe(10_000, 10),
            Err(TooSlow::BelowMinimumRate {
                bytes: 100,
                window_ms: 10_000
            })
        );
    }

    #[test]
    fn an_early_burst_does_not_pay_for_later_trickling() {
        let mut p = Pace::new(LIMITS, 0);
        assert_eq!(p.observe(1000, 1_000_000), Ok(()));
        assert_eq!(p.observe(10_000, 0), Ok(()), "first window met");
        assert!(p.observe(20_000, 5).is_err(), "second window trickles");
    }

    #[test]
    fn deadline_and_disabled_limits() {
        let mut p = Pace::new(LIMITS, 0);
        for s in 1..=6 {
            assert_eq!(p.observe(s * 10_000, 1_000_000), Ok(()));
        }
        assert_eq!(
            p.observe(60_001, 1_000_000),
            Err(TooSlow::PastDeadline {
                deadline_ms: 60_000
            })
        );
        let off = PaceLimits {
            min_bytes_per_sec: 0,
            window_ms: 0,
            deadline_ms: 0,
        };
        let mut p = Pace::new(off, 0);
        assert_eq!(p.observe(u64::MAX / 2, 0), Ok(()));
        assert_eq!(p.next_check_in_ms(5), None);
        let p = Pace::new(LIMITS, 0);
        assert_eq!(p.next_check_in_ms(0), Some(10_000));
        assert_eq!(p.next_check_in_ms(9_999), Some(1));
    }

    #[test]
    fn a_pause_after_enough_bytes_is_not_a_violation_yet() {
        let mut p = Pace::new(LIMITS, 0);
        // 25 s worth of the minimum rate in the first second, then silence.
        assert_eq!(p.observe(1000, 25_000), Ok(()));
        assert_eq!(p.next_check_in_ms(1000), Some(24_001));
        assert_eq!(p.observe(10_000, 0), Ok(()), "the window's end passes");
        let wait = p.next_check_in_ms(10_000).expect("limited");
        assert_eq!(p.observe(10_000 + wait, 0).map_err(|_| ()), Err(()));
    }

    proptest! {
        /// Whatever came before, silence until `next_check_in_ms` is always a violation, and
        /// never earlier (so a read timed out at that bound is the pace's doing).
        #[test]
        fn the_next_check_is_exactly_when_silence_fails(
            steps in proptest::collection::vec((0u64..5000, 0u64..20_000), 0..20)
        ) {
            let mut p = Pace::new(LIMITS, 0);
            let mut now = 0;
            for (dt, bytes) in steps {
                now += dt;
                if p.observe(now, bytes).is_err() {
                    return Ok(());
                }
            }
            let wait = p.next_check_in_ms(now).expect("limited");
            let mut early = p.clone();
            prop_assert!(early.observe(now + wait - 1, 0).is_ok());
            prop_assert!(p.observe(now + wait, 0).is_err());
        }

        /// A client at or above the minimum rate (sending at least every second) is never cut
        /// before the deadline; one below it is cut within two windows.
        #[test]
        fn fast_enough_clients_pass_and_slow_ones_do_not(rate in 0u64..3000, secs in 1u64..50) {
            let mut p = Pace::new(LIMITS, 0);
            let mut cut = None;
            for s in 1..=secs {
                if p.observe(s * 1000, rate).is_err() {
                    cut = Some(s);
                    break;
                }
            }
            if rate >= LIMITS.min_bytes_per_sec {
                prop_assert_eq!(cut, None);
            } else if secs >= 10 {
                prop_assert_eq!(cut, Some(10));
            }
        }
    }
}
