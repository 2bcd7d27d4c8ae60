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

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use monoio::time::{Instant, Sleep};

/// One connection's idle timer (see the module docs).
#[derive(Default)]
pub(crate) struct IdleTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    /// `fut`'s output, or `None` once it has waited `idle` without completing (`fut` is then
    /// dropped, cancelling its I/O).
    pub(crate) async fn wait<F: Future>(&mut self, idle: Duration, fut: F) -> Option<F::Output> {
        let started = coarse_now();
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(monoio::time::sleep(idle)));
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            // The sleep may have been armed by an earlier wait: it only says "look again".
            while sleep.as_mut().poll(cx).is_ready() {
                let waited = coarse_now().saturating_sub(started);
                if waited >= idle {
                    return Poll::Ready(None);
                }
                sleep.as_mut().reset(Instant::now() + (idle - waited));
            }
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
