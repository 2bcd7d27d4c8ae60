//! Signed playback URLs: forged tokens never verify, and whatever verifies is covered by the
//! prefix it was signed for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::signed_url;

const KEY: &[u8] = b"fuzz-signing-key-0123";
const NOW: u64 = 1_700_000_000;

fuzz_target!(|input: (&str, &str, &str)| {
    let (path, query, prefix) = input;
    if let Ok(inner) = signed_url::verify_path(KEY, path, NOW) {
        assert!(path.ends_with(inner));
    }
    let _ = signed_url::verify_query(KEY, path, Some(query), NOW);
    // A real signature of `prefix` verifies exactly for the paths it covers.
    if !prefix.is_empty() {
        let q = signed_url::signed_query(KEY, prefix, NOW + 60);
        let ok = signed_url::verify_query(KEY, path, Some(&q), NOW).is_ok();
        assert_eq!(ok, signed_url::covers(prefix, path), "{prefix:?} {path:?}");
        if path.starts_with(prefix) && !path.is_empty() {
            let p = signed_url::signed_path(KEY, prefix, NOW + 60, path);
            if let Ok(inner) = signed_url::verify_path(KEY, &p, NOW) {
                assert_eq!(inner, path);
                assert!(signed_url::covers(prefix, inner));
            }
        }
    }
});
