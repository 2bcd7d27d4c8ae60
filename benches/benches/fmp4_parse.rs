//! Criterion bench of the fMP4 reader on real ffmpeg CMAF output (a 360p30 H.264 + AAC init
//! segment and one 0.5 s part, in `benches/fixtures/`): what the packager does per fragment.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_proto::fmp4::{parse_fragment, parse_init, BoxSplitter};

const INIT: &[u8] = include_bytes!("../fixtures/init_360p.mp4");
const PART: &[u8] = include_bytes!("../fixtures/part_360p.m4s");

fn bench(c: &mut Criterion) {
    let init = parse_init(INIT).expect("fixture init parses");
    assert!(parse_fragment(PART, &init).is_ok(), "fixture part parses");
    let mut g = c.benchmark_group("fmp4");
    g.throughput(Throughput::Bytes(INIT.len() as u64));
    g.bench_function("parse_init", |b| {
        b.iter(|| parse_init(std::hint::black_box(INIT)))
    });
    g.throughput(Throughput::Bytes(PART.len() as u64));
    g.bench_function("parse_fragment", |b| {
        b.iter(|| parse_fragment(std::hint::black_box(PART), &init))
    });
    // Splitting a stream into boxes as it arrives from the ffmpeg pipe in 64 KiB reads.
    g.bench_function("split_boxes_64k_reads", |b| {
        b.iter(|| {
            let mut s = BoxSplitter::new();
            let mut n = 0;
            for chunk in [INIT, PART].concat().chunks(64 * 1024) {
                s.push(chunk);
                while let Ok(Some(_)) = s.next_box() {
                    n += 1;
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
