//! The ingest's container sniffing runs on the first bytes of every upload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::container;

fuzz_target!(|data: &[u8]| {
    if let Some(c) = container::detect(data) {
        assert!(!c.ffmpeg_format().is_empty());
    }
});
