//! The idle timeout of a keep-alive connection with one timer per connection instead of one per
//! read.
//!
//! Why: `monoio::time::timeout` around every read creates a timer entry, inserts it into the
//! wheel, reads the clock and removes the entry again when the read wins — per request. Timers
//! were ≈5 % of an edge worker on 1 KiB hits (perf, issue 16). Here the connection keeps one
//! `Sleep`; a wait only reads the kernel's coarse monotonic clock (vDSO, no TSC read) and polls
//! that sleep. When it fires, the wait checks how long *this* read has actually waited and, if
//! less than the timeout, re-arms the sleep for the rest — so a busy connection re-arms once
//! per timeout period, not once per request, and an idle one is still closed after the timeout
//! (give or take the coarse clock's few milliseconds).
//!
//! The sleep is polled only when it may have fired (the coarse clock within [`SLACK`] of its
//! deadline) or to register the task's waker after it was armed: polling it once per read
//! was ≈0.25 µs per LL-HLS viewer-part (perf, issue 16), spent finding it not due. Its waker
//! stays registered between waits (monoio keeps the first one, and a connection's waits all
//! run in its one task), so a fire is never missed: it wakes the task, and by then the coarse
//! clock (at most one tick behind the precise one the sleep was armed on) is within the slack.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use monoio::time::{Instant, Sleep};

/// How long before its deadline (on the coarse clock) the sleep is polled: more than a tick
/// of the coarse clock, far less than any idle timeout.
const SLACK: Duration = Duration::from_millis(50);

/// One connection's idle timer (see the module docs).
#[derive(Default)]
pub(crate) struct IdleTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    /// The coarse clock's reading at or before which the sleep fires.
    fires_at: Duration,
    /// The sleep was polled since it was armed (its waker is registered).
    registered: bool,
}

impl IdleTimer {
    /// `fut`'s output, or `None` once it has waited `idle` without completing (`fut` is then
    /// dropped, cancelling its I/O).
    pub(crate) async fn wait<F: Future>(&mut self, idle: Duration, fut: F) -> Option<F::Output> {
        let started = coarse_now();
        let Self {
            sleep,
            fires_at,
            registered,
        } = self;
        let sleep = sleep.get_or_insert_with(|| {
            *fires_at = started + idle;
            *registered = false;
            Box::pin(monoio::time::sleep(idle))
        });
        let mut fut = std::pin::pin!(fut);
        let mut first = true;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            // Not due and its waker registered: nothing to look at (the first poll uses the
            // clock read at the start; later ones, after a wake-up, read it again).
            let now = if std::mem::take(&mut first) {
                started
            } else {
                coarse_now()
            };
            if *registered && now + SLACK < *fires_at {
                return Poll::Pending;
            }
            // The sleep may have been armed by an earlier wait: it only says "look again".
            while sleep.as_mut().poll(cx).is_ready() {
                let now = coarse_now();
                let waited = now.saturating_sub(started);
                if waited >= idle {
                    return Poll::Ready(None);
                }
                *fires_at = now + (idle - waited);
                sleep.as_mut().reset(Instant::now() + (idle - waited));
            }
            *registered = true;
            Poll::Pending
        })
        .await
    }
}

/// The kernel's coarse monotonic clock (vDSO, ticks of a few milliseconds).
fn coarse_now() -> Duration {
    crate::date::coarse_clock(libc::CLOCK_MONOTONIC_COARSE).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_wait_that_completes_in_time_gives_its_output() {
        run(async {
            let mut timer = IdleTimer::default();
            for i in 0..3 {
                let fut = async move {
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    i
                };
                assert_eq!(timer.wait(Duration::from_millis(500), fut).await, Some(i));
            }
        });
    }

    #[test]
    fn each_wait_gets_the_whole_timeout_though_the_timer_was_armed_earlier() {
        run(async {
            let idle = Duration::from_millis(200);
            let mut timer = IdleTimer::default();
            // Arms the timer now, for `idle` from now.
            assert_eq!(timer.wait(idle, async { 1 }).await, Some(1));
            monoio::time::sleep(Duration::from_millis(150)).await;
            // This wait starts 150 ms into the timer's period and needs 120 ms: the timer fires
            // during it and must be re-armed, not end it.
            let slow = async {
                monoio::time::sleep(Duration::from_millis(120)).await;
                2
            };
            assert_eq!(timer.wait(idle, slow).await, Some(2));
        });
    }

    #[test]
    fn a_wait_that_skipped_the_not_yet_due_sleep_still_ends_after_its_timeout() {
        run(async {
            let idle = Duration::from_millis(300);
            let mut timer = IdleTimer::default();
            // A wait that is pending once: the sleep is armed and its waker registered.
            let short = async {
                monoio::time::sleep(Duration::from_millis(5)).await;
                1
            };
            assert_eq!(timer.wait(idle, short).await, Some(1));
            monoio::time::sleep(Duration::from_millis(100)).await;
            // This wait starts far from the sleep's deadline (it does not poll the sleep),
            // and never completes: the sleep's fire must still reach it, and it must end a
            // whole timeout after its own start, not at the sleep's first deadline.
            let begun = std::time::Instant::now();
            let never = std::future::pending::<()>();
            let ended = monoio::time::timeout(Duration::from_secs(5), timer.wait(idle, never))
                .await
                .expect("the idle timer ended the wait");
            assert_eq!(ended, None);
            let took = begun.elapsed();
            assert!(took >= Duration::from_millis(280), "{took:?}");
            assert!(took < Duration::from_millis(2000), "{took:?}");
        });
    }

    #[test]
    fn a_wait_longer_than_the_timeout_ends_after_it() {
        run(async {
            let idle = Duration::from_millis(100);
            let mut timer = IdleTimer::default();
            let begun = std::time::Instant::now();
            let never = std::future::pending::<()>();
            assert_eq!(timer.wait(idle, never).await, None);
            let took = begun.elapsed();
            assert!(took >= Duration::from_millis(90), "{took:?}");
            assert!(took < Duration::from_millis(1000), "{took:?}");
        });
    }
}
