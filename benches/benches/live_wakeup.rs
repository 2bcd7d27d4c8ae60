//! Criterion bench of the live wake-up path of the edge: a follower publishes a new state on
//! another thread (as the tokio side runtime does), and a request held on a monoio core
//! (`CoreRendition::wait_change`) is woken by the core's relay task. The figure is the time from
//! the publish to the woken request, per driver.
//!
//! It replaces the p99 < 20 ms assertion the edge's live tests used to make: how fast the
//! wake-up is depends on the machine, so it is recorded here; the tests check that the
//! announcement is what wakes the request. End to end under load: `scripts/bench-live`.
//!
//! `live_herd`: the CPU side of the same path for a herd — 500 requests held on one view and
//! released by one publish, with the edge's deadline list against a `monoio` timeout per
//! request (how held requests timed out before, docs/BENCHMARKS.md "LL-HLS herd cost").

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_edge::live::core_view::{subscribe, CoreRendition};
use ringcast_edge::live::feed::{Phase, RenditionFeed};
use ringcast_edge::live::keys::RenditionId;

/// Longer than a wake-up ever takes: a wait that times out is a broken bench, not a sample.
const WAIT: Duration = Duration::from_secs(30);

/// `iters` publishes on a publisher thread, each waking one held request; the summed latency.
async fn wake_ups(iters: u64) -> Duration {
    let feed = Arc::new(RenditionFeed::detached(RenditionId {
        video: "bench".into(),
        version: 1,
        rendition: "720p".into(),
    }));
    let (go, go_rx) = mpsc::channel::<()>();
    let (at_tx, published_at) = mpsc::channel::<Instant>();
    let publisher = {
        let feed = Arc::clone(&feed);
        std::thread::spawn(move || {
            while go_rx.recv().is_ok() {
                let now = Instant::now();
                feed.publish(Phase::Pending, now);
                let _ = at_tx.send(now);
            }
        })
    };
    let view = subscribe(feed, Box::new(|_| {}));
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut wait = pin!(view.wait_change(view.feed.gen(), WAIT));
        // The first poll registers the request as a waiter (nothing was published yet).
        let first = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "woken before the publish");
        go.send(()).expect("publisher");
        assert!(wait.await, "timed out instead of being woken");
        let woken = Instant::now();
        let at = published_at.recv().expect("publish time");
        total += woken.saturating_duration_since(at);
    }
    drop(go);
    publisher.join().expect("publisher");
    total
}

/// Held requests of one herd (blocking reloads of one rendition on one core).
const HERD: usize = 500;

/// `iters` herds: [`HERD`] requests held on one core's view, all released by one publish (made
/// on this thread: the relay task wakes them), each through `wait`; the summed time from the
/// first registration to the last woken request. What is compared is the per-request cost of
/// holding and releasing, which the live path pays per viewer-part.
async fn herds<W, F>(iters: u64, wait: W) -> Duration
where
    W: Fn(Rc<CoreRendition>, u64) -> F,
    F: Future<Output = bool> + 'static,
{
    let feed = Arc::new(RenditionFeed::detached(RenditionId {
        video: "bench".into(),
        version: 1,
        rendition: "360p".into(),
    }));
    let view = subscribe(Arc::clone(&feed), Box::new(|_| {}));
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let gen = view.feed.gen();
        let started = Instant::now();
        let held: Vec<_> = (0..HERD)
            .map(|_| monoio::spawn(wait(Rc::clone(&view), gen)))
            .collect();
        // One round of the core's tasks: every request registers.
        monoio::spawn(async {}).await;
        feed.publish(Phase::Pending, Instant::now());
        for h in held {
            assert!(h.await, "timed out instead of being woken");
        }
        total += started.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("live_herd");
    g.throughput(criterion::Throughput::Elements(HERD as u64));
    // The edge's wait: the deadline goes on the view's list (one watchdog per view).
    g.bench_function("hold_and_release_500_deadline_list", |b| {
        b.iter_custom(|iters| {
            on_fusion(herds(iters, |view, gen| async move {
                view.wait_change(gen, WAIT).await
            }))
        })
    });
    // The same wait under a `monoio` timeout of its own per request (what the edge did
    // before: the deadline list then never fires).
    g.bench_function("hold_and_release_500_timer_per_request", |b| {
        b.iter_custom(|iters| {
            on_fusion(herds(iters, |view, gen| async move {
                monoio::time::timeout(WAIT, view.wait_change(gen, WAIT * 2))
                    .await
                    .unwrap_or(false)
            }))
        })
    });
    g.finish();
    wake_bench(c);
}

/// Runs `fut` to completion on a fresh `monoio` fusion runtime with timers.
fn on_fusion<F: std::future::Future>(fut: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime")
        .block_on(fut)
}

fn wake_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("live_wakeup");
    g.bench_function("publish_to_woken_request_legacy", |b| {
        b.iter_custom(|iters| {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("runtime")
                .block_on(wake_ups(iters))
        })
    });
    g.bench_function("publish_to_woken_request_fusion", |b| {
        b.iter_custom(|iters| on_fusion(wake_ups(iters)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
