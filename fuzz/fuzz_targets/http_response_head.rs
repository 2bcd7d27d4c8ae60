//! Origin response heads (the edge's HTTP origin, the load generator): no panics, the head
//! length stays within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::http::parse_response_head;

fuzz_target!(|input: (bool, &[u8])| {
    let (head_request, data) = input;
    let mut seen = 0usize;
    if let Ok(Some(parsed)) = parse_response_head(data, head_request, |_, _| seen += 1) {
        assert!(parsed.head_len <= data.len());
    }
});
