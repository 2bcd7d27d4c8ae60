//! Request heads as any client can send them: parsing never panics, never claims more bytes
//! than it was given, and what it accepts is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::http::{parse_request, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(Some((head, used))) = parse_request(data, &limits) {
        assert!(used <= data.len());
        assert!(head.target.len() <= limits.max_target_len);
        assert!(head.headers.len() <= limits.max_headers);
        // Framing is one of the two, never both (request smuggling).
        assert!(!(head.chunked && head.content_length.is_some()));
        let _ = (head.path(), head.query(), head.body_len());
        // HTTP/1.0 never carries Transfer-Encoding past the parser.
        if head.version_minor == 0 {
            assert!(!head.chunked);
        }
    }
    // Feeding the same bytes one at a time gives the same verdict at the end.
    let mut last = None;
    for end in [data.len() / 2, data.len()] {
        last = Some(parse_request(&data[..end], &limits).map(|r| r.map(|(_, n)| n)));
    }
    if let Some(Ok(Some(n))) = last {
        assert!(n <= data.len());
    }
});
