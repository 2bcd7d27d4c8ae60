//! The `ringcast-edge` binary: CLI, config, logging, signals, then the server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ringcast_edge::config::ENV_CONFIG_FILE;
use ringcast_edge::{EdgeConfig, Overrides, Server};
use ringcast_proto::signed_url;
use ringcast_server::signals;

/// Thread-per-core HLS edge: serves `/v/...` from the object store through a memory cache.
#[derive(Debug, Parser)]
#[command(name = "ringcast-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print a signed playback URL path (path-token form, plus the query form) and exit.
    Sign {
        /// HMAC secret, the edge's `signed_urls.secret` (env RINGCAST_EDGE_SIGNED_URLS__SECRET).
        #[arg(
            long,
            env = "RINGCAST_EDGE_SIGNED_URLS__SECRET",
            hide_env_values = true
        )]
        secret: String,
        /// Path prefix the signature covers, e.g. /v/VIDEO/: ending in `/` it covers that folder,
        /// otherwise exactly one path.
        #[arg(long)]
        prefix: String,
        /// Path to sign a URL for (default: the prefix), e.g. /v/VIDEO/master.m3u8.
        #[arg(long)]
        path: Option<String>,
        /// Seconds from now until the URL expires.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn sign(secret: &str, prefix: &str, path: Option<&str>, ttl: u64) -> anyhow::Result<()> {
    let path = path.unwrap_or(prefix);
    anyhow::ensure!(
        signed_url::covers(prefix, path),
        "--prefix {prefix:?} does not cover --path {path:?} (a prefix covers the folder it names \
         when it ends in `/`, otherwise exactly one path)"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    let exp = now.saturating_add(ttl);
    let key = secret.as_bytes();
    println!("{}", signed_url::signed_path(key, prefix, exp, path));
    println!("{path}?{}", signed_url::signed_query(key, prefix, exp));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Sign {
        secret,
        prefix,
        path,
        ttl,
    }) = &cli.command
    {
        return sign(secret, prefix, path.as_deref(), *ttl);
    }
    // Before any thread exists, so every thread inherits the blocked mask and only the signal
    // thread receives SIGINT/SIGTERM.
    signals::block_termination_signals().context("blocking SIGINT/SIGTERM/SIGHUP")?;
    let overrides = Overrides {
        listen: cli.listen,
        workers: cli.workers,
        origin_dir: cli.origin_dir,
        origin_url: cli.origin_url,
        disk_cache_dir: cli.disk_cache_dir,
    };
    let cfg =
        EdgeConfig::load(cli.config.as_deref(), &overrides).context("loading configuration")?;
    ringcast_infra::telemetry::init(cfg.log_json);
    ringcast_infra::rlimit::raise_nofile_logged("edge");
    ringcast_infra::trace_export::init("edge", &cfg.telemetry).map_err(anyhow::Error::msg)?;
    let server = Server::start(&cfg).context("starting ringcast-edge")?;
    signals::spawn_signal_thread_with_reload(server.shutdown_handle(), server.tls_context())
        .context("starting the signal thread")?;
    server.wait();
    tracing::info!("ringcast-edge stopped");
    Ok(())
}
