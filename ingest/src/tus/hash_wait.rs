//! How a PATCH's hash thread ([`crate::tus::digests::HashPipe`]) waits for its next buffer:
//! briefly spinning before it parks, while buffers come faster than [`SPIN`] apart.
//!
//! Why (docs/BENCHMARKS.md, issue 13, 2026-12-06 22:00–23:30 UTC): the hash thread bounds a
//! large upload (SHA-256 on one core runs at about the disk's O_DIRECT speed). A thread that parks
//! between two buffers leaves its CPU idle, and on a small machine the scheduler then places the
//! client, the io_uring workers or the socket's softirq work there; the next buffer finds the
//! hash thread waking late or sharing its core (`perf sched` of a 1 GiB upload: ~440–2000
//! switch-outs of the hash thread, 9–20 % of the upload not hashing). Spinning through the short
//! gaps keeps the CPU busy with the thread that bounds the upload (76 switch-outs in the same
//! profile, the thread hashing for the whole upload).
//!
//! Bounded: a spin lasts at most [`SPIN`], yields the CPU to any other runnable thread on each
//! round, and a spin that ran out (the buffers come slower than that: a slow client, a busy
//! disk) turns spinning off until a buffer arrives within [`SPIN`] of the wait's start again — so
//! a slow upload's hash thread spins at most once between two quick buffers, not once per
//! buffer. Sans-IO: the caller passes the times it read.

use std::time::{Duration, Instant};

/// Longest spin before the hash thread parks.
pub const SPIN: Duration = Duration::from_millis(2);

/// Whether the next wait spins first.
#[derive(Debug)]
pub struct WaitPolicy {
    spin: bool,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        // The first buffers of a PATCH come back to back: start spinning.
        Self { spin: true }
    }
}

impl WaitPolicy {
    /// Until when a wait starting at `now` spins (`None`: park at once).
    pub fn spin_until(&self, now: Instant) -> Option<Instant> {
        self.spin.then(|| now + SPIN)
    }

    /// A wait that started at `started` ended at `now` with a buffer (`got`) or without one
    /// (the spin ran out): spin next time only if the gap was short.
    pub fn waited(&mut self, started: Instant, now: Instant, got: bool) {
        self.spin = got && now.saturating_duration_since(started) <= SPIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_while_buffers_come_quickly_and_stops_once_a_spin_runs_out() {
        let t0 = Instant::now();
        let mut p = WaitPolicy::default();
        assert_eq!(p.spin_until(t0), Some(t0 + SPIN), "a PATCH starts spinning");
        // A buffer within the spin: go on spinning.
        p.waited(t0, t0 + Duration::from_micros(300), true);
        assert!(p.spin_until(t0).is_some());
        // The spin ran out: the next wait parks at once.
        p.waited(t0, t0 + SPIN, false);
        assert_eq!(p.spin_until(t0), None);
        // A parked wait that took long: still no spin.
        p.waited(t0, t0 + Duration::from_millis(40), true);
        assert_eq!(p.spin_until(t0), None);
        // A parked wait that was short again (the client caught up): spin again.
        p.waited(t0, t0 + Duration::from_micros(500), true);
        assert_eq!(p.spin_until(t0 + SPIN), Some(t0 + 2 * SPIN));
    }
}
