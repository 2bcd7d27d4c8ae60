//! Criterion bench of the LL-HLS blocking-reload decisions the edge makes per request and per
//! part announcement: parsing the delivery directives, deciding hold / answer / 400 / 503 for
//! a held request when a part lands, and applying the part event itself.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ringcast_proto::live::{decide, Decision, LiveConfig, LiveEvent, LiveRendition, ReloadQuery};

fn started() -> LiveRendition {
    let start = LiveEvent::Start {
        target_duration: 2,
        part_target: 0.5,
        init: "init.mp4".into(),
        started_ms: 1_795_766_400_000,
        part_hold_back: None,
    };
    let mut r = LiveRendition::new(LiveConfig::default(), &start).expect("valid start");
    for msn in 0..10u64 {
        for part in 0..4 {
            r.apply(LiveEvent::Part {
                msn,
                part,
                duration: 0.5,
                independent: part == 0,
            })
            .expect("part");
        }
        r.apply(LiveEvent::SegmentEnd {
            msn,
            duration: 2.0,
            program_date_time_ms: 1_795_766_400_000 + msn * 2000,
        })
        .expect("segment end");
    }
    r
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("live_reload");
    g.bench_function("parse_directives", |b| {
        b.iter(|| {
            ReloadQuery::parse(std::hint::black_box(
                "_HLS_msn=10&_HLS_part=1&_HLS_skip=YES",
            ))
        })
    });
    let state = started();
    let waiting = ReloadQuery::parse("_HLS_msn=10&_HLS_part=1").expect("valid");
    let ready = ReloadQuery::parse("_HLS_msn=9&_HLS_part=3").expect("valid");
    g.bench_function("decide_hold", |b| {
        b.iter(|| decide(&state, &waiting, Duration::from_millis(100)))
    });
    g.bench_function("decide_answer", |b| {
        b.iter(|| decide(&state, &ready, Duration::from_millis(100)))
    });
    // One part announcement: apply the event, then re-decide 100 held requests.
    g.bench_function("apply_part_and_wake_100_waiters", |b| {
        b.iter_batched(
            started,
            |mut s| {
                s.apply(LiveEvent::Part {
                    msn: 10,
                    part: 0,
                    duration: 0.5,
                    independent: true,
                })
                .expect("part");
                (0..100)
                    .filter(|_| decide(&s, &ready, Duration::ZERO) == Decision::Ready)
                    .count()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
