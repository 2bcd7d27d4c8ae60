//! Config files and `RINGCAST_*` environment overrides of the three services: parsing and
//! validation never panic (no overflow in unit conversions, no unwrap on odd values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_edge::{EdgeConfig, Overrides};
use ringcast_ingest::IngestConfig;
use ringcast_transcoder::TranscoderConfig;

fuzz_target!(|input: (&str, &str, &str)| {
    let (text, env_name, env_value) = input;
    if let Ok(cfg) = toml::from_str::<EdgeConfig>(text) {
        let _ = cfg.validate();
    }
    if let Ok(cfg) = toml::from_str::<IngestConfig>(text) {
        let _ = cfg.validated();
    }
    if let Ok(cfg) = toml::from_str::<TranscoderConfig>(text) {
        let _ = cfg.validate();
    }
    // One environment override on top of the defaults (names map to nested fields by `__`).
    let env = vec![(format!("RINGCAST_EDGE_{env_name}"), env_value.to_string())];
    let _ = EdgeConfig::load_from(None, env, &Overrides::default());
});
