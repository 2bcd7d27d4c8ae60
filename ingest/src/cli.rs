//! The `ringcast-ingest` command line: flags over the config ([`Cli::load_config`]), and the
//! operator commands that run instead of the server ([`Command`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ringcast_infra::config::ConfigError;

use crate::config::IngestConfig;
use crate::keys_cli::KeysCommand;

/// Command line of the `ringcast-ingest` binary. Flags override the file and the environment.
#[derive(Debug, Parser)]
#[command(
    name = "ringcast-ingest",
    version,
    about = "ringcast ingest: tus 1.0 resumable uploads → object store + transcode job"
)]
pub struct Cli {
    /// Without a command the server runs; `keys …` manages API keys and exits.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML config file (see ingest/ingest.example.toml); RINGCAST_INGEST_* env vars override it.
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8081 (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Worker threads, one monoio runtime each; 0 = one per core (overrides `workers`).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

impl Cli {
    /// The effective configuration: file, then env, then these flags.
    pub fn load_config(&self) -> Result<IngestConfig, ConfigError> {
        let mut cfg = IngestConfig::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            cfg.listen = listen;
        }
        if let Some(workers) = self.workers {
            cfg.workers = workers;
        }
        cfg.validated()
    }
}

/// What the binary does instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create, list and revoke API keys in the config's Redis, then exit.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_flags_parse() {
        let cli = Cli::try_parse_from([
            "ringcast-ingest",
            "--listen",
            "127.0.0.1:1",
            "--workers",
            "2",
        ])
        .expect("parse");
        assert_eq!(cli.workers, Some(2));
        assert_eq!(cli.listen.map(|a| a.port()), Some(1));
        assert!(Cli::try_parse_from(["ringcast-ingest", "--listen", "nope"]).is_err());
    }

    #[test]
    fn keys_command_parses() {
        let cli = Cli::try_parse_from(["ringcast-ingest", "keys", "list", "--config", "x.toml"])
            .expect("parse");
        assert!(matches!(cli.command, Some(Command::Keys { .. })));
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
    }
}
