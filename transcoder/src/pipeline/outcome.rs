//! What an attempt hands back to the worker, and how the worker tells a running attempt to
//! stop. Shared by the VOD and the live pipeline, so neither has to import the other.

use crate::pipeline::rendition::RenditionOutput;

/// How the process is being asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Keep taking jobs.
    Running,
    /// Take no new jobs; let the current one finish.
    Draining,
    /// Give the current job up now (it stays unacknowledged and is delivered again).
    Abandon,
}

/// What a successful attempt produced.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub renditions: Vec<RenditionOutput>,
    /// Source duration in seconds (0 when unknown).
    pub media_seconds: f64,
    /// Wall time of the ffmpeg run.
    pub transcode_seconds: f64,
}
