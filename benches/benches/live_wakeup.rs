//! Criterion bench of the live wake-up path of the edge: a follower publishes a new state on
//! another thread (as the tokio side runtime does), and a request held on a monoio core
//! (`CoreRendition::wait_change`) is woken by the core's relay task. The figure is the time from
//! the publish to the woken request, per driver.
//!
//! It replaces the p99 < 20 ms assertion the edge's live tests used to make: how fast the
//! wake-up is depends on the machine, so it is recorded here; the tests check that the
//! announcement is what wakes the request. End to end under load: `scripts/bench-live`.

use std::future::Future;
use std::pin::pin;
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_edge::live::core_view::subscribe;
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

fn bench(c: &mut Criterion) {
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
        b.iter_custom(|iters| {
            monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build()
                .expect("runtime")
                .block_on(wake_ups(iters))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
