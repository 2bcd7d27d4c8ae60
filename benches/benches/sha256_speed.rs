//! SHA-256 of 1 GiB on one thread, fed in 1 MiB pieces as the ingest's hash thread is fed
//! (`ingest/src/tus/digests.rs`): the bound SHA-256 puts on one upload's receive rate. sha2
//! (the ingest's; SHA-NI detected at run time) against ring (OpenSSL's perlasm, also SHA-NI).
//! The OpenSSL reference is `openssl speed -evp sha256 -bytes 1048576`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::Digest as _;

const TOTAL: usize = 1024 * 1024 * 1024;
const PIECE: usize = 1024 * 1024;

fn bench(c: &mut Criterion) {
    // Distinct bytes for the whole GiB: the hash streams from memory as it does in the ingest.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..TOTAL / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    assert_eq!(
        sha2::Sha256::digest(&data[..PIECE]).as_slice(),
        ring::digest::digest(&ring::digest::SHA256, &data[..PIECE]).as_ref(),
        "both compute the same digest"
    );
    let mut g = c.benchmark_group("sha256_1gib");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("sha2", |b| {
        b.iter(|| {
            let mut h = sha2::Sha256::new();
            for piece in data.chunks(PIECE) {
                h.update(piece);
            }
            h.finalize()
        })
    });
    g.bench_function("ring", |b| {
        b.iter(|| {
            let mut h = ring::digest::Context::new(&ring::digest::SHA256);
            for piece in data.chunks(PIECE) {
                h.update(piece);
            }
            h.finish()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
