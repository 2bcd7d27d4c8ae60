//! tus request headers: `Upload-Metadata` (round trip through the encoder), offsets, lengths,
//! `Tus-Resumable` and the PATCH content type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::tus;

fuzz_target!(|input: (u64, &str)| {
    let (max, text) = input;
    let mut fields = text.splitn(4, '\n');
    let metadata = fields.next();
    if let Ok(pairs) = tus::parse_metadata(metadata) {
        let borrowed: Vec<(&str, &[u8])> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let again = tus::parse_metadata(Some(&tus::encode_metadata(&borrowed)))
            .expect("what the encoder writes parses");
        assert_eq!(again, pairs);
    }
    let offset = fields.next();
    if let Ok(o) = tus::parse_offset(offset) {
        let _ = tus::check_offset(o, o / 2);
    }
    if let Ok(l) = tus::parse_length(fields.next(), max) {
        assert!(l <= max);
    }
    let _ = tus::check_resumable(fields.next());
    let _ = tus::check_patch_content_type(Some(text));
});
