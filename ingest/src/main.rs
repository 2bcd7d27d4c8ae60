//! `ringcast-ingest`: tus 1.0 upload server. See the crate docs and `ingest.example.toml`.

use std::process::ExitCode;

use clap::Parser;
use ringcast_ingest::config::Cli;

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
    ringcast_infra::telemetry::init(config.log_json);
    match ringcast_ingest::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ringcast-ingest failed");
            ExitCode::FAILURE
        }
    }
}
