//! ringcast's transcoder: VOD workers take jobs from the Redis streams
//! `rc:jobs:{high,normal,low}`, live slots from `rc:jobs:live` (consumer group `transcoders`,
//! through `ringcast_infra::queue::Consumer`; see `worker::Lane`) and turn them into
//! HLS in the object store. A VOD job is probed with ffprobe, gets an H.264/AAC ladder
//! (2160p…360p, never upscaled) and ONE ffmpeg that decodes once and writes every rendition as
//! fragmented CMAF into its own FIFO; Rust cuts those streams into parts and segments, uploads
//! them while ffmpeg still runs and announces them (the version is playable as an EVENT
//! playlist), then writes `index.m3u8` per rendition, the versioned master and finally the
//! video's current master. A live job pulls the ingest's MPEG-TS and runs the same cutter and
//! announcer in real time. Job state and progress go to `rc:job:{id}`; bad input is
//! dead-lettered at once, transient failures are retried, and jobs abandoned at shutdown are
//! reclaimed by other workers.
//!
//! The crate owns the ffmpeg commands, the CMAF cutting and announcing, the packaging and
//! publication of playlists and the job loop; the queue consumer, the object store and config
//! loading come from `ringcast-infra`, protocol types (jobs, keys, playlists, fMP4 boxes,
//! events) from `ringcast-proto`.
//!
//! Module map:
//! - [`worker`]: the job loop of one worker (claim, heartbeat, retries, state, ack or dead
//!   letter); [`metrics`]: `/metrics`, `/healthz`, `/readyz` ([`metrics::jobs`]: outcomes,
//!   processing and pickup histograms, busy workers; [`metrics::queue`]: the queue's gauges
//!   read from Redis at scrape time, readiness); [`jobs_cli`]: `ringcast-transcoder jobs …`.
//! - [`pipeline`]: one job. [`pipeline::vod`] and [`pipeline::live`] run a job,
//!   [`pipeline::outcome`] is what they return and how they are stopped,
//!   [`pipeline::packager`] runs a rendition's cuts and uploads ([`pipeline::rendition`]: what
//!   it produced and where it goes), [`pipeline::early_master`] and
//!   [`pipeline::publish`] write the playlists, [`pipeline::work_dir`] is the scratch directory.
//! - [`cmaf`]: fragmented CMAF to parts, segments and events ([`cmaf::cutter`],
//!   [`cmaf::announcer`], [`cmaf::names`]), used by live and VOD; the events go to Redis
//!   through `ringcast_infra::live_events`.
//! - [`ffmpeg`]: input options ([`ffmpeg::input`], the hostile-input guard), the VOD and live
//!   commands ([`ffmpeg::args`]) from one per-rung builder ([`ffmpeg::rung`]), the process
//!   ([`ffmpeg::run`]), named pipes ([`ffmpeg::fifo`]) and ffprobe ([`ffmpeg::probe`]).
//! - [`trace`]: the running job's trace context (task-local), for its `start` events.
//! - [`ladder`]: rung selection; [`config`]: the TOML config and its `[live]` section
//!   ([`config::live`]); [`error`]: [`TranscodeError`].
//!
//! Dependencies point one way: `worker` → `pipeline` → `cmaf` and `ffmpeg`; no two files
//! import each other (shared types sit in their own module, e.g. `pipeline::outcome`,
//! `cmaf::names`, `ffmpeg::rung::X264_PRESETS`).

pub mod cmaf;
pub mod config;
pub mod error;
pub mod ffmpeg;
pub mod jobs_cli;
pub mod ladder;
pub mod metrics;
pub mod pipeline;
pub mod trace;
pub mod worker;

pub use config::TranscoderConfig;
pub use error::TranscodeError;
