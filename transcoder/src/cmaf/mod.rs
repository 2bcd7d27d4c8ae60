//! Turning ffmpeg's fragmented CMAF into published parts and segments, shared by live and
//! progressive VOD: the [`cutter`] splits a rendition's byte stream into init, parts and
//! segments; the [`announcer`] decides, sans-IO, what to upload and which events to announce
//! for each cut (written to the rendition's Redis stream by
//! `ringcast_infra::live_events::EventPublisher`); [`names`] holds the file names they agree on.

pub mod announcer;
pub mod cutter;
pub mod names;
