//! [`Clamd`]: a private clamd (Debian `clamav-daemon`) for virus-scan tests, on a free loopback
//! port, with a signature database the kit writes itself (the public signature download is not
//! reachable from test machines): one `.ndb` hex signature of the EICAR test string, matched
//! anywhere in a file. Stopped on drop; outage tests stop it and start it again on the same port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, wait_until, Process};
use crate::tempdir::TempDir;

/// The EICAR anti-virus test string (68 bytes; harmless, recognised by every scanner).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The name of the kit's signature; clamd reports it as `{SIGNATURE}.UNOFFICIAL`.
pub const SIGNATURE: &str = "Ringcast.Test.EICAR";

/// A running clamd (see the module docs).
pub struct Clamd {
    pub port: u16,
    /// `127.0.0.1:{port}`, the value of the ingest's `scan.clamd`.
    pub addr: String,
    /// Its unix socket (it listens on both), for `scan.clamd = "/…"`.
    pub socket: PathBuf,
    /// The `StreamMaxLength` it was started with.
    pub stream_max_bytes: u64,
    dir: TempDir,
    proc: Option<Process>,
}

/// Where clamd is installed by `scripts/install-deps` (Debian's `clamav-daemon`).
fn clamd_exe() -> PathBuf {
    for p in ["/usr/sbin/clamd", "/usr/bin/clamd", "/usr/local/sbin/clamd"] {
        if std::path::Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("clamd not found: run scripts/install-deps --test (Debian package clamav-daemon)")
}

impl Clamd {
    /// Start clamd with the EICAR signature and a `StreamMaxLength` of `stream_max_bytes`;
    /// ready when it answers `PING`.
    pub fn start(stream_max_bytes: u64) -> Self {
        let dir = TempDir::new("clamd");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).expect("clamd db dir");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("clamd tmp dir");
        std::fs::write(
            db.join("test.ndb"),
            format!("{SIGNATURE}:0:*:{}\n", hex(EICAR)),
        )
        .expect("write the test signature");
        let port = free_port();
        let conf = format!(
            "Foreground yes\nDatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n\
             StreamMaxLength {stream_max_bytes}\nTemporaryDirectory {tmp}\nPidFile {pid}\n\
             LocalSocket {sock}\nLogTime yes\nMaxThreads 4\n",
            sock = dir.path().join("clamd.sock").display(),
            db = db.display(),
            tmp = dir.path().join("tmp").display(),
            pid = dir.path().join("clamd.pid").display(),
        );
        std::fs::write(dir.path().join("clamd.conf"), conf).expect("write clamd.conf");
        let mut c = Self {
            port,
            addr: format!("127.0.0.1:{port}"),
            socket: dir.path().join("clamd.sock"),
            stream_max_bytes,
            dir,
            proc: None,
        };
        c.restart();
        c
    }

    /// Start clamd (again) on its port and wait until it answers `PING`.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "clamd is already running");
        let mut cmd = Command::new(clamd_exe());
        cmd.arg(format!(
            "--config-file={}",
            self.dir.path().join("clamd.conf").display()
        ));
        self.proc = Some(Process::spawn("clamd", cmd, self.dir.path()));
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        wait_until(Duration::from_secs(60), "clamd PING", || {
            if let Some(p) = self.proc.as_mut() {
                p.assert_running();
            }
            ping(addr)
        });
    }

    /// Kill clamd (SIGKILL); nothing listens on its port until [`Clamd::restart`].
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait();
        }
    }

    /// Freeze (`true`, SIGSTOP: connections are accepted by the kernel, nothing answers) or
    /// thaw (`false`) clamd.
    pub fn pause(&mut self, paused: bool) {
        let p = self.proc.as_mut().expect("clamd is not running");
        p.signal(if paused { libc::SIGSTOP } else { libc::SIGCONT });
    }

    /// The `[scan]` section of an ingest config pointing at this clamd.
    pub fn ingest_toml(&self, timeout_secs: u64) -> String {
        format!(
            "[scan]\nclamd = {:?}\ntimeout_secs = {timeout_secs}\nmax_stream_bytes = {}\n",
            self.addr, self.stream_max_bytes
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ping(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"zPING\0").is_ok()
        && s.read(&mut buf)
            .map(|n| buf[..n].starts_with(b"PONG"))
            .unwrap_or(false)
}
