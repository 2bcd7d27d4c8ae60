//! Fleet purge messages as any Redis client could publish them: parsing never panics, and what
//! parses is a message an edge may apply (every item within its bounds) that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::purge::{PurgeMessage, PurgeMessageError};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = PurgeMessage::parse(data) {
        assert!(msg.validate().is_ok());
        // Serialized it may grow past the byte bound (omitted lists are written out), never
        // fail otherwise.
        match msg.to_json() {
            Ok(json) => assert_eq!(PurgeMessage::parse(json.as_bytes()), Ok(msg)),
            Err(e) => assert!(matches!(e, PurgeMessageError::TooLarge(_)), "{e}"),
        }
    }
});
