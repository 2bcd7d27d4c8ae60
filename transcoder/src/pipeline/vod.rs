//! One attempt at one job: fetch the source, probe it, run the ffmpeg ladder into FIFOs while
//! the packagers upload and announce parts and segments, then publish the playlists.
//!
//! Progressive publication (a VOD playable while it transcodes): before the first event the
//! version becomes an EVENT playlist (`rc:live:{video}:{version}` `playlist_type` = `event`,
//! stale event streams of an earlier attempt dropped); every rendition then announces its
//! parts and segments like a live stream and ends with `end`; the versioned master is written
//! as soon as every rendition has its init segment (estimated `BANDWIDTH`). At the end
//! [`publish`] writes the VOD media playlists, the versioned master with measured bandwidths,
//! and last the video's current master pointer, as before.
//!
//! The same ffmpeg run writes the poster and the thumbnail sprites (three more branches of the
//! ladder's split, [`crate::ffmpeg::previews`]); they are uploaded and recorded
//! ([`previews`]) after the renditions and before [`publish`], so a version is never ready
//! without them, and a job whose previews fail publishes nothing.
//!
//! Failure handling inside an attempt: whichever side fails first stops the other. A packager
//! error kills ffmpeg (nothing else would stop it writing into a pipe nobody reads); an ffmpeg
//! failure closes the pipes so the packagers end. Shutdown in "abandon" mode kills ffmpeg and
//! returns [`TranscodeError::Abandoned`]. The job's scratch directory is removed on every path
//! (a guard's `Drop`), including cancellation.
//!
//! Job control ([`crate::pipeline::watchdog`]): ffmpeg that stalls, outlives the wall-clock
//! limit, or whose job an operator cancels is killed; the packagers and the early master are
//! then stopped and everything the attempt published (objects under `v/{video}/{version}/`, its
//! event streams) is removed before the attempt returns [`TranscodeError::Stalled`],
//! [`TranscodeError::TimedOut`] or [`TranscodeError::Cancelled`]. Nothing of a stopped attempt
//! stays presented as in progress, and the current master is never switched.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{now_ms, TranscodeJob};
use ringcast_proto::keys;
use ringcast_proto::media::limits::output_frame_rate;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::cmaf::announcer::Announcer;
use crate::cmaf::cutter::Targets;
use crate::config::TranscoderConfig;
use crate::error::TranscodeError;
use crate::ffmpeg::args::{self, EncodeSettings, Previews};
use crate::ffmpeg::fifo::{self, Fifo};
use crate::ffmpeg::input::SourceFile;
use crate::ffmpeg::previews::{self as preview_args, PreviewFiles};
use crate::ffmpeg::probe;
use crate::ffmpeg::run::{FfmpegProcess, FfmpegUpdate};
use crate::ladder::{self, AUDIO_BITRATE};
use crate::pipeline::early_master::write_masters;
use crate::pipeline::outcome::{JobOutcome, Shutdown};
use crate::pipeline::packager::{self, RenditionPackaging};
use crate::pipeline::previews;
use crate::pipeline::publish;
use crate::pipeline::rendition::{Destination, RenditionOutput};
use crate::pipeline::watchdog::{discard_vod_output, JobControl, Stop};
use crate::pipeline::work_dir::WorkDir;
use ringcast_infra::live_events::EventPublisher;

/// MAXLEN of a VOD rendition's event stream: an EVENT playlist keeps every segment, so its
/// stream must keep every event (2 h at 0.5 s parts and 2 s segments is ≈ 18 000 entries).
const VOD_EVENT_MAXLEN: usize = 1_000_000;

/// Re-announce `start` every this many segments (consumers treat repeats as duplicates).
const VOD_START_EVERY: u32 = 50;

/// Share of the progress bar the transcode takes; publishing is the rest.
const TRANSCODE_PROGRESS_MAX: f64 = 99.0;

/// How long a stopped attempt lets its packagers and early master finish their uploads in
/// flight (so none lands after the clean-up) before aborting them.
const STOP_DRAIN: Duration = Duration::from_secs(10);

/// Run one attempt. `progress` receives 0–99 while ffmpeg runs; `control` stops it (see the
/// module docs).
pub async fn run_attempt(
    job: &TranscodeJob,
    cfg: &TranscoderConfig,
    store: &ObjectStore,
    progress: &watch::Sender<f64>,
    shutdown: &mut watch::Receiver<Shutdown>,
    control: &JobControl,
) -> Result<JobOutcome, TranscodeError> {
    if *shutdown.borrow() == Shutdown::Abandon {
        return Err(TranscodeError::Abandoned);
    }
    if !keys::is_valid_id(&job.video_id) || !keys::is_valid_id(&job.job_id) {
        return Err(TranscodeError::InvalidJob(format!(
            "job id {:?} / video id {:?} is not a valid id",
            job.job_id, job.video_id
        )));
    }
    let work = WorkDir::create(&cfg.work_dir, "", &job.job_id)?;
    let source = work.0.join("source");
    if !store.get_to_file(&job.source_key, &source).await? {
        return Err(TranscodeError::SourceMissing(job.source_key.clone()));
    }
    let input = SourceFile {
        path: &source,
        container: probe::source_container(job.container, &source)?,
    };
    let info = probe::probe(&cfg.ffprobe_path, input).await?;
    // The ingest applies the same limits before it queues a job; this catches jobs queued by
    // anything else (or before the limits were lowered). Permanent: dead-lettered at once.
    cfg.limits.check(&info)?;
    let rungs = ladder::select(info.width, info.height);
    // Renditions never exceed MAX_OUTPUT_FPS; the GOP and the part/segment targets follow the
    // rate ffmpeg writes, not the source's.
    let out_fps = output_frame_rate(info.fps);
    tracing::info!(
        job = %job.job_id, width = info.width, height = info.height, fps = info.fps.as_f64(),
        output_fps = out_fps.as_f64(), duration = ?info.duration, bit_rate = ?info.bit_rate,
        audio = info.has_audio,
        rungs = ?rungs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "probed source"
    );
    // Cancelled while the source was fetched and probed: nothing published yet.
    if control.cancelled() {
        return Err(TranscodeError::Cancelled);
    }

    let dest = Destination {
        store: store.clone(),
        video_id: job.video_id.clone(),
        version: job.version,
    };
    let sink = EventPublisher::connect(&cfg.redis.url, VOD_EVENT_MAXLEN, cfg.live.stream_ttl())
        .await?
        .with_traceparent(crate::trace::current());
    let names: Vec<String> = rungs.iter().map(|r| r.name.clone()).collect();
    sink.begin_event_playlist(&job.video_id, job.version, &names)
        .await?;
    let fps = out_fps.as_f64();
    let targets = Targets::for_vod(cfg.part_seconds, cfg.segment_seconds, fps);
    let anchor_ms = now_ms();
    let (variants_tx, variants_rx) = mpsc::channel(rungs.len().max(1));
    let mut early_master = tokio::spawn(write_masters(
        dest.clone(),
        variants_rx,
        rungs.clone(),
        fps,
        false,
    ));
    // An attempt that fails or is cancelled leaves no writer behind.
    let _early_master_guard = AbortOnDrop(early_master.abort_handle());
    let mut fifos: Vec<Fifo> = Vec::new();
    // Bytes ffmpeg wrote into the renditions' FIFOs: the watchdog's sign of life.
    let written = Arc::new(AtomicU64::new(0));
    // Media the packagers have cut so far, for the progress bar.
    let packaged_ms = Arc::new(AtomicU64::new(0));
    let mut packagers: JoinSet<Result<RenditionOutput, TranscodeError>> = JoinSet::new();
    for rung in &rungs {
        let (fifo, rx) = fifo::open_output(&work.0, &rung.name, Arc::clone(&written))?;
        fifos.push(fifo);
        let audio = if info.has_audio { AUDIO_BITRATE } else { 0 };
        let packaging = RenditionPackaging {
            name: rung.name.clone(),
            announcer: Announcer::new(&rung.name, targets, anchor_ms, VOD_START_EVERY)
                .without_final_playlist(),
            events: Some(sink.clone()),
            variants: Some(variants_tx.clone()),
            bandwidth_estimate: (rung.video_bitrate + audio) * 11 / 10,
            packaged_ms: Arc::clone(&packaged_ms),
        };
        packagers.spawn(packager::package_rendition(packaging, rx, dest.clone()));
    }
    drop(variants_tx);
    let outputs: Vec<PathBuf> = fifos.iter().map(|f| f.path.clone()).collect();
    let preview_plan = preview_args::plan(&rungs, &info, &cfg.previews);
    let preview_files = PreviewFiles {
        dir: work.0.clone(),
    };
    let args = args::build_args(
        input,
        &rungs,
        &outputs,
        &info,
        &EncodeSettings {
            preset: cfg.preset.clone(),
            segment_seconds: cfg.segment_seconds,
            part_seconds: cfg.part_seconds,
        },
        Some(Previews {
            plan: &preview_plan,
            files: &preview_files,
        }),
    );
    tracing::debug!(job = %job.job_id, ?args, "starting ffmpeg");
    let started = Instant::now();
    let mut ffmpeg = FfmpegProcess::spawn(&cfg.ffmpeg_path, &args)?;
    crate::metrics::jobs::ffmpeg_started();
    let mut watchdog = control.vod_watchdog(info.duration, Arc::clone(&written));

    let mut results: Vec<RenditionOutput> = Vec::new();
    // The first packager failure; it takes precedence over ffmpeg's (we killed ffmpeg for it).
    let mut packager_error: Option<TranscodeError> = None;
    let mut ffmpeg_status = None;
    let mut abandoned = false;
    let mut stop: Option<Stop> = None;
    let mut progress_tick = tokio::time::interval(Duration::from_secs(1));
    while ffmpeg_status.is_none() {
        tokio::select! {
            _ = progress_tick.tick() => {
                // ffmpeg prints no stats line before every output (poster, sheets) started,
                // which on a long source is minutes in; the packagers' media time moves anyway.
                if let Some(d) = info.duration.filter(|d| *d > 0.0) {
                    let done = packaged_ms.load(Ordering::Relaxed) as f64 / 1000.0;
                    raise(progress, done / d * 100.0);
                }
            },
            update = ffmpeg.next_update() => match update {
                Some(FfmpegUpdate::Progress { out_time, frame, .. }) => {
                    watchdog.observe(frame, out_time);
                    if let (Some(d), Some(t)) = (info.duration, out_time) {
                        raise(progress, t / d * 100.0);
                    }
                }
                Some(FfmpegUpdate::Exited(status)) => ffmpeg_status = Some(status),
                None => ffmpeg_status = Some(Err(std::io::Error::other("ffmpeg event thread ended"))),
            },
            Some(joined) = packagers.join_next(), if packager_error.is_none() => {
                match flatten(joined) {
                    Ok(r) => results.push(r),
                    Err(e) => {
                        tracing::warn!(job = %job.job_id, error = %e, "packager failed; stopping ffmpeg");
                        packager_error = Some(e);
                        ffmpeg.kill();
                    }
                }
            },
            changed = shutdown.changed(), if !abandoned => {
                if changed.is_err() || *shutdown.borrow() == Shutdown::Abandon {
                    abandoned = true;
                    ffmpeg.kill();
                }
            },
            reason = watchdog.stopped(), if stop.is_none() && !abandoned && packager_error.is_none() => {
                tracing::warn!(job = %job.job_id, ?reason, pid = ffmpeg.pid(), "stopping ffmpeg");
                stop = Some(reason);
                ffmpeg.kill();
            },
        }
    }
    let transcode_seconds = started.elapsed().as_secs_f64();
    // ffmpeg is gone: let the readers see end-of-file once the pipes are drained.
    for f in &mut fifos {
        f.close_keeper();
    }
    if abandoned {
        return Err(TranscodeError::Abandoned);
    }
    if let Some(reason) = stop {
        // Let uploads in flight land (bounded), so that none arrives after the clean-up.
        let drained = tokio::time::timeout(STOP_DRAIN, async {
            while packagers.join_next().await.is_some() {}
            let _ = (&mut early_master).await;
        })
        .await;
        if drained.is_err() {
            packagers.abort_all();
            while packagers.join_next().await.is_some() {}
            if !early_master.is_finished() {
                early_master.abort();
                let _ = (&mut early_master).await;
            }
        }
        discard_vod_output(
            store,
            &control.queue,
            &job.job_id,
            &job.video_id,
            job.version,
            &names,
        )
        .await;
        return Err(reason.into_error());
    }
    let ffmpeg_result = match ffmpeg_status {
        Some(status) if !ffmpeg.was_killed() => ffmpeg.check_exit(status),
        _ => Ok(()),
    };
    if let Err(e) = ffmpeg_result {
        // The packagers' view (a truncated stream) is a consequence, not the cause.
        packagers.abort_all();
        return Err(packager_error.unwrap_or(e));
    }
    if let Some(e) = packager_error {
        return Err(e);
    }
    while let Some(joined) = packagers.join_next().await {
        results.push(flatten(joined)?);
    }
    // Keep ladder order (highest first) regardless of which packager finished first.
    results.sort_by_key(|r| rungs.iter().position(|g| g.name == r.name));

    // The early master must land before the final one, never after it.
    if let Err(e) = early_master.await {
        tracing::warn!(job = %job.job_id, error = %e, "early master writer task failed");
    }
    // Poster and thumbnails before the playlists and the pointer: "ready" lists them.
    let media_seconds = published_seconds(&results).or(info.duration).unwrap_or(0.0);
    let collected = previews::collect(&preview_files, &preview_plan, media_seconds)?;
    if collected.poster_is_fallback {
        tracing::info!(job = %job.job_id, "no bright frame in the poster window; poster is its first frame");
    }
    let record = previews::upload(&dest, &collected).await?;
    previews::record(&cfg.redis.url, &job.video_id, job.version, &record).await?;
    tracing::info!(
        job = %job.job_id, sheets = collected.sheets.len(),
        tile = ?(collected.geometry.tile_width, collected.geometry.tile_height),
        interval = preview_plan.sprite.interval, "poster and thumbnails published"
    );
    publish::publish(&dest, &results, fps).await?;
    Ok(JobOutcome {
        renditions: results,
        media_seconds: info.duration.unwrap_or(0.0),
        transcode_seconds,
    })
}

/// Move the progress bar to `pct` (capped at [`TRANSCODE_PROGRESS_MAX`]), never back: it has
/// two sources (ffmpeg's stats, the packagers' media time) that need not agree.
fn raise(progress: &watch::Sender<f64>, pct: f64) {
    let pct = pct.clamp(0.0, TRANSCODE_PROGRESS_MAX);
    progress.send_if_modified(|p| {
        let grew = pct > *p;
        if grew {
            *p = pct;
        }
        grew
    });
}

/// Duration of the published media: the longest rendition's segments (they share one
/// timeline; audio may end a little after video). `None` when nothing was packaged.
fn published_seconds(renditions: &[RenditionOutput]) -> Option<f64> {
    renditions
        .iter()
        .map(|r| r.segments.iter().map(|s| s.duration).sum::<f64>())
        .filter(|d| *d > 0.0)
        .max_by(f64::total_cmp)
}

/// A packager task's result, with a panic or cancellation reported as an error.
fn flatten(
    joined: Result<Result<RenditionOutput, TranscodeError>, tokio::task::JoinError>,
) -> Result<RenditionOutput, TranscodeError> {
    joined.map_err(|e| TranscodeError::io("packager task", std::io::Error::other(e.to_string())))?
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
