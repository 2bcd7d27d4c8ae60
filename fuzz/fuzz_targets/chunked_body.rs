//! Chunked bodies (live pushes): the decoder never panics, and the payload does not depend on
//! how the bytes were split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::http::chunked::ChunkedDecoder;

fn decode(data: &[u8], step: usize) -> (Result<Vec<u8>, ()>, bool) {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for piece in data.chunks(step.max(1)) {
        pending.extend_from_slice(piece);
        match d.decode(&pending, &mut out) {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(_) => return (Err(()), d.is_done()),
        }
        if d.is_done() {
            break;
        }
    }
    (Ok(out), d.is_done())
}

fuzz_target!(|input: (u8, &[u8])| {
    let (step, data) = input;
    let whole = decode(data, data.len());
    let split = decode(data, usize::from(step % 17) + 1);
    // A body that decodes completely in one read decodes to the same bytes in small reads.
    if let ((Ok(a), true), (Ok(b), true)) = (&whole, &split) {
        assert_eq!(a, b);
    }
    if whole.0.is_err() && whole.1 {
        panic!("an error after the end");
    }
});
