//! One live job: ffmpeg reads the ingest's pull URL in real time and encodes the live ladder
//! (zerolatency, a fixed GOP of whole parts, segments of whole GOPs, fragments = parts) into one FIFO per rendition; a task per
//! rendition cuts parts and segments ([`crate::cmaf::cutter`]), decides uploads and events
//! ([`crate::cmaf::announcer`]) and executes them in order (object first, event after). The
//! versioned master and the video's current master are written as soon as every rendition
//! keeps real time after its init segment ([`crate::pipeline::master_gate`]: a player that
//! joined while the start-up backlog drains would keep that lag), so players can start while
//! the stream runs. The pull response
//! ending (the publisher's grace period is over) makes ffmpeg exit; every rendition then
//! announces `end` and writes its final playlist.
//!
//! A live job runs once: a retry would restart the segment numbering under the same version
//! (and overwrite objects that edges cache as immutable), so a redelivered live job whose event
//! stream already exists is refused (dead-lettered). Shutdown ends the stream the same way as
//! the publisher leaving (ffmpeg killed, `end` announced).
//!
//! Job control ([`crate::pipeline::watchdog`]): a publisher that goes silent ends the stream
//! through ffmpeg's input timeout (`live.input_timeout_secs`), as before; only an ffmpeg that
//! makes no progress for `stall_timeout_secs` beyond that is killed as stalled (the job then
//! fails: a live job is never retried). An operator's cancel also ends the stream like the
//! publisher leaving, and the job ends `cancelled`; what viewers already watched stays
//! published. Live jobs have no wall-clock limit.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use ringcast_infra::store::ObjectStore;
use ringcast_proto::job::{now_ms, TranscodeJob};
use ringcast_proto::keys;
use ringcast_proto::live::rules;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::cmaf::announcer::Announcer;
use crate::cmaf::cutter::{Cut, Cutter, Targets};
use crate::config::TranscoderConfig;
use crate::error::TranscodeError;
use crate::ffmpeg::args::build_live_args;
use crate::ffmpeg::fifo::{self, Chunk, Fifo};
use crate::ffmpeg::run::{FfmpegProcess, FfmpegUpdate};
use crate::ladder::{self, Rung, AUDIO_BITRATE};
use crate::metrics::live::{LiveMetrics, RenditionLatency};
use crate::pipeline::early_master::write_masters;
use crate::pipeline::master_gate::MasterGate;
use crate::pipeline::outcome::{JobOutcome, Shutdown};
use crate::pipeline::packager::{self, Executed};
use crate::pipeline::rendition::{Destination, RenditionOutput, VariantInfo};
use crate::pipeline::watchdog::{JobControl, Stop};
use crate::pipeline::work_dir::WorkDir;
use ringcast_infra::live_events::EventPublisher;

/// Run a live job to the end of its stream.
pub async fn run_live(
    job: &TranscodeJob,
    pull_url: &str,
    cfg: &TranscoderConfig,
    store: &ObjectStore,
    shutdown: &mut watch::Receiver<Shutdown>,
    control: &JobControl,
    metrics: &Arc<LiveMetrics>,
) -> Result<JobOutcome, TranscodeError> {
    if !keys::is_valid_id(&job.video_id) || !keys::is_valid_id(&job.job_id) {
        return Err(TranscodeError::InvalidJob(format!(
            "job id {:?} / video id {:?} is not a valid id",
            job.job_id, job.video_id
        )));
    }
    // The ingest's pull endpoint is plain HTTP, and the input is read with only `http` and
    // `tcp` allowed ([`live_input_args`]).
    if !pull_url.starts_with("http://") {
        return Err(TranscodeError::InvalidJob(format!(
            "live pull URL {pull_url:?} is not an http URL"
        )));
    }
    let live = &cfg.live;
    let targets = Targets::live(
        live.part_seconds,
        live.keyframe_seconds,
        live.segment_seconds,
        live.fps,
    );
    let rungs = ladder::live_rungs(&live.heights);
    let sink = EventPublisher::connect(&cfg.redis.url, live.event_maxlen, live.stream_ttl())
        .await?
        .with_traceparent(crate::trace::current());
    // A redelivered live job (its worker died) must not start over: segment numbers would
    // restart under the same version and overwrite objects edges cache as immutable.
    if let Some(first) = rungs.first() {
        if sink
            .started(&job.video_id, job.version, &first.name)
            .await?
        {
            return Err(TranscodeError::LiveAlreadyStarted {
                video: job.video_id.clone(),
                version: job.version,
            });
        }
    }
    let dest = Destination {
        store: store.clone(),
        video_id: job.video_id.clone(),
        version: job.version,
    };
    tracing::info!(
        job = %job.job_id, video = %job.video_id, version = job.version,
        part_target = targets.part_target, parts_per_segment = targets.parts_per_segment,
        gop = targets.gop_frames, segment_frames = targets.segment_frames, rungs = ?rungs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "live job started"
    );

    let (disc_tx, disc_rx) = watch::channel(1u32);
    let poller = tokio::spawn(watch_publishes(
        sink.clone(),
        job.video_id.clone(),
        job.version,
        disc_tx,
    ));
    let work = WorkDir::create(&cfg.work_dir, "live-", &job.job_id)?;
    let (info_tx, info_rx) = mpsc::channel(rungs.len());
    let mut fifos: Vec<Fifo> = Vec::new();
    // Bytes ffmpeg wrote into the renditions' FIFOs: the watchdog's sign of life.
    let written = Arc::new(AtomicU64::new(0));
    let mut tasks: JoinSet<Result<RenditionOutput, TranscodeError>> = JoinSet::new();
    for rung in &rungs {
        let (fifo, rx) = fifo::open_output(&work.0, &rung.name, Arc::clone(&written))?;
        fifos.push(fifo);
        let announcer = Announcer::new(
            &rung.name,
            targets,
            job.created_ms,
            live.start_every_segments,
        )
        .with_part_hold_back_parts(live.part_hold_back_parts);
        tasks.spawn(live_rendition(
            rung.clone(),
            rx,
            dest.clone(),
            sink.clone(),
            announcer,
            info_tx.clone(),
            disc_rx.clone(),
            metrics.rendition(&rung.name),
        ));
    }
    drop(info_tx);
    let master = tokio::spawn(write_masters(
        dest.clone(),
        info_rx,
        rungs.clone(),
        live.fps,
        true,
    ));

    let outputs: Vec<PathBuf> = fifos.iter().map(|f| f.path.clone()).collect();
    let args = build_live_args(pull_url, &rungs, &outputs, &targets, live);
    tracing::debug!(job = %job.job_id, ?args, "starting live ffmpeg");
    let started = Instant::now();
    let mut ffmpeg = FfmpegProcess::spawn(&cfg.ffmpeg_path, &args)?;
    crate::metrics::jobs::ffmpeg_started();
    let mut watchdog = control.live_watchdog(
        std::time::Duration::from_secs(live.input_timeout_secs),
        Arc::clone(&written),
    );
    let mut stop: Option<Stop> = None;
    let mut status = None;
    let mut rendition_error = None;
    let mut results = Vec::new();
    let mut stopping = false;
    while status.is_none() {
        tokio::select! {
            update = ffmpeg.next_update() => match update {
                Some(FfmpegUpdate::Exited(s)) => status = Some(s),
                Some(FfmpegUpdate::Progress { out_time, frame, .. }) => {
                    watchdog.observe(frame, out_time);
                }
                None => status = Some(Err(std::io::Error::other("ffmpeg event thread ended"))),
            },
            Some(joined) = tasks.join_next(), if rendition_error.is_none() => match flatten(joined) {
                Ok(r) => results.push(r),
                Err(e) => {
                    tracing::warn!(job = %job.job_id, error = %e, "live rendition failed; stopping ffmpeg");
                    rendition_error = Some(e);
                    ffmpeg.kill();
                }
            },
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() != Shutdown::Running {
                    tracing::info!(job = %job.job_id, "shutdown: ending the live stream");
                    stopping = true;
                    ffmpeg.kill();
                }
            },
            reason = watchdog.stopped(), if stop.is_none() && !stopping && rendition_error.is_none() => {
                tracing::warn!(job = %job.job_id, ?reason, pid = ffmpeg.pid(), "stopping live ffmpeg; ending the stream");
                stop = Some(reason);
                ffmpeg.kill();
            },
        }
    }
    // ffmpeg is gone: the readers reach end-of-file and every rendition announces its end.
    for f in &mut fifos {
        f.close_keeper();
    }
    while let Some(joined) = tasks.join_next().await {
        match flatten(joined) {
            Ok(r) => results.push(r),
            Err(e) => {
                rendition_error.get_or_insert(e);
            }
        }
    }
    poller.abort();
    if let Err(e) = master.await {
        tracing::warn!(error = %e, "live master writer task failed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The stream has ended for every rendition; the job ends for the watchdog's reason.
    if let Some(reason) = stop {
        return Err(reason.into_error());
    }
    // ffmpeg failing on its own (a body it cannot read) is the cause, and its error is what the
    // job reports: the renditions then only saw a stream without an init segment. A rendition
    // that failed while ffmpeg ran got ffmpeg killed, so its error stands.
    if !ffmpeg.was_killed() {
        if let Some(s) = status {
            ffmpeg.check_exit(s)?;
        }
    }
    if let Some(e) = rendition_error {
        return Err(e);
    }
    results.sort_by_key(|r| rungs.iter().position(|g| g.name == r.name));
    let media_seconds = results
        .first()
        .map_or(0.0, |r| r.segments.iter().map(|s| s.duration).sum());
    tracing::info!(job = %job.job_id, media_seconds, elapsed, "live job finished");
    Ok(JobOutcome {
        renditions: results,
        media_seconds,
        transcode_seconds: elapsed,
    })
}

/// One rendition: cut, upload, announce, in order.
#[allow(clippy::too_many_arguments)]
async fn live_rendition(
    rung: Rung,
    mut rx: mpsc::Receiver<Chunk>,
    dest: Destination,
    sink: EventPublisher,
    mut announcer: Announcer,
    info_tx: mpsc::Sender<VariantInfo>,
    mut reconnects: watch::Receiver<u32>,
    latency: RenditionLatency,
) -> Result<RenditionOutput, TranscodeError> {
    let name = rung.name.clone();
    // The encoder's fixed GOP closes a segment with its last part (see the cutter).
    let mut cutter = Cutter::new(&name).with_segment_frames(announcer.targets().segment_frames);
    let mut out = RenditionOutput::new(&name);
    let mut gate = MasterGate::default();
    let mut read_error = None;
    // Skewed audio is a property of the whole stream: logged once, counted per part.
    let mut skew_logged = false;
    while let Some(chunk) = rx.recv().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                read_error = Some(TranscodeError::io(format!("reading {name} from ffmpeg"), e));
                break;
            }
        };
        if reconnects.has_changed().unwrap_or(false) {
            reconnects.borrow_and_update();
            tracing::info!(rendition = %name, "publisher reconnected; the next segment starts a discontinuity");
            announcer.mark_discontinuity();
        }
        let cuts = cutter.push(&chunk)?;
        // Every cut of this chunk became complete now: later ones queue behind the uploads of
        // earlier ones, which the cut → stored hop shows.
        let (cut_at, cut_ms) = (Instant::now(), now_ms());
        for cut in cuts {
            let part_timing = match &cut {
                Cut::Part(p) => Some((p.msn, p.start + p.duration, p.duration, p.audio_skew)),
                _ => None,
            };
            let is_init = matches!(cut, Cut::Init { .. });
            if let Cut::Init { .. } = &cut {
                out.record_init(&cut);
                gate.on_init(
                    VariantInfo {
                        name: name.clone(),
                        codecs: out.codecs.clone(),
                        width: out.width,
                        height: out.height,
                        bandwidth: (rung.video_bitrate + AUDIO_BITRATE) * 11 / 10,
                    },
                    cut_ms,
                );
            }
            let actions = announcer.on_cut(cut, cut_ms);
            let done = packager::execute(&dest, Some(&sink), &name, actions, &mut out).await?;
            let part_target = announcer.targets().part_target;
            if is_init {
                if let Some(rule) = announcer
                    .part_hold_back()
                    .and_then(|hb| rules::check_hold_back(hb, part_target))
                {
                    latency.violation(rule);
                }
            }
            if let Some((msn, end, duration, audio_skew)) = part_timing {
                observe_part(&latency, &announcer, end, duration, cut_at, cut_ms, done);
                if let Some(rule) = audio_skew.and_then(|s| rules::check_audio_skew(s, part_target))
                {
                    latency.violation(rule);
                    if !std::mem::replace(&mut skew_logged, true) {
                        tracing::warn!(rendition = %name, skew_s = audio_skew,
                            "a part's audio is not the audio of its video's time span (counted in rule=\"audio_video_skew\")");
                    }
                }
                // After the part's event: the master names a rendition whose playlist lists it.
                let lag_s = (cut_ms as f64 - announcer.date_ms(end) as f64) / 1000.0;
                if let Some(info) = gate.on_part(msn, lag_s, part_target, cut_ms) {
                    let _ = info_tx.send(info).await;
                }
            }
        }
    }
    if let Some(info) = gate.finish() {
        let _ = info_tx.send(info).await;
    }
    drop(info_tx);
    // A stream that never produced its init segment has nothing to end.
    let last = match cutter.finish() {
        Ok(last) => last,
        Err(e) if out.init_bytes == 0 => return Err(read_error.unwrap_or(e)),
        Err(e) => return Err(e),
    };
    let actions = announcer.finish(last);
    packager::execute(&dest, Some(&sink), &name, actions, &mut out).await?;
    if let Some(e) = read_error {
        return Err(e);
    }
    Ok(out)
}

/// One part's hops ([`crate::metrics::live`]): its last frame's capture time is its date
/// (after [`Announcer::on_cut`], which moves the dates at a reconnect).
fn observe_part(
    latency: &RenditionLatency,
    announcer: &Announcer,
    end: f64,
    duration: f64,
    cut_at: Instant,
    cut_ms: u64,
    done: Executed,
) {
    let captured_ms = announcer.date_ms(end);
    let capture_to_cut = (cut_ms as f64 - captured_ms as f64) / 1000.0;
    latency.capture_to_cut.observe(capture_to_cut);
    if let (Some(stored), Some(announced)) = (done.part_stored, done.part_announced) {
        latency
            .cut_to_stored
            .observe(stored.saturating_duration_since(cut_at).as_secs_f64());
        latency
            .stored_to_announced
            .observe(announced.saturating_duration_since(stored).as_secs_f64());
        latency
            .capture_to_announced
            .observe(capture_to_cut + announced.saturating_duration_since(cut_at).as_secs_f64());
    }
    let part_target = announcer.targets().part_target;
    latency
        .part_fill
        .observe(rules::part_fill(duration, part_target));
    if let Some(rule) = rules::check_part(duration, part_target) {
        latency.violation(rule);
    }
}

/// How often the reconnect count of the stream is read.
const RECONNECT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Watch the ingest's publisher count of the stream and pass increases on (each rendition
/// then marks a discontinuity before its next segment). Ends when every rendition is done.
async fn watch_publishes(
    sink: EventPublisher,
    video: String,
    version: u32,
    tx: watch::Sender<u32>,
) {
    let mut known = 1u32;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(RECONNECT_POLL) => {}
        }
        match sink.publishes(&video, version).await {
            Ok(n) if n > known => {
                known = n;
                tx.send_replace(n);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading the live reconnect count failed"),
        }
    }
}

fn flatten(
    joined: Result<Result<RenditionOutput, TranscodeError>, tokio::task::JoinError>,
) -> Result<RenditionOutput, TranscodeError> {
    joined.map_err(|e| {
        TranscodeError::io("live rendition task", std::io::Error::other(e.to_string()))
    })?
}
