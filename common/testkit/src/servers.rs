//! Real Redis and S3 servers for integration tests (the infrastructure the services talk to).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, wait_for_tcp, wait_until, Process};
use crate::tempdir::TempDir;
use ringcast_infra::config::{StoreBackend, StoreConfig};

/// Find an executable on PATH or in `~/.cargo/bin` (where `cargo install` puts s3s-fs).
pub(crate) fn find_exe(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH or in ~/.cargo/bin: run scripts/install-deps first")
        })
}

/// A private redis-server on a free port, without persistence; stopped on drop. Outage tests
/// can stop it and start it again on the same port: it comes back empty, as a Redis without
/// persistence does after a crash; or pause it (a hung server).
pub struct RedisServer {
    pub port: u16,
    pub url: String,
    dir: TempDir,
    proc: Option<Process>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = free_port();
        let mut s = Self {
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
            dir: TempDir::new("redis"),
            proc: None,
        };
        s.restart();
        s
    }

    /// Start the server (again) on its port and wait until it answers PING.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "redis-server is already running");
        let mut cmd = Command::new(find_exe("redis-server"));
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(self.dir.path());
        self.proc = Some(Process::spawn("redis-server", cmd, self.dir.path()));
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        wait_for_tcp(addr, Duration::from_secs(10));
        wait_until(Duration::from_secs(10), "redis PING", || ping(addr));
    }

    /// Kill the server (SIGKILL, as a crash); everything it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait();
        }
    }

    /// Freeze (`true`, SIGSTOP: connections stay open and nothing answers, as from a hung
    /// server) or thaw (`false`, SIGCONT) the server; it keeps its data.
    pub fn pause(&mut self, paused: bool) {
        let p = self.proc.as_mut().expect("redis-server is not running");
        p.signal(if paused { libc::SIGSTOP } else { libc::SIGCONT });
    }
}

fn ping(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .map(|n| &buf[..n] == b"+PONG\r\n")
            .unwrap_or(false)
}

/// A private s3s-fs S3 server on a free port; stopped on drop. Tests of outages can pause it
/// (a hung server), stop it (a crashed one) and start it again on the same port and data.
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    port: u16,
    dir: TempDir,
    proc: Option<Process>,
}

impl S3Server {
    pub fn start() -> Self {
        let dir = TempDir::new("s3");
        std::fs::create_dir_all(dir.path().join("data")).expect("s3 data dir");
        let port = free_port();
        let mut s = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: "ringcasttest".to_string(),
            secret_key: "ringcasttestsecret".to_string(),
            port,
            dir,
            proc: None,
        };
        s.restart();
        s
    }

    /// Start the server (again), on its port with its data, and wait until it accepts.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "s3s-fs is already running");
        let mut cmd = Command::new(find_exe("s3s-fs"));
        cmd.args([
            "--host",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--access-key",
            &self.access_key,
            "--secret-key",
            &self.secret_key,
        ])
        .arg(self.dir.path().join("data"));
        self.proc = Some(Process::spawn("s3s-fs", cmd, self.dir.path()));
        wait_for_tcp(([127, 0, 0, 1], self.port).into(), Duration::from_secs(10));
    }

    /// Kill the server (SIGKILL, as a crash); its data stays for [`S3Server::restart`].
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait();
        }
    }

    /// Freeze (`true`, SIGSTOP: connections are accepted by the kernel and never answered, as
    /// from a hung server) or thaw (`false`, SIGCONT) the server.
    pub fn pause(&mut self, paused: bool) {
        let p = self.proc.as_mut().expect("s3s-fs is not running");
        p.signal(if paused { libc::SIGSTOP } else { libc::SIGCONT });
    }

    /// Store config pointing at this server (bucket `ringcast`).
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::S3,
            endpoint: self.endpoint.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            ..StoreConfig::default()
        }
    }
}
