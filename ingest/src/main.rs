//! `ringcast-ingest`: tus 1.0 upload server. See the crate docs and `ingest.example.toml`.
//! `ringcast-ingest keys …` manages API keys instead (`ringcast_ingest::keys_cli`).

use std::process::ExitCode;

use clap::Parser;
use ringcast_infra::queue::Queue;
use ringcast_ingest::cli::{Cli, Command};
use ringcast_ingest::keys_cli::{self, KeysCommand};
use ringcast_ingest::IngestConfig;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.load_config() {
        Ok(c) => c,
        Err(e) => {
            // Logging is configured by the config itself, so this one goes straight to stderr.
            eprintln!("ringcast-ingest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Keys { command }) = &cli.command {
        return keys(&config, command);
    }
    ringcast_infra::telemetry::init(config.log_json);
    ringcast_infra::rlimit::raise_nofile_logged("ingest");
    if let Err(e) = ringcast_infra::trace_export::init("ingest", &config.telemetry) {
        eprintln!("ringcast-ingest: {e}");
        return ExitCode::from(2);
    }
    match ringcast_ingest::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ringcast-ingest failed");
            ExitCode::FAILURE
        }
    }
}

/// `keys …`: one command against the config's Redis, its result on stdout, errors on stderr.
fn keys(config: &IngestConfig, command: &KeysCommand) -> ExitCode {
    let mut runtime = match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringcast-ingest: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let queue = Queue::connect(&config.redis.url).await?;
        keys_cli::run(command, &queue).await
    });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcast-ingest keys: {e}");
            ExitCode::FAILURE
        }
    }
}
