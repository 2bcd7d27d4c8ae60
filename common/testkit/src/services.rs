//! The three ringcast services as processes: how each binary is started (clean environment,
//! its config file, the monoio driver), when it counts as ready, and the handle tests hold.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::config::{Context, EdgeOptions, IngestOptions, TranscoderOptions};
use crate::http::{self, Conn, Response};
use crate::process::{cargo_bin, free_port, wait_until, Process};

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ingest,
    Edge,
    Transcoder,
}

impl Kind {
    /// The workspace binary.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Ingest => "ringcast-ingest",
            Kind::Edge => "ringcast-edge",
            Kind::Transcoder => "ringcast-transcoder",
        }
    }

    /// Prefix of the environment variables the service reads its config from.
    fn env_prefix(self) -> &'static str {
        match self {
            Kind::Ingest => "RINGCAST_INGEST_",
            Kind::Edge => "RINGCAST_EDGE_",
            Kind::Transcoder => "RINGCAST_TRANSCODER_",
        }
    }

    /// `RUST_LOG` of the process: the crate's debug lines where tests read them from the log
    /// (ingest, transcoder); the edge's default `info` (its access log and start-up lines).
    fn log_filter(self) -> Option<&'static str> {
        match self {
            Kind::Ingest => Some("info,ringcast_ingest=debug"),
            Kind::Edge => None,
            Kind::Transcoder => Some("info,ringcast_transcoder=debug"),
        }
    }

    /// Only the monoio services have a driver to choose.
    fn monoio(self) -> bool {
        matches!(self, Kind::Ingest | Kind::Edge)
    }
}

/// The service's binary with nothing configured yet: no `RINGCAST_{SERVICE}_*` variable from
/// the test's environment (a developer's shell must not reconfigure tests), plain log text, and
/// the monoio driver chosen explicitly. For tests of the binary's own CLI (flags, config
/// precedence, subcommands); everything else starts services through [`crate::Stack`].
pub fn command(kind: Kind, legacy_driver: bool) -> Command {
    let mut cmd = Command::new(cargo_bin(kind.binary()));
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with(kind.env_prefix())) {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    match kind.log_filter() {
        Some(filter) => cmd.env("RUST_LOG", filter),
        None => cmd.env_remove("RUST_LOG"),
    };
    if kind.monoio() && legacy_driver {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    } else {
        cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
    }
    cmd
}

/// Options of any one service (what [`crate::Stack::spawn`] takes).
#[derive(Debug, Clone)]
pub enum ServiceOptions {
    Ingest(IngestOptions),
    Edge(EdgeOptions),
    Transcoder(TranscoderOptions),
}

impl From<IngestOptions> for ServiceOptions {
    fn from(o: IngestOptions) -> Self {
        Self::Ingest(o)
    }
}

impl From<EdgeOptions> for ServiceOptions {
    fn from(o: EdgeOptions) -> Self {
        Self::Edge(o)
    }
}

impl From<TranscoderOptions> for ServiceOptions {
    fn from(o: TranscoderOptions) -> Self {
        Self::Transcoder(o)
    }
}

impl ServiceOptions {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Ingest(_) => Kind::Ingest,
            Self::Edge(_) => Kind::Edge,
            Self::Transcoder(_) => Kind::Transcoder,
        }
    }

    pub fn name(&self) -> &str {
        &self.common().name
    }

    /// An ingest's `node_tag`, if it has one.
    pub(crate) fn node_tag(&self) -> Option<&str> {
        match self {
            Self::Ingest(o) => o.tag(),
            _ => None,
        }
    }

    fn common(&self) -> &crate::config::Common {
        match self {
            Self::Ingest(o) => o.common(),
            Self::Edge(o) => o.common(),
            Self::Transcoder(o) => o.common(),
        }
    }

    /// Directory of the service's own state: the ingest's spool, the transcoder's scratch
    /// space; unused by the edge (its disk tier is the caller's directory).
    fn state_dir(&self, stack_dir: &std::path::Path) -> PathBuf {
        match self {
            Self::Transcoder(_) => stack_dir.join(format!("{}-work", self.name())),
            _ => stack_dir.join(self.name()),
        }
    }
}

/// How long a service may take to become ready (debug builds on two busy cores).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running service: killed on drop, its log printed when the test panics.
pub struct Service {
    pub name: String,
    pub kind: Kind,
    /// The HTTP address: the ingest's and the edge's listener, the transcoder's `/metrics`.
    pub addr: SocketAddr,
    /// See [`ServiceOptions`]: the ingest's `data_dir`, the transcoder's `work_dir`.
    pub state_dir: PathBuf,
    /// The HTTPS address (a service started with `.tls(..)`).
    pub tls_addr: Option<SocketAddr>,
    /// The config file it was started with.
    pub config_path: PathBuf,
    pub process: Process,
}

impl Service {
    /// Write the config file into `stack_dir` and start the process (not yet ready).
    pub(crate) fn spawn(
        opts: &ServiceOptions,
        stack_dir: &std::path::Path,
        store: &ringcast_infra::config::StoreConfig,
        redis_url: Option<&str>,
        ingest_nodes: &[(String, SocketAddr)],
    ) -> Self {
        let port = opts.common().port.unwrap_or_else(free_port);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let tls_addr = opts
            .common()
            .tls
            .as_ref()
            .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let state_dir = opts.state_dir(stack_dir);
        let ctx = Context {
            store,
            redis_url,
            addr,
            tls_addr,
            state_dir: &state_dir,
            ingest_nodes,
        };
        let table = match opts {
            ServiceOptions::Ingest(o) => o.render(&ctx),
            ServiceOptions::Edge(o) => o.render(&ctx),
            ServiceOptions::Transcoder(o) => o.render(&ctx),
        };
        let common = opts.common();
        let text = crate::config::file_text(table, common);
        let config_path = stack_dir.join(format!("{}.toml", common.name));
        std::fs::write(&config_path, text).expect("write service config");
        let kind = opts.kind();
        let mut cmd = command(kind, common.legacy_driver);
        cmd.arg("--config").arg(&config_path);
        cmd.envs(common.env.iter().map(|(k, v)| (k, v)));
        let process = Process::spawn(&common.name, cmd, stack_dir);
        Self {
            name: common.name.clone(),
            kind,
            addr,
            tls_addr,
            state_dir,
            config_path,
            process,
        }
    }

    /// Wait until the service answers `/healthz` with 200; the ingest and the edge also until
    /// they logged `listening on http://{addr}`, which they do once every worker has bound
    /// (worker 0 answers before the others are up). Panics with the log if the process exits.
    pub fn wait_ready(&mut self) {
        let addr = self.addr;
        let listening = format!("listening on http://{addr}");
        let https = self.tls_addr.map(|a| format!("listening on https://{a}"));
        let needs_line = self.kind.monoio();
        let process = &mut self.process;
        wait_until(READY_TIMEOUT, &format!("{} to be ready", self.name), || {
            process.assert_running();
            let log = process.log_text();
            (!needs_line || log.contains(&listening))
                && https.as_ref().is_none_or(|l| log.contains(l))
                && http::get(addr, "/healthz").is_ok_and(|r| r.status == 200)
        });
    }

    /// `http://{addr}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://localhost:{tls port}` (the name the test certificates carry); panics without
    /// TLS.
    pub fn https_url(&self) -> String {
        let addr = self.tls_addr.expect("service started without .tls(..)");
        format!("https://localhost:{}", addr.port())
    }

    /// One GET on a fresh connection; panics with the log when the request fails.
    pub fn get(&self, target: &str) -> Response {
        http::get(self.addr, target).unwrap_or_else(|e| {
            panic!(
                "GET {target} on {}: {e}\n{}",
                self.name,
                self.process.log_text()
            )
        })
    }

    /// A keep-alive connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr)
            .unwrap_or_else(|e| panic!("connect to {} at {}: {e}", self.name, self.addr))
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{} /metrics", self.name);
        r.text()
    }

    /// One sample of `/metrics` (see [`crate::metrics::sample`]), `None` when missing.
    pub fn metric<T: std::str::FromStr>(&self, series: &str) -> Option<T> {
        crate::metrics::sample(&self.metrics(), series)
    }

    /// An integer sample that must exist (counters, gauges of counts).
    pub fn counter(&self, series: &str) -> u64 {
        let text = self.metrics();
        crate::metrics::sample(&text, series)
            .unwrap_or_else(|| panic!("{series} missing from {} /metrics:\n{text}", self.name))
    }

    /// A sample that must exist, as a float (durations, sums).
    pub fn value(&self, series: &str) -> f64 {
        let text = self.metrics();
        crate::metrics::sample(&text, series)
            .unwrap_or_else(|| panic!("{series} missing from {} /metrics:\n{text}", self.name))
    }

    /// The process log so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}
