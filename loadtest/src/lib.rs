//! Client-side tools for driving ringcast from outside, the way users and players do.
//!
//! - [`tus_client`]: a resumable tus 1.0 upload client (creation + PATCH in chunks, resumes
//!   after network errors with HEAD), used by `scripts/demo`, the end-to-end tests and, later,
//!   the upload swarm.
//! - [`upload_swarm`]: N tus clients uploading back to back, with latency and throughput.
//! - [`video_status`]: polls the ingest's `GET /v1/videos/{id}` until the transcode finishes.
//!
//! - [`swarm`] / [`player`]: the viewer swarm: N simulated HLS players (VOD pacing, LL-HLS
//!   blocking reloads and parts) with latency, stall and live-latency measurements ([`stats`]),
//!   second by second ([`series`]), drawn as an SVG report by [`plot`].

pub mod http_client;
pub mod player;
pub mod plot;
pub mod report;
pub mod series;
pub mod stats;
pub mod swarm;
pub mod tus_client;
pub mod upload_swarm;
pub mod url;
pub mod video_status;
