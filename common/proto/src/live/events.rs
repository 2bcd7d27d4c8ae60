//! Live part events: what the packager XADDs (field [`EVENT_FIELD`], JSON) to
//! `rc:events:{video}:{version}:{rendition}` and every edge tails. Versioned like the job
//! schema ([`crate::job`]): an unknown `v` is rejected, not misread, so producer and consumers
//! can be upgraded independently.
//!
//! Wire shape: one flat JSON object, `{"v":1,"type":"part","msn":3,"part":1,...}`.
//!
//! Order on a stream (enforced by [`crate::live::LiveRendition::apply`]): `start`, then for
//! each segment its parts `0, 1, 2, …` followed by `segment_end`; a `discontinuity` only
//! between segments; `end` last. Re-deliveries of earlier events are harmless.

use serde::{Deserialize, Serialize};

/// Current schema version of [`LiveEvent`].
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Stream entry field holding the JSON event.
pub const EVENT_FIELD: &str = "e";

/// Redis stream of one rendition's live events (DESIGN.md "Storage and keys"; MAXLEN-trimmed
/// by the producer).
pub fn events_stream_key(video: &str, version: u32, rendition: &str) -> String {
    format!("rc:events:{video}:{version}:{rendition}")
}

/// One announcement of the packager about a rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveEvent {
    /// The rendition begins (or is re-announced with the same values, which is harmless; a
    /// packager may repeat it so that a consumer joining a trimmed stream can start).
    Start {
        /// `EXT-X-TARGETDURATION`, whole seconds.
        target_duration: u64,
        /// `PART-TARGET`, seconds.
        part_target: f64,
        /// URI of the init segment (`EXT-X-MAP`), relative to the media playlist.
        init: String,
        /// Unix milliseconds when the stream started; the date of the first segment until its
        /// own `segment_end` says better.
        started_ms: u64,
        /// `PART-HOLD-BACK` seconds when the packager wants more than the default 3 ×
        /// `PART-TARGET` (rfc8216bis §4.4.3.8 minimum); absent otherwise, so events without
        /// it stay readable by edges that predate it (the schema denies unknown fields).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part_hold_back: Option<f64>,
    },
    /// Part `part` of segment `msn` is complete and stored (`part{msn}.{part}.m4s`).
    Part {
        msn: u64,
        part: u32,
        /// Seconds.
        duration: f64,
        /// Starts with a sync sample (`INDEPENDENT=YES`).
        independent: bool,
    },
    /// Segment `msn` is complete and stored (`seg{msn}.m4s`): all its parts were announced.
    SegmentEnd {
        msn: u64,
        /// `EXTINF` seconds.
        duration: f64,
        /// Unix milliseconds of the segment's first sample (`EXT-X-PROGRAM-DATE-TIME`).
        program_date_time_ms: u64,
    },
    /// The publisher reconnected: segment `next_msn` starts a new timeline
    /// (`EXT-X-DISCONTINUITY`). Sent between a `segment_end` and the next segment's parts.
    Discontinuity { next_msn: u64 },
    /// The stream ended after segment `last_msn` (`EXT-X-ENDLIST`).
    End { last_msn: u64 },
}

/// Errors decoding an event payload.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("live event is not valid JSON for this schema: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("live event schema version {0} is not supported (expected {EVENT_SCHEMA_VERSION})")]
    Version(u32),
}

/// Serialization view: the version next to the flattened, tagged event.
#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a LiveEvent,
}

/// First decoding pass: only the version, whatever the rest holds, so that a payload of a
/// newer schema reports [`EventError::Version`] rather than a confusing field error.
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

impl LiveEvent {
    /// The JSON payload, `v` first.
    pub fn to_json(&self) -> String {
        // Strings, integers, booleans and floats cannot fail to serialize (a non-finite float
        // becomes `null`, which decoding then rejects).
        serde_json::to_string(&Envelope {
            v: EVENT_SCHEMA_VERSION,
            event: self,
        })
        .unwrap_or_default()
    }

    /// Decodes a payload, rejecting other schema versions and unknown fields.
    pub fn from_json(s: &str) -> Result<Self, EventError> {
        let VersionOnly { v } = serde_json::from_str(s)?;
        if v != EVENT_SCHEMA_VERSION {
            return Err(EventError::Version(v));
        }
        let mut value: serde_json::Value = serde_json::from_str(s)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("v");
        }
        Ok(serde_json::from_value(value)?)
    }

    /// Short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::Start { .. } => "Start",
            LiveEvent::Part { .. } => "Part",
            LiveEvent::SegmentEnd { .. } => "SegmentEnd",
            LiveEvent::Discontinuity { .. } => "Discontinuity",
            LiveEvent::End { .. } => "End",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_back_exactly() {
        // Found by the job_and_event_payloads fuzz target: without serde_json's float_roundtrip
        // a long decimal parsed to a float one ulp off the one its own output parses to.
        let e = LiveEvent::from_json(
            r#"{"v":1,"type":"part","msn":0,"part":1,"duration":0.4444144444444444444444444444444444444445,"independent":false}"#,
        )
        .expect("decode");
        assert_eq!(LiveEvent::from_json(&e.to_json()).expect("again"), e);
    }

    fn all() -> Vec<LiveEvent> {
        vec![
            LiveEvent::Start {
                target_duration: 2,
                part_target: 0.5,
                init: "init.mp4".into(),
                started_ms: 1_795_766_400_000,
                part_hold_back: None,
            },
            LiveEvent::Part {
                msn: 3,
                part: 1,
                duration: 0.5,
                independent: false,
            },
            LiveEvent::SegmentEnd {
                msn: 3,
                duration: 2.0,
                program_date_time_ms: 1_795_766_406_000,
            },
            LiveEvent::Discontinuity { next_msn: 4 },
            LiveEvent::End { last_msn: 9 },
        ]
    }

    #[test]
    fn roundtrips_every_variant() {
        for e in all() {
            let json = e.to_json();
            assert!(json.starts_with("{\"v\":1,\"type\":"), "{json}");
            assert_eq!(LiveEvent::from_json(&json).expect("decode"), e);
        }
    }

    #[test]
    fn wire_shape_is_flat() {
        let json = LiveEvent::Part {
            msn: 3,
            part: 1,
            duration: 0.5,
            independent: true,
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"v":1,"type":"part","msn":3,"part":1,"duration":0.5,"independent":true}"#
        );
        assert_eq!(
            LiveEvent::Discontinuity { next_msn: 4 }.to_json(),
            r#"{"v":1,"type":"discontinuity","next_msn":4}"#
        );
    }

    #[test]
    fn rejects_other_versions_first() {
        // A future event type under a future version is a version error, not a decode error.
        assert!(matches!(
            LiveEvent::from_json(r#"{"v":2,"type":"ad_break","at":3}"#),
            Err(EventError::Version(2))
        ));
        assert!(matches!(
            LiveEvent::from_json(r#"{"type":"end","last_msn":3}"#),
            Err(EventError::Decode(_))
        ));
    }

    #[test]
    fn rejects_malformed_payloads() {
        for bad in [
            "",
            "null",
            "[1]",
            r#"{"v":1}"#,
            r#"{"v":1,"type":"nope"}"#,
            r#"{"v":1,"type":"end"}"#,
            r#"{"v":1,"type":"end","last_msn":-1}"#,
            r#"{"v":1,"type":"end","last_msn":3,"extra":true}"#,
            r#"{"v":1,"type":"part","msn":1,"part":0,"duration":null,"independent":true}"#,
            r#"{"v":1,"type":"part","msn":1,"part":4294967296,"duration":0.5,"independent":true}"#,
            r#"{"v":"1","type":"end","last_msn":3}"#,
        ] {
            assert!(
                matches!(LiveEvent::from_json(bad), Err(EventError::Decode(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn stream_key_follows_the_design() {
        assert_eq!(events_stream_key("abc", 2, "720p"), "rc:events:abc:2:720p");
    }

    #[test]
    fn kinds() {
        let kinds: Vec<_> = all().iter().map(LiveEvent::kind).collect();
        assert_eq!(
            kinds,
            ["Start", "Part", "SegmentEnd", "Discontinuity", "End"]
        );
    }
}
