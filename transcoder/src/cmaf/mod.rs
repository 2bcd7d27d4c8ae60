//! Turning ffmpeg's fragmented CMAF into published parts and segments, shared by live and
//! progressive VOD: the [`cutter`] splits a rendition's byte stream into init, parts and
//! segments; the [`announcer`] decides, sans-IO, what to upload and which events to announce
//! for each cut; [`events`] writes those events to the rendition's Redis stream; [`names`]
//! holds the file names they agree on.

pub mod announcer;
pub mod cutter;
pub mod events;
pub mod names;
