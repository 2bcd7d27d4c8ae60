//! LL-HLS delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) from playlist requests:
//! parsing and the cache key derived from them never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::live::blocking_reload::{cache_key_for, ReloadQuery};

fuzz_target!(|query: &str| {
    if let Ok(q) = ReloadQuery::parse(query) {
        // A part without a media sequence number is not a valid request.
        if q.part.is_some() {
            assert!(q.msn.is_some());
        }
        let _ = q.is_blocking();
        let _ = cache_key_for("/v/a/1/720p/index.m3u8", &q);
    }
});
