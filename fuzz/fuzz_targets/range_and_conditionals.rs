//! `Range`, `If-Range`, the four conditional headers, HTTP dates and `Accept-Encoding` as a
//! client sends them: no panics, and a satisfiable range always lies inside the object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::http::conditional::{self, Conditions, Validators};
use ringcast_proto::http::range::{self, RangeOutcome};
use ringcast_proto::http::{date, encoding};

fuzz_target!(|input: (u64, &str)| {
    let (len, text) = input;
    let len = len % (1 << 40);
    let mut fields = text.split('\n');
    let mut next = || fields.next();
    let range_header = next();
    let outcome = range::evaluate(range_header, len);
    if let RangeOutcome::Partial { start, end } = outcome {
        assert!(start <= end && end < len, "{start}-{end} outside {len}");
    }
    let _ = (outcome.span(len), outcome.content_range(len), outcome.status());

    let validators = Validators {
        etag: "\"abc\"",
        last_modified: Some(1_700_000_000),
    };
    let conditions = Conditions {
        if_match: next(),
        if_none_match: next(),
        if_modified_since: next(),
        if_unmodified_since: next(),
    };
    let _ = conditional::evaluate(&conditions, &validators);
    let _ = conditional::if_range_allows(next(), &validators);
    if let Some(d) = next() {
        if let Some(secs) = date::parse(d) {
            // What we format we parse back.
            let again = date::format(secs);
            assert_eq!(date::parse(&again), Some(secs), "{again}");
        }
    }
    let _ = encoding::accepts_gzip(next());
});
