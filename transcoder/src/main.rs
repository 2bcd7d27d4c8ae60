//! `ringcast-transcoder`: runs `workers` VOD job loops and `live_slots` live job loops against
//! Redis and the object store until SIGTERM/SIGINT (`ringcast-transcoder jobs …` instead
//! inspects and steers the queue, `ringcast_transcoder::jobs_cli`). The first signal stops taking jobs and lets
//! running ones finish for up to `shutdown_grace_ms`; after that, or at a second signal, running jobs are abandoned (left
//! unacknowledged for another worker) and the process exits.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_infra::telemetry;
use ringcast_transcoder::ffmpeg::args::{self, EncodeSettings};
use ringcast_transcoder::ffmpeg::input::SourceFile;
use ringcast_transcoder::ffmpeg::{previews, probe};
use ringcast_transcoder::jobs_cli::{self, JobsCommand};
use ringcast_transcoder::metrics::queue::{Probes, WorkerCount};
use ringcast_transcoder::metrics::{self, Metrics};
use ringcast_transcoder::pipeline::outcome::Shutdown;
use ringcast_transcoder::worker::{self, Lane, Shared};
use ringcast_transcoder::{ladder, TranscoderConfig};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// ringcast VOD transcoder: Redis job streams → ffmpeg CMAF ladder → HLS in the object store.
///
/// Settings come from the TOML file, then `RINGCAST_TRANSCODER_*` environment variables
/// (e.g. `RINGCAST_TRANSCODER_REDIS__URL`), then these flags.
#[derive(Debug, Parser)]
#[command(name = "ringcast-transcoder", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file (see transcoder.example.toml); defaults apply without one.
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Concurrent VOD jobs in this process (overrides `workers`).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Print, one per line, the ffmpeg arguments a job for this source file would run, with the
    /// renditions written to OUT_DIR/{rendition}.mp4 instead of FIFOs, and exit. For comparing
    /// the pipeline with raw ffmpeg (`scripts/bench`) and for debugging a ladder.
    #[arg(long, value_names = ["SOURCE", "OUT_DIR"], num_args = 2)]
    print_ffmpeg_args: Option<Vec<PathBuf>>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Inspect and steer the job queue (dead letters, running jobs) in the config's Redis,
    /// then exit; no worker runs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

/// How long the `jobs` commands wait for Redis before giving up.
const JOBS_CLI_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = TranscoderConfig::load(cli.config.as_deref()).context("loading config")?;
    if let Some(Command::Jobs { command }) = &cli.command {
        return jobs(&cfg, command).await;
    }
    if let Some(w) = cli.workers {
        cfg.workers = w;
        cfg.validate().context("--workers")?;
    }
    if let Some(paths) = &cli.print_ffmpeg_args {
        let [source, out_dir] = paths.as_slice() else {
            anyhow::bail!("--print-ffmpeg-args takes SOURCE and OUT_DIR");
        };
        return print_ffmpeg_args(&cfg, source, out_dir).await;
    }
    telemetry::init(cfg.log_json);
    ringcast_infra::rlimit::raise_nofile_logged("transcoder");
    ringcast_infra::trace_export::init("transcoder", &cfg.telemetry).map_err(anyhow::Error::msg)?;

    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("creating work_dir {}", cfg.work_dir.display()))?;
    ringcast_transcoder::pipeline::work_dir::sweep_at_start(&cfg.work_dir)
        .with_context(|| format!("sweeping work_dir {}", cfg.work_dir.display()))?;
    let store = ObjectStore::open(&cfg.store)
        .await
        .context("opening the object store")?;
    let queue = Queue::connect(&cfg.redis.url)
        .await
        .with_context(|| format!("connecting to Redis at {}", cfg.redis.url))?
        .with_retention(cfg.queue.clone());
    let metrics = Arc::new(Metrics::default());
    metrics.jobs.set_capacity(cfg.workers, cfg.live_slots);
    let worker_count = Arc::new(WorkerCount::default());
    let draining = Arc::new(AtomicBool::new(false));
    if let Some(addr) = cfg.metrics_listen {
        let probes = Probes {
            queue: queue.clone(),
            store: store.clone(),
            work_dir: cfg.work_dir.clone(),
            min_free_bytes: cfg.min_free_bytes,
            workers: Arc::clone(&worker_count),
            draining: Arc::clone(&draining),
        };
        let bound = metrics::serve(addr, Arc::clone(&metrics), Some(Arc::new(probes)))
            .await
            .with_context(|| format!("binding metrics_listen {addr}"))?;
        tracing::info!(%bound, "metrics endpoint listening");
    }
    tracing::info!(
        workers = cfg.workers, live_slots = cfg.live_slots, store = store.backend_name(), consumer = %cfg.consumer_name,
        preset = %cfg.preset, "transcoder starting"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(Shutdown::Running);
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    let shared = Arc::new(Shared {
        cfg,
        store,
        queue,
        metrics,
    });
    let mut workers = JoinSet::new();
    let lanes = [
        (Lane::Vod, shared.cfg.workers),
        (Lane::Live, shared.cfg.live_slots),
    ];
    for (lane, count) in lanes {
        for i in 0..count {
            // Counted as running until the task ends (returns or panics): `/readyz`.
            let running = worker_count.started();
            let run = worker::run_worker(Arc::clone(&shared), lane, i, shutdown_rx.clone());
            workers.spawn(async move {
                let _running = running;
                run.await
            });
        }
    }
    tokio::spawn(handle_signals(shutdown_tx, grace, draining));
    tokio::spawn(trim_streams(
        shared.queue.clone(),
        Duration::from_secs(shared.cfg.queue.trim_interval_secs),
    ));

    let mut failed = false;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "worker could not run");
                failed = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "worker panicked");
                failed = true;
            }
        }
    }
    tracing::info!("transcoder stopped");
    if failed {
        anyhow::bail!("a worker failed");
    }
    Ok(())
}

/// The job's ffmpeg command for `source`, outputs in `out_dir`: the same probe, ladder and
/// argument builder as a real job.
async fn print_ffmpeg_args(
    cfg: &TranscoderConfig,
    source: &std::path::Path,
    out_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let input = SourceFile {
        path: source,
        container: probe::source_container(None, source)?,
    };
    let info = probe::probe(&cfg.ffprobe_path, input)
        .await
        .with_context(|| format!("probing {}", source.display()))?;
    let rungs = ladder::select(info.width, info.height);
    let outputs: Vec<PathBuf> = rungs
        .iter()
        .map(|r| out_dir.join(format!("{}.mp4", r.name)))
        .collect();
    let settings = EncodeSettings {
        preset: cfg.preset.clone(),
        segment_seconds: cfg.segment_seconds,
        part_seconds: cfg.part_seconds,
    };
    // The same poster and sprite outputs as a job, into OUT_DIR.
    let preview_plan = previews::plan(&rungs, &info, &cfg.previews);
    let preview_files = previews::PreviewFiles {
        dir: out_dir.to_path_buf(),
    };
    let with_previews = Some(args::Previews {
        plan: &preview_plan,
        files: &preview_files,
    });
    for arg in args::build_args(input, &rungs, &outputs, &info, &settings, with_previews) {
        println!("{}", arg.to_string_lossy());
    }
    Ok(())
}

/// `ringcast-transcoder jobs …`: run one command against the config's Redis, print its output.
async fn jobs(cfg: &TranscoderConfig, command: &JobsCommand) -> anyhow::Result<()> {
    let run = async {
        let queue = Queue::connect(&cfg.redis.url)
            .await
            .with_context(|| format!("connecting to Redis at {}", cfg.redis.url))?
            .with_retention(cfg.queue.clone());
        anyhow::Ok(jobs_cli::run(command, &queue).await?)
    };
    let out = tokio::time::timeout(JOBS_CLI_TIMEOUT, run)
        .await
        .with_context(|| {
            format!(
                "no answer from Redis at {} within {JOBS_CLI_TIMEOUT:?}",
                cfg.redis.url
            )
        })??;
    print!("{out}");
    Ok(())
}

/// Trim the job streams every `every` for as long as the process runs (see
/// `ringcast_infra::queue::retention`); each pass is bounded, and a failed one is retried at
/// the next tick.
async fn trim_streams(queue: Queue, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(Duration::from_secs(30), queue.trim_streams()).await {
            Ok(Ok(trimmed)) => {
                for t in trimmed.iter().filter(|t| t.removed > 0) {
                    tracing::debug!(stream = %t.stream, floor = ?t.floor, removed = t.removed, "trimmed job stream");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "trimming the job streams failed"),
            Err(_) => tracing::warn!("trimming the job streams timed out"),
        }
    }
}

/// First SIGTERM/SIGINT: drain (then abandon after `grace`); second: abandon now.
async fn handle_signals(tx: watch::Sender<Shutdown>, grace: Duration, draining: Arc<AtomicBool>) {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            // Keep the sender alive: dropping it would read as "abandon everything now".
            std::future::pending::<()>().await;
            return;
        }
    };
    let first = next_signal(&mut term, &mut int).await;
    tracing::info!(
        signal = first,
        ?grace,
        "shutting down: no new jobs, finishing running ones"
    );
    draining.store(true, std::sync::atomic::Ordering::Relaxed);
    tx.send_replace(Shutdown::Draining);
    tokio::select! {
        second = next_signal(&mut term, &mut int) => {
            tracing::info!(signal = second, "second signal: abandoning running jobs");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::info!("shutdown grace over: abandoning running jobs");
        }
    }
    tx.send_replace(Shutdown::Abandon);
}

async fn next_signal(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
