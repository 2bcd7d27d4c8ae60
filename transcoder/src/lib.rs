//! ringcast's VOD transcoder: workers take jobs from the Redis streams `rc:jobs:{high,normal,low}`
//! (consumer group `transcoders`), probe the source with ffprobe, pick an H.264/AAC ladder
//! (2160p…360p, never upscaled), run ONE ffmpeg per job that decodes once and writes every
//! rendition as fragmented CMAF into its own FIFO, and package those streams in Rust into HLS:
//! `init.mp4` + `seg{msn}.m4s` uploaded while ffmpeg still runs, then `index.m3u8` per
//! rendition, the versioned master and finally the video's current master. Job state and
//! progress go to `rc:job:{id}`; bad input is dead-lettered at once, transient failures are
//! retried, and jobs abandoned at shutdown are reclaimed by other workers.
//!
//! Module map, in pipeline order: [`config`], [`probe`] (ffprobe JSON), [`ladder`] (rung
//! selection), [`ffmpeg_cmd`] (argument list), [`fifo`] (named pipes and reader threads),
//! [`ffmpeg_run`] (ffmpeg-sidecar process and progress), [`packager`] (CMAF → segments,
//! ISO/IEC 14496-12 boxes via `ringcast_proto::fmp4`), [`publish`] (RFC 8216 playlists),
//! [`pipeline`] (one attempt), [`worker`] (job loop, retries, state), [`job_source`] (stream reads
//! and XAUTOCLAIM of abandoned jobs), [`metrics`] (`/metrics`, `/healthz`), [`error`].

pub mod config;
pub mod error;
pub mod ffmpeg_cmd;
pub mod ffmpeg_run;
pub mod fifo;
pub mod job_source;
pub mod ladder;
pub mod live_announcer;
pub mod live_config;
pub mod live_cutter;
pub mod live_events;
pub mod live_pipeline;
pub mod metrics;
pub mod packager;
pub mod pipeline;
pub mod probe;
pub mod publish;
pub mod work_dir;
pub mod worker;

pub use config::TranscoderConfig;
pub use error::TranscodeError;
