//! HLS playlists (the edge's HTTP origin, the load generator's players): the parsers never
//! panic, and a parsed playlist renders to text that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::playlist::{is_master, parse_master, parse_media};

fuzz_target!(|text: &str| {
    let _ = is_master(text);
    if let Ok(m) = parse_master(text) {
        let _ = m.validate();
        let again = parse_master(&m.render());
        assert!(again.is_ok(), "rendered master does not parse: {again:?}");
    }
    if let Ok(p) = parse_media(text) {
        let _ = p.validate();
        let rendered = p.render();
        let again = parse_media(&rendered);
        assert!(again.is_ok(), "rendered media playlist does not parse: {again:?}");
    }
});
