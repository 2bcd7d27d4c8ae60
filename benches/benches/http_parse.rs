//! Criterion bench of the HTTP/1.1 request-head parser on requests an HLS player sends.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_proto::http::{parse_request, Limits};

const SEGMENT_GET: &[u8] = b"GET /v/Zk3x9Qm2/1/720p/seg42.m4s HTTP/1.1\r\nHost: edge.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nOrigin: https://player.example\r\nConnection: keep-alive\r\n\r\n";
const BLOCKING_RELOAD: &[u8] = b"GET /v/Zk3x9Qm2/1/720p/index.m3u8?_HLS_msn=1234&_HLS_part=2 HTTP/1.1\r\nHost: edge.example\r\nAccept: */*\r\n\r\n";

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("http_parse");
    for (name, req) in [
        ("segment_get", SEGMENT_GET),
        ("blocking_reload", BLOCKING_RELOAD),
    ] {
        g.throughput(Throughput::Bytes(req.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| parse_request(std::hint::black_box(req), &limits))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
