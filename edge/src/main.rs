//! The `ringcast-edge` binary: CLI, config, logging, signals, then the server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ringcast_edge::config::ENV_CONFIG_FILE;
use ringcast_edge::{signals, EdgeConfig, Overrides, Server};

/// Thread-per-core HLS edge: serves `/v/...` from the object store through a memory cache.
#[derive(Debug, Parser)]
#[command(name = "ringcast-edge", version, about)]
struct Cli {
    /// TOML config file (see edge.example.toml). Env vars RINGCAST_EDGE_* override it.
    #[arg(long, value_name = "PATH", env = ENV_CONFIG_FILE)]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080 (overrides file and env).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Worker threads, one monoio runtime each (overrides file and env).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Serve this directory as the origin (read-only) instead of the object store.
    #[arg(long, value_name = "DIR", conflicts_with = "origin_url")]
    origin_dir: Option<PathBuf>,
    /// Proxy this plain HTTP/1.1 origin, http://host:port[/prefix], instead of the object store.
    #[arg(long, value_name = "URL")]
    origin_url: Option<String>,
    /// Directory of the disk tier (large immutable objects, sent with sendfile).
    #[arg(long, value_name = "DIR")]
    disk_cache_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before any thread exists, so every thread inherits the blocked mask and only the signal
    // thread receives SIGINT/SIGTERM.
    signals::block_termination_signals().context("blocking SIGINT/SIGTERM")?;
    let overrides = Overrides {
        listen: cli.listen,
        workers: cli.workers,
        origin_dir: cli.origin_dir,
        origin_url: cli.origin_url,
        disk_cache_dir: cli.disk_cache_dir,
    };
    let cfg =
        EdgeConfig::load(cli.config.as_deref(), &overrides).context("loading configuration")?;
    ringcast_common::telemetry::init(cfg.log_json);
    let server = Server::start(&cfg).context("starting ringcast-edge")?;
    signals::spawn_signal_thread(server.shutdown_handle()).context("starting the signal thread")?;
    server.wait();
    tracing::info!("ringcast-edge stopped");
    Ok(())
}
