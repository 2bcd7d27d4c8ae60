//! CMCD data as players (or anyone) send it: the `CMCD-Request` header and the `CMCD` query
//! parameter never panic, and a resolved next-object path never leaves the current video.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::cmcd;

const CURRENT: &str = "/v/vid/1/720p/seg4.m4s";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for nor in [
        cmcd::next_object(Some(text), None),
        cmcd::next_object(None, Some(text)),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(path) = cmcd::resolve(CURRENT, &nor) {
            assert!(path.starts_with("/v/vid/") && path.len() > "/v/vid/".len(), "{path}");
            assert!(!path.split('/').any(|s| s == ".." || s == "."), "{path}");
            assert_ne!(path, CURRENT);
        }
    }
});
