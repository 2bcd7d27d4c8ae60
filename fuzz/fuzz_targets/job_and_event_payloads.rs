//! Payloads read from Redis (jobs, live events): decoding never panics, what decodes encodes
//! back to the same value, and any sequence of decoded events applied to a live rendition
//! leaves it renderable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::job::TranscodeJob;
use ringcast_proto::live::{LiveConfig, LiveEvent, LiveRendition, PlaylistOpts};

fuzz_target!(|text: &str| {
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        if let Ok(job) = TranscodeJob::from_json(first) {
            assert_eq!(TranscodeJob::from_json(&job.to_json()).ok(), Some(job));
        }
    }
    let mut rendition: Option<LiveRendition> = None;
    for line in text.lines().take(200) {
        let Ok(event) = LiveEvent::from_json(line) else {
            continue;
        };
        assert_eq!(LiveEvent::from_json(&event.to_json()).ok().as_ref(), Some(&event));
        match rendition.as_mut() {
            None => rendition = LiveRendition::new(LiveConfig::default(), &event).ok(),
            Some(r) => {
                let _ = r.apply(event);
            }
        }
        if let Some(r) = &rendition {
            let _ = r.playlist(&PlaylistOpts::default()).render();
        }
    }
});
