//! tus request headers: `Upload-Metadata` (round trip through the encoder), offsets, lengths,
//! `Tus-Resumable`, the PATCH content type, and the extensions' `Upload-Checksum`,
//! `Upload-Concat` and `Upload-Defer-Length`.
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
    if let Ok(Some(c)) = tus::checksum::parse_checksum(Some(text)) {
        assert_eq!(c.digest.len(), c.algorithm.digest_len());
    }
    if let Ok(Some(tus::concat::Concat::Final(ids))) = tus::concat::parse_concat(Some(text)) {
        assert!(!ids.is_empty() && ids.len() <= tus::concat::MAX_PARTS);
        assert!(ids.iter().all(|id| ringcast_proto::keys::is_valid_id(id)));
    }
    if let Ok(Some(l)) = tus::parse_creation_length(None, Some(text), max) {
        assert!(l <= max);
    }
    if let Ok(Some(l)) = tus::parse_patch_length(Some(text), None, max / 2, max) {
        assert!(l <= max && l >= max / 2);
    }
});
