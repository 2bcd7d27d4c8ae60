//! Child processes that die with the test, free ports, readiness waits, workspace binaries.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ports handed out by [`free_port`]: below Linux's default ephemeral range (32768–60999).
/// A port the kernel picked with `bind(0)` comes from that range, where every outgoing
/// connection of every test also takes its local port: between releasing the port and the
/// service binding it, a client socket could take it ("Address already in use").
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests on loopback),
/// chosen at random in [`TEST_PORTS`] so that parallel tests and client sockets rarely meet it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let span = u64::from(TEST_PORTS.end - TEST_PORTS.start);
    for _ in 0..1000 {
        // RandomState is seeded per process; the counter varies it per call.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u32(std::process::id());
        let port = TEST_PORTS.start + (h.finish() % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Claim `port` for this process among every test process on the machine: a lock file per
/// port, `flock`ed until this process exits. The bind check alone is not enough: the services
/// bind with `SO_REUSEPORT`, so when two tests running at once (nextest runs each in its own
/// process) picked the same free port, both servers would bind it and the kernel would spread
/// each test's connections over both (seen in CI: a front-door test's node answered by another
/// test's server). `true` also when no lock file can be made (the bind check then stands alone).
fn claim(port: u16) -> bool {
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join("ringcast-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return true;
    };
    // SAFETY: flock(2) on a descriptor this function owns; no memory is touched.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    // Held (and the lock with it) until the process exits.
    std::mem::forget(file);
    true
}

/// Poll `check` every 20 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until something accepts TCP connections at `addr`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) {
    wait_until(timeout, &format!("TCP listener on {addr}"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// A child process killed (SIGKILL after SIGTERM grace) when dropped. Its stderr/stdout go to
/// a log file; when the test is panicking, dropping the process prints that log, so every
/// failing test shows what its servers said without asking for it.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

/// Most of a log printed when a test panics: the end of it, where the failure is.
const LOG_TAIL_BYTES: usize = 64 * 1024;

impl Process {
    /// Spawn `cmd` with output captured into `log_dir/{name}.log` (`{name}.2.log`, … when a
    /// process of that name ran there before, e.g. a service restarted by the test, so the
    /// earlier log survives for the failure message).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Self {
        let log = (1..)
            .map(|n| match n {
                1 => log_dir.join(format!("{name}.log")),
                n => log_dir.join(format!("{name}.{n}.log")),
            })
            .find(|p| !p.exists())
            .expect("a free log file name");
        let file = std::fs::File::create(&log).expect("create log file");
        let file2 = file.try_clone().expect("clone log file");
        cmd.stdin(Stdio::null()).stdout(file).stderr(file2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Self {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The process log so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panic with the log if the process has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit on its own (a client run to completion, e.g. a publisher).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child
            .wait()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.name))
    }

    /// Print the end of the log to stderr (the test harness shows it with the failure).
    pub fn print_log(&self) {
        let text = self.log_text();
        let tail = match text.len().checked_sub(LOG_TAIL_BYTES) {
            Some(start) => {
                let start = (start..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                format!("[… first {start} bytes cut]\n{}", &text[start..])
            }
            None => text,
        };
        eprintln!(
            "----- {} log ({}) -----\n{tail}\n----- end of {} log -----",
            self.name,
            self.log.display(),
            self.name
        );
    }

    /// Send `signal` (e.g. `libc::SIGSTOP` to make a server hang, `SIGCONT` to resume it).
    pub fn signal(&mut self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// SIGTERM, then wait up to `grace` for exit; returns the exit status if it exited.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate(Duration::from_secs(3));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Path of workspace binary `name` (e.g. `ringcast-edge`). The first call runs
/// `cargo build --workspace --bins` (the same command `scripts/test` runs first, so it is a
/// no-op there): building one package's binary alone would resolve features differently and
/// rebuild shared dependencies. `cargo test` from a fresh clone therefore still works.
pub fn cargo_bin(name: &str) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    // This crate is `common/testkit`: the workspace is two levels up.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf();
    let release = std::env::var("RINGCAST_TEST_RELEASE").is_ok_and(|v| v == "1");
    {
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if !*built {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(&workspace)
                .args(["build", "--quiet", "--workspace", "--bins"]);
            // Cargo sets these for the test process; build scripts (ring's) watch some of them,
            // so passing them on would rebuild half the tree for every test binary.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key == "CARGO_MANIFEST_DIR"
                    || key == "CARGO_MANIFEST_PATH"
                    || key == "CARGO_CRATE_NAME"
                    || key == "CARGO_PRIMARY_PACKAGE"
                    || key == "CARGO_TARGET_TMPDIR"
                    || key.starts_with("CARGO_PKG_")
                    || key.starts_with("CARGO_BIN_")
                {
                    cmd.env_remove(key.as_ref());
                }
            }
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "cargo build --workspace --bins failed");
            *built = true;
        }
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"));
    let path = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

#[cfg(test)]
mod tests {
    /// A port handed out is held: no other test process (nor this one) can claim it again.
    #[test]
    fn a_handed_out_port_cannot_be_claimed_again() {
        let port = super::free_port();
        assert!(!super::claim(port), "port {port} claimed twice");
    }
}
