//! `ringcast-loadtest`: client tools and load generators for ringcast.
//!
//! `uploads` runs N tus clients uploading back to back (the upload swarm).
//! `upload` sends one file through the tus endpoint with a progress bar, then follows the
//! transcode to the end (what `scripts/demo` uses). `viewers` runs a swarm of simulated HLS
//! players against a master playlist and reports latency, throughput, errors and stalls.
//! Both print a table (or `--json`, with a per-second time series) and can draw that series
//! as an SVG report (`--plot FILE.svg`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ringcast_loadtest::player::Rendition;
use ringcast_loadtest::plot::{self, PlotOptions, Scale};
use ringcast_loadtest::series::TimeSeries;
use ringcast_loadtest::{swarm, tus_client, upload_swarm, video_status};

#[derive(Parser)]
#[command(
    name = "ringcast-loadtest",
    version,
    about = "Client tools and load generators for ringcast"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Upload one file with tus, show progress, wait for the transcode, print the playback URL.
    Upload {
        /// Ingest base URL, e.g. http://127.0.0.1:8081
        #[arg(long)]
        ingest: String,
        /// File to upload.
        #[arg(long)]
        file: PathBuf,
        /// Edge base URL used to print `playback: {edge}/v/{id}/master.m3u8`.
        #[arg(long)]
        edge: Option<String>,
        /// Title stored as upload metadata.
        #[arg(long)]
        title: Option<String>,
        /// Bytes per PATCH request.
        #[arg(long, default_value_t = 4 * 1024 * 1024)]
        chunk_size: usize,
        /// Do not wait for the transcode.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait for the transcode, in seconds.
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
        /// API key (`ringcast-ingest keys create`); not needed by an ingest in open mode.
        #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Make a new video even if the owner already uploaded these bytes (the ingest would
        /// otherwise answer with the existing video and transcode nothing).
        #[arg(long)]
        allow_duplicate: bool,
    },
    /// Run N tus clients uploading back to back and report throughput and latency.
    Uploads {
        /// Ingest base URL, e.g. http://127.0.0.1:8081
        #[arg(long)]
        url: String,
        /// API key (`ringcast-ingest keys create`); not needed by an ingest in open mode.
        #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Every upload of the same --file is a new video and transcode job (without it the
        /// ingest answers repeats as duplicates: nothing stored or queued).
        #[arg(long)]
        allow_duplicates: bool,
        /// Concurrent clients (one thread each).
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Bytes per generated upload: 20MiB, 500KB, 4096 …
        #[arg(long, default_value = "20MiB", value_parser = upload_swarm::parse_size)]
        size: u64,
        /// Upload this file instead of generated payloads (a real clip loads the transcoders too).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Bytes per PATCH request.
        #[arg(long, default_value = "4MiB", value_parser = upload_swarm::parse_size)]
        chunk_size: u64,
        /// Uploads per client (default: as many as fit in --duration).
        #[arg(long)]
        uploads: Option<usize>,
        /// No upload starts after this; e.g. 60s, 2m.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
        /// Print the summary as JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write an SVG report: latency, requests/s and active clients over time.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Latency axis of the plot.
        #[arg(long, value_enum, default_value_t = Scale::Log)]
        plot_scale: Scale,
    },
    /// Run N simulated HLS players against a master (or media) playlist URL.
    Viewers {
        /// http:// URL of the master playlist.
        #[arg(long)]
        url: String,
        /// Number of players.
        #[arg(long, default_value_t = 100)]
        viewers: usize,
        /// Total run time, e.g. 60s, 500ms, 2m.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
        /// Players start evenly spread over this time.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        ramp: Duration,
        /// Client threads (one monoio runtime each).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// How each player picks a rendition.
        #[arg(long, value_enum, default_value_t = Rendition::Random)]
        rendition: Rendition,
        /// Seconds of VOD media a player buffers ahead.
        #[arg(long, default_value_t = 30.0)]
        max_buffer: f64,
        /// Per-request timeout.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        request_timeout: Duration,
        /// Static herd mode: instead of playing, every viewer GETs these two paths of --url's
        /// server (PLAYLIST,PART, e.g. `/live/index.m3u8?_HLS_msn=9,/live/part9.1.m4s`) once per
        /// --herd-interval, all viewers on the same ticks: the burst an LL-HLS part
        /// announcement releases, against a server of static files.
        #[arg(long, value_name = "PLAYLIST,PART")]
        static_pair: Option<String>,
        /// Tick of --static-pair.
        #[arg(long, default_value = "333ms", value_parser = parse_duration)]
        herd_interval: Duration,
        /// Print the summary as JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write an SVG report: latency, requests/s and active clients over time.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Latency axis of the plot.
        #[arg(long, value_enum, default_value_t = Scale::Log)]
        plot_scale: Scale,
    },
}

/// What a swarm run reports: its table or JSON summary, and optionally an SVG plot.
struct Report<'a> {
    series: &'a TimeSeries,
    table: String,
    title: String,
    active_label: &'a str,
}

impl Report<'_> {
    /// Write the plot to `plot` when asked, then print `summary` as JSON or the table.
    fn emit(
        self,
        summary: &impl serde::Serialize,
        plot: Option<&std::path::Path>,
        scale: Scale,
        json: bool,
    ) -> anyhow::Result<()> {
        if let Some(path) = plot {
            let svg = plot::svg(
                self.series,
                &PlotOptions {
                    title: self.title,
                    active_label: self.active_label.to_string(),
                    latency_scale: scale,
                },
            );
            std::fs::write(path, svg).with_context(|| format!("write {}", path.display()))?;
        }
        if json {
            println!("{}", serde_json::to_string_pretty(summary)?);
        } else {
            print!("{}", self.table);
        }
        Ok(())
    }
}

/// `60s`, `500ms`, `2m`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Uploads {
            url,
            api_key,
            allow_duplicates,
            clients,
            size,
            file,
            chunk_size,
            uploads,
            duration,
            json,
            plot,
            plot_scale,
        } => {
            let target = url.clone();
            let summary = upload_swarm::run(&upload_swarm::UploadSwarmConfig {
                url,
                clients,
                size,
                chunk_size: usize::try_from(chunk_size.max(1)).context("chunk size too large")?,
                uploads_per_client: uploads,
                duration,
                file,
                progress: !json,
                api_key,
                allow_duplicates,
            })?;
            let report = Report {
                series: &summary.series,
                table: summary.table(),
                title: format!("ringcast-loadtest uploads: {clients} clients, {target}"),
                active_label: "active uploaders",
            };
            report.emit(&summary, plot.as_deref(), plot_scale, json)
        }
        Cmd::Viewers {
            url,
            viewers,
            duration,
            ramp,
            threads,
            rendition,
            max_buffer,
            request_timeout,
            static_pair,
            herd_interval,
            json,
            plot,
            plot_scale,
        } => {
            let target = url.clone();
            let herd = match static_pair {
                Some(pair) => {
                    let (playlist, part) = pair
                        .split_once(',')
                        .filter(|(a, b)| a.starts_with('/') && b.starts_with('/'))
                        .context("--static-pair wants two absolute paths: PLAYLIST,PART")?;
                    anyhow::ensure!(!herd_interval.is_zero(), "--herd-interval must be positive");
                    Some((playlist.to_owned(), part.to_owned(), herd_interval))
                }
                None => None,
            };
            let summary = swarm::run(&swarm::SwarmConfig {
                url,
                viewers,
                duration,
                ramp,
                threads,
                rendition,
                max_buffer,
                request_timeout,
                progress: !json,
                herd,
            })?;
            let report = Report {
                series: &summary.series,
                table: summary.table(),
                title: format!(
                    "ringcast-loadtest viewers: {viewers} viewers, {threads} thread(s), {target}"
                ),
                active_label: "active viewers",
            };
            report.emit(&summary, plot.as_deref(), plot_scale, json)
        }
        Cmd::Upload {
            ingest,
            file,
            edge,
            title,
            chunk_size,
            no_wait,
            timeout_secs,
            api_key,
            allow_duplicate,
        } => {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut opts = tus_client::UploadOptions {
                chunk_size,
                api_key: api_key.clone(),
                ..Default::default()
            };
            opts.metadata
                .push(("filename".into(), name.clone().into_bytes()));
            opts.metadata
                .push(("title".into(), title.unwrap_or(name).into_bytes()));
            if allow_duplicate {
                opts.metadata.push(("duplicates".into(), b"allow".to_vec()));
            }
            let size = std::fs::metadata(&file)
                .with_context(|| format!("stat {}", file.display()))?
                .len();
            let up = bar(
                size,
                "upload    [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
            );
            let endpoint = format!("{}/files/", ingest.trim_end_matches('/'));
            let done = tus_client::upload_file(&endpoint, &file, &opts, |o, _| up.set_position(o))?;
            up.finish();
            println!("video: {}", done.video_id);
            if !no_wait {
                let tc = bar(100, "transcode [{bar:40}] {pos}% {elapsed}");
                video_status::wait_done(
                    &ingest,
                    &done.video_id,
                    api_key.as_deref(),
                    Duration::from_secs(timeout_secs),
                    |p| tc.set_position(p.clamp(0.0, 100.0) as u64),
                )?;
                tc.finish();
            }
            if let Some(edge) = edge {
                println!(
                    "playback: {}/v/{}/master.m3u8",
                    edge.trim_end_matches('/'),
                    done.video_id
                );
            }
            Ok(())
        }
    }
}
