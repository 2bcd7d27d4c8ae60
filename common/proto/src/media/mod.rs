//! What a source video is, as far as ffprobe tells, and what it may be.
//!
//! - [`input`]: the input options every ffprobe and ffmpeg run on an uploaded source uses (forced
//!   demuxer, `file` protocol only), and the bounded ffprobe command.
//! - [`probe`]: ffprobe's JSON output turned into a [`probe::ProbeInfo`] summary.
//! - [`limits`]: the configured [`limits::MediaLimits`] and the check of a summary against them,
//!   shared by the ingest (before an upload is accepted) and the transcoder (before a job
//!   runs), plus the output frame-rate cap.
//!
//! Running the process is the services' business (the transcoder on tokio, the ingest on its
//! side runtime); everything here is pure.

pub mod input;
pub mod limits;
pub mod probe;
