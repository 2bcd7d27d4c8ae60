//! `TranscoderConfig`: the `ringcast-transcoder` TOML file (see `transcoder.example.toml`),
//! overridable by `RINGCAST_TRANSCODER_*` environment variables (`__` separates sections, e.g.
//! `RINGCAST_TRANSCODER_STORE__BACKEND=s3`) and CLI flags. Defaults run the local demo.

pub mod live;
pub mod previews;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringcast_infra::config::{self, ConfigError, RedisConfig, StoreConfig};
use ringcast_infra::queue::RetentionConfig;
use ringcast_proto::media::limits::MediaLimits;
use serde::{Deserialize, Serialize};

use crate::config::live::LiveTranscodeConfig;
use crate::config::previews::PreviewsConfig;
use crate::ffmpeg::rung::X264_PRESETS;

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "RINGCAST_TRANSCODER_";

/// Everything the transcoder process reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscoderConfig {
    /// Jobs transcoded concurrently by this process (each runs one ffmpeg that uses every core,
    /// so more than 1 mostly helps to overlap downloads and uploads).
    pub workers: usize,
    /// Live jobs run concurrently by this process, in slots of their own: a live job holds its
    /// slot for the whole stream, never a VOD worker, and VOD workers never take live jobs.
    /// 0 runs no live jobs here (a VOD-only host).
    pub live_slots: usize,
    /// Directory for per-job scratch space (source copy, FIFOs); each job gets its own
    /// subdirectory `{job_id}-{uuid}` (`live-{job_id}-{uuid}` for live jobs), removed when the
    /// job ends. At start-up, before any job runs, every directory of that naming scheme left
    /// here by a killed process is removed (other files are left alone, symlinks are not
    /// followed). So each transcoder process needs a `work_dir` of its own: several on one
    /// host must not share one, or a starting process deletes the running jobs of another.
    pub work_dir: PathBuf,
    /// Free bytes (`statvfs` on `work_dir`) that must remain once the job's source has been
    /// downloaded (its size is added when the store knows it); the CMAF output only passes
    /// through FIFOs. With less free, a VOD job is not started: it stays claimed and is checked
    /// again every `retry_backoff_ms` (counted in
    /// `ringcast_transcoder_jobs_deferred_no_space_total`), never dead-lettered for it. Live
    /// jobs, which write no files, are not held back. 0 disables the check.
    pub min_free_bytes: u64,
    /// Target segment duration in seconds; the GOP is `round(segment_seconds x fps)` frames so
    /// every segment starts with a keyframe.
    pub segment_seconds: f64,
    /// CMAF fragment duration in seconds (ffmpeg `-frag_duration`): the future LL-HLS part
    /// duration. `segment_seconds` must be a whole number of parts.
    pub part_seconds: f64,
    /// x264 preset (`ultrafast` … `veryslow`): speed against compression.
    pub preset: String,
    /// ffmpeg binary (a name looked up on PATH, or a path).
    pub ffmpeg_path: PathBuf,
    /// ffprobe binary (a name looked up on PATH, or a path).
    pub ffprobe_path: PathBuf,
    /// Attempts per job for transient failures (object store, Redis, ffmpeg killed) before the
    /// job is marked failed and dead-lettered. Bad input is dead-lettered at the first attempt.
    pub max_attempts: u32,
    /// Back-off before the second attempt in milliseconds; doubles for every further attempt.
    pub retry_backoff_ms: u64,
    /// Seconds ffmpeg may run without its output advancing (frame count or output time) before
    /// it is killed as stalled: a transient failure, retried up to `max_attempts`, then
    /// dead-lettered with "ffmpeg made no progress for N s". Uploads so slow that ffmpeg's
    /// output pipes stay full for that long count as a stall too. A live job waits
    /// `live.input_timeout_secs` longer, so a silent publisher still ends its stream through the
    /// input timeout as before; this only catches an ffmpeg that hangs.
    pub stall_timeout_secs: u64,
    /// Wall-clock limit of a VOD attempt's ffmpeg run, as a multiple of the source's duration
    /// (plus `wall_clock_floor_secs`); past it ffmpeg is killed, the attempt is retried, then the
    /// job dead-lettered with "transcoding took longer than its limit of N s". Not applied to
    /// live jobs (they last as long as the stream) nor to sources of unknown duration.
    pub max_wall_clock_factor: f64,
    /// Fixed seconds added to the wall-clock limit (start-up, very short sources).
    pub wall_clock_floor_secs: u64,
    /// How often (ms) a running job reads its `cancel_requested` flag (`rc:job:{id}`), i.e.
    /// how soon `jobs cancel` stops it. At least 100.
    pub cancel_check_ms: u64,
    /// How long one blocking read of the job streams waits (ms) before checking for shutdown
    /// and for abandoned jobs to reclaim.
    pub job_block_ms: u64,
    /// A job delivered to a consumer that has not touched it for this long (ms) is taken over
    /// by another worker (XAUTOCLAIM): how abandoned jobs and jobs of crashed workers come back.
    /// Running jobs refresh their claim every third of this.
    pub reclaim_idle_ms: u64,
    /// After SIGTERM/SIGINT, how long (ms) a running job may keep going before it is abandoned
    /// (left unacknowledged for another worker). A second signal abandons at once.
    pub shutdown_grace_ms: u64,
    /// Consumer name in the Redis group; worker `i` uses `{consumer_name}-{i}`. Default
    /// `{hostname}-{pid}`.
    pub consumer_name: String,
    /// Address of the `/metrics` and `/healthz` HTTP endpoint, e.g. `127.0.0.1:9103`; none when
    /// unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Log JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Trace export (`[telemetry]`: `otlp_endpoint`, `service_name`; off by default).
    pub telemetry: ringcast_infra::trace_export::TelemetryConfig,
    /// Object store holding sources and renditions.
    pub store: StoreConfig,
    /// Redis holding the job streams and job state.
    pub redis: RedisConfig,
    /// Live jobs: part/segment durations, renditions, event stream trimming.
    pub live: LiveTranscodeConfig,
    /// Media limits a VOD source must stay within (`[limits]`, the same keys and defaults as
    /// the ingest's, which checks them before it queues a job). A probed source over one is a
    /// permanent error: dead-lettered at once, its job `error` naming the value and the limit.
    pub limits: MediaLimits,
    /// What the queue keeps: job stream trimming, dead-letter stream length, job hash TTL
    /// (`ringcast_infra::queue::retention`).
    pub queue: RetentionConfig,
    /// Poster frame and seek-thumbnail sprites of VOD jobs.
    pub previews: PreviewsConfig,
}

impl Default for TranscoderConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            live_slots: 2,
            work_dir: PathBuf::from(".ringcast/transcoder"),
            min_free_bytes: 1 << 30,
            segment_seconds: 2.0,
            part_seconds: 0.5,
            preset: "veryfast".into(),
            ffmpeg_path: PathBuf::from("ffmpeg"),
            ffprobe_path: PathBuf::from("ffprobe"),
            max_attempts: 3,
            retry_backoff_ms: 1000,
            stall_timeout_secs: 60,
            max_wall_clock_factor: 10.0,
            wall_clock_floor_secs: 120,
            cancel_check_ms: 2000,
            job_block_ms: 2000,
            reclaim_idle_ms: 60_000,
            shutdown_grace_ms: 20_000,
            consumer_name: default_consumer_name(),
            metrics_listen: None,
            log_json: false,
            telemetry: Default::default(),
            store: StoreConfig::default(),
            redis: RedisConfig::default(),
            live: LiveTranscodeConfig::default(),
            limits: MediaLimits::default(),
            queue: RetentionConfig::default(),
            previews: PreviewsConfig::default(),
        }
    }
}

/// `{hostname}-{pid}`: unique per process, readable in `XINFO CONSUMERS`.
fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "transcoder".into());
    format!("{host}-{}", std::process::id())
}

impl TranscoderConfig {
    /// Load from an optional TOML file plus `RINGCAST_TRANSCODER_*` variables, then validate.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let cfg: Self = config::load(path, ENV_PREFIX)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reject values that would make every job fail or the GOP disagree with the parts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.workers == 0 {
            return invalid("workers must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1".into());
        }
        if !(self.segment_seconds.is_finite() && self.segment_seconds >= 0.1) {
            return invalid(format!(
                "segment_seconds {} must be at least 0.1",
                self.segment_seconds
            ));
        }
        if !(self.part_seconds.is_finite()
            && self.part_seconds >= 0.05
            && self.part_seconds <= self.segment_seconds)
        {
            return invalid(format!(
                "part_seconds {} must be between 0.05 and segment_seconds",
                self.part_seconds
            ));
        }
        let parts = self.segment_seconds / self.part_seconds;
        if (parts - parts.round()).abs() > 1e-6 {
            return invalid(format!(
                "segment_seconds {} is not a whole number of part_seconds {}",
                self.segment_seconds, self.part_seconds
            ));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return invalid(format!(
                "preset {:?} is not one of {}",
                self.preset,
                X264_PRESETS.join(", ")
            ));
        }
        if self.consumer_name.is_empty() {
            return invalid("consumer_name must not be empty".into());
        }
        if self.stall_timeout_secs == 0 {
            return invalid("stall_timeout_secs must be at least 1".into());
        }
        if !(self.max_wall_clock_factor.is_finite() && self.max_wall_clock_factor > 0.0) {
            return invalid(format!(
                "max_wall_clock_factor {} must be a positive number",
                self.max_wall_clock_factor
            ));
        }
        if self.cancel_check_ms < 100 {
            return invalid("cancel_check_ms must be at least 100".into());
        }
        if self.job_block_ms == 0 || self.reclaim_idle_ms < 1000 {
            return invalid("job_block_ms must be > 0 and reclaim_idle_ms >= 1000".into());
        }
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.queue.validate()?;
        self.live.validate()?;
        self.previews.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let cfg = TranscoderConfig::default();
        cfg.validate().expect("defaults validate");
        assert_eq!(cfg.workers, 1);
        assert_eq!(cfg.live_slots, 2);
        assert_eq!(cfg.segment_seconds, 2.0);
        assert_eq!(cfg.part_seconds, 0.5);
        assert_eq!(cfg.preset, "veryfast");
        assert_eq!(cfg.stall_timeout_secs, 60);
        assert_eq!(
            (cfg.max_wall_clock_factor, cfg.wall_clock_floor_secs),
            (10.0, 120)
        );
        assert!(cfg
            .consumer_name
            .ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn env_overrides_and_unknown_fields() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let cfg: TranscoderConfig = config::load_from(
            None,
            ENV_PREFIX,
            env(&[
                ("RINGCAST_TRANSCODER_WORKERS", "3"),
                ("RINGCAST_TRANSCODER_METRICS_LISTEN", "127.0.0.1:9103"),
                ("RINGCAST_TRANSCODER_STORE__BACKEND", "s3"),
            ]),
        )
        .expect("load");
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.metrics_listen, Some("127.0.0.1:9103".parse().unwrap()));
        let err = config::load_from::<TranscoderConfig>(
            None,
            ENV_PREFIX,
            env(&[("RINGCAST_TRANSCODER_WORKRS", "3")]),
        )
        .expect_err("typo rejected");
        assert!(err.to_string().contains("workrs"), "{err}");
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = [
            TranscoderConfig {
                workers: 0,
                ..Default::default()
            },
            TranscoderConfig {
                part_seconds: 0.3,
                ..Default::default()
            },
            TranscoderConfig {
                part_seconds: 3.0,
                ..Default::default()
            },
            TranscoderConfig {
                preset: "fastest".into(),
                ..Default::default()
            },
            TranscoderConfig {
                max_attempts: 0,
                ..Default::default()
            },
            TranscoderConfig {
                limits: MediaLimits {
                    max_fps: 0.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            // Renditions never exceed 60 fps, live ones neither.
            TranscoderConfig {
                live: LiveTranscodeConfig {
                    fps: 90.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            TranscoderConfig {
                stall_timeout_secs: 0,
                ..Default::default()
            },
            TranscoderConfig {
                max_wall_clock_factor: 0.0,
                ..Default::default()
            },
            TranscoderConfig {
                max_wall_clock_factor: f64::NAN,
                ..Default::default()
            },
            TranscoderConfig {
                cancel_check_ms: 10,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }

    /// The example file must parse and name every field (set or commented out), so it cannot
    /// silently fall behind the struct.
    #[test]
    fn example_file_parses_and_documents_every_field() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcoder.example.toml");
        let text = std::fs::read_to_string(&path).expect("example file");
        let cfg: TranscoderConfig = toml::from_str(&text).expect("example parses");
        cfg.validate().expect("example validates");
        let defaults = toml::to_string(&TranscoderConfig::default()).expect("serialize");
        let table: toml::Table = defaults.parse().expect("parse");
        let mut keys: Vec<String> = Vec::new();
        for (k, v) in &table {
            match v {
                toml::Value::Table(t) => keys.extend(t.keys().cloned()),
                _ => keys.push(k.clone()),
            }
        }
        keys.push("metrics_listen".into());
        for key in keys {
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim();
                l.starts_with(&format!("{key} ="))
            });
            assert!(documented, "{key} missing from transcoder.example.toml");
        }
    }
}
