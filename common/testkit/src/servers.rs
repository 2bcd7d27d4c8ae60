//! Real Redis and S3 servers for integration tests (the infrastructure the services talk to).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, wait_for_tcp, wait_until, Process};
use crate::tempdir::TempDir;
use ringcast_infra::config::{StoreBackend, StoreConfig};

/// Find an executable on PATH or in `~/.cargo/bin` (where `cargo install` puts s3s-fs).
fn find_exe(name: &str) -> PathBuf {
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

/// A private redis-server on a free port; stopped on drop.
pub struct RedisServer {
    pub port: u16,
    pub url: String,
    _dir: TempDir,
    _proc: Process,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = TempDir::new("redis");
        let port = free_port();
        let mut cmd = Command::new(find_exe("redis-server"));
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(dir.path());
        let proc = Process::spawn("redis-server", cmd, dir.path());
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_tcp(addr, Duration::from_secs(10));
        wait_until(Duration::from_secs(10), "redis PING", || ping(addr));
        Self {
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
            _dir: dir,
            _proc: proc,
        }
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

/// A private s3s-fs S3 server on a free port; stopped on drop.
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    _dir: TempDir,
    _proc: Process,
}

impl S3Server {
    pub fn start() -> Self {
        let dir = TempDir::new("s3");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("s3 data dir");
        let port = free_port();
        let (access_key, secret_key) =
            ("ringcasttest".to_string(), "ringcasttestsecret".to_string());
        let mut cmd = Command::new(find_exe("s3s-fs"));
        cmd.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            &access_key,
            "--secret-key",
            &secret_key,
        ])
        .arg(&data);
        let proc = Process::spawn("s3s-fs", cmd, dir.path());
        wait_for_tcp(([127, 0, 0, 1], port).into(), Duration::from_secs(10));
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            _dir: dir,
            _proc: proc,
        }
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
