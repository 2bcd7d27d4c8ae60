//! Running ffmpeg through ffmpeg-sidecar: spawn, turn its event iterator into async progress
//! updates, collect error lines for the failure message, kill on demand, report the exit.
//!
//! ffmpeg-sidecar's iterator is blocking and is fed through a zero-capacity channel by the
//! thread that parses stderr, so ffmpeg stalls if nobody iterates: one OS thread per process
//! drains it for the whole run and forwards what matters over a tokio channel. The child sits
//! behind a mutex so [`FfmpegProcess::kill`] can reach it while that thread waits on it;
//! std's `Child::kill` is a no-op once the child has been reaped, so a recycled pid is never
//! signalled.
//!
//! ffmpeg runs in a process group of its own, and a kill signals the whole group: whatever the
//! configured `ffmpeg_path` starts (a wrapper script, helpers it forks) dies with it, so no
//! orphan keeps writing into a job's pipes. The group is signalled only while its leader is
//! not yet reaped (the event thread reaps under the same lock), so its id cannot have been
//! reused.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use tokio::sync::mpsc;

use crate::error::TranscodeError;

/// Error lines kept for the failure message (the last ones are the useful ones).
const KEPT_ERROR_LINES: usize = 8;

/// What the event thread reports.
#[derive(Debug)]
pub enum FfmpegUpdate {
    /// A stats line: output timestamp reached in seconds (`None` while ffmpeg prints `N/A`),
    /// frames output so far, and speed (media seconds per wall second, 0 when unknown).
    Progress {
        out_time: Option<f64>,
        frame: u32,
        speed: f32,
    },
    /// The process has exited (and been reaped).
    Exited(io::Result<ExitStatus>),
}

/// A running ffmpeg. Dropping it kills the process if it is still running.
pub struct FfmpegProcess {
    child: Arc<Mutex<FfmpegChild>>,
    /// Set by the event thread, under the `child` lock, once it has reaped the process.
    reaped: Arc<AtomicBool>,
    errors: Arc<Mutex<VecDeque<String>>>,
    killed: AtomicBool,
    exited: bool,
    /// Progress and the final exit, in order.
    pub updates: mpsc::UnboundedReceiver<FfmpegUpdate>,
}

/// Parse ffmpeg's `time=` value (`HH:MM:SS.cc`, possibly negative at start) into seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut total = 0.0;
    for part in s.split(':') {
        let v: f64 = part.trim().parse().ok()?;
        total = total * 60.0 + v;
    }
    let total = if neg { -total } else { total };
    total.is_finite().then_some(total)
}

impl FfmpegProcess {
    /// Spawn `ffmpeg_path` with `args` and start draining its events.
    pub fn spawn(ffmpeg_path: &Path, args: &[OsString]) -> Result<Self, TranscodeError> {
        let spawn_err = |source| TranscodeError::Spawn {
            program: ffmpeg_path.display().to_string(),
            source,
        };
        let mut cmd = FfmpegCommand::new_with_path(ffmpeg_path);
        cmd.args(args);
        // Its own process group (pgid = its pid), so a kill reaches everything it started.
        cmd.as_inner_mut().process_group(0);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // Outputs go to FIFOs, not stdout. Taking stdout stops the iterator from starting its
        // stdout-frame reader, which would report a spurious "No streams found" error.
        drop(child.take_stdout());
        let iter = child
            .iter()
            .map_err(|e| spawn_err(io::Error::other(e.to_string())))?;
        let child = Arc::new(Mutex::new(child));
        let errors = Arc::new(Mutex::new(VecDeque::new()));
        let reaped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let (thread_child, thread_errors) = (Arc::clone(&child), Arc::clone(&errors));
        let thread_reaped = Arc::clone(&reaped);
        let started = std::thread::Builder::new()
            .name("ffmpeg-events".into())
            .spawn(move || {
                for event in iter {
                    match event {
                        FfmpegEvent::Progress(p) => {
                            let _ = tx.send(FfmpegUpdate::Progress {
                                out_time: parse_time(&p.time),
                                frame: p.frame,
                                speed: p.speed,
                            });
                        }
                        FfmpegEvent::Error(line)
                        | FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, line) => {
                            let mut e = lock(&thread_errors);
                            if e.len() == KEPT_ERROR_LINES {
                                e.pop_front();
                            }
                            e.push_back(line.trim().to_string());
                        }
                        _ => {}
                    }
                }
                // stderr is closed: ffmpeg has exited or is exiting, so this wait is short.
                let status = {
                    let mut c = lock(&thread_child);
                    let status = c.wait();
                    thread_reaped.store(true, Ordering::SeqCst);
                    status
                };
                let _ = tx.send(FfmpegUpdate::Exited(status));
            });
        if let Err(e) = started {
            kill_group(&mut lock(&child), &reaped);
            let _ = lock(&child).wait();
            return Err(TranscodeError::io("starting the ffmpeg event thread", e));
        }
        Ok(Self {
            child,
            reaped,
            errors,
            killed: AtomicBool::new(false),
            exited: false,
            updates: rx,
        })
    }

    /// SIGKILL ffmpeg and its process group (no-op once it has exited). Works on a stopped
    /// (SIGSTOP) process too.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        kill_group(&mut lock(&self.child), &self.reaped);
    }

    /// The process id (= its process group id).
    pub fn pid(&self) -> u32 {
        lock(&self.child).as_inner().id()
    }

    /// Wait for the next update; `None` after [`FfmpegUpdate::Exited`] has been delivered.
    pub async fn next_update(&mut self) -> Option<FfmpegUpdate> {
        if self.exited {
            return None;
        }
        let u = self.updates.recv().await;
        if matches!(u, Some(FfmpegUpdate::Exited(_)) | None) {
            self.exited = true;
        }
        u
    }

    /// Kill and wait until the process is gone.
    pub async fn kill_and_wait(&mut self) {
        self.kill();
        while self.next_update().await.is_some() {}
    }

    /// The collected error lines, one line.
    pub fn error_summary(&self) -> String {
        let e = lock(&self.errors);
        if e.is_empty() {
            "no error output".into()
        } else {
            e.iter().cloned().collect::<Vec<_>>().join("; ")
        }
    }

    /// Turn the exit status into the job's result. A signal we sent ourselves is reported by
    /// the caller (it knows why it killed), so this only sees foreign signals.
    pub fn check_exit(&self, status: io::Result<ExitStatus>) -> Result<(), TranscodeError> {
        let status = status.map_err(|e| TranscodeError::io("waiting for ffmpeg", e))?;
        if status.success() {
            return Ok(());
        }
        let message = self.error_summary();
        match (status.code(), status.signal()) {
            (Some(code), _) => Err(TranscodeError::FfmpegFailed { code, message }),
            (None, Some(signal)) => Err(TranscodeError::FfmpegKilled { signal, message }),
            (None, None) => Err(TranscodeError::FfmpegKilled { signal: 0, message }),
        }
    }

    /// Whether [`FfmpegProcess::kill`] was called.
    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl Drop for FfmpegProcess {
    fn drop(&mut self) {
        if !self.exited {
            // try_lock: the event thread holds the lock only while reaping an exiting process.
            if let Ok(mut c) = self.child.try_lock() {
                kill_group(&mut c, &self.reaped);
            }
        }
    }
}

/// SIGKILL the process group led by `child`, then the child itself (in case it left the
/// group). The caller holds the child's lock, so the event thread cannot reap it meanwhile: an
/// unreaped leader keeps its pid, hence its group id, from being reused.
fn kill_group(child: &mut FfmpegChild, reaped: &AtomicBool) {
    if !reaped.load(Ordering::SeqCst) {
        if let Ok(pgid) = libc::pid_t::try_from(child.as_inner().id()) {
            // SAFETY: plain syscall with no memory arguments; `pgid` is the group of our
            // unreaped child (see above), so no unrelated process group is signalled.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
}

/// Lock ignoring poisoning: the guarded values stay consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ffmpeg_times() {
        assert_eq!(parse_time("00:00:04.00"), Some(4.0));
        assert_eq!(parse_time("01:02:03.50"), Some(3723.5));
        assert_eq!(parse_time("-00:00:00.02"), Some(-0.02));
        assert_eq!(parse_time("N/A"), None);
    }

    #[tokio::test]
    async fn failing_ffmpeg_reports_its_error_lines() {
        let args: Vec<OsString> = ["-y", "-i", "/nonexistent/input.mp4", "-f", "null", "-"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut p = FfmpegProcess::spawn(Path::new("ffmpeg"), &args).expect("spawn");
        let status = loop {
            match p.next_update().await {
                Some(FfmpegUpdate::Exited(s)) => break s,
                Some(_) => {}
                None => panic!("no exit reported"),
            }
        };
        let err = p.check_exit(status).expect_err("fails");
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    /// A realtime (`-re`) encode of an endless test pattern: runs until killed.
    fn realtime_encode_args() -> Vec<OsString> {
        [
            "-y",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x64:rate=10",
            "-f",
            "null",
            "-",
        ]
        .iter()
        .map(OsString::from)
        .collect()
    }

    #[tokio::test]
    async fn kill_stops_a_long_run_and_is_seen_as_a_signal() {
        let args = realtime_encode_args();
        let mut p = FfmpegProcess::spawn(Path::new("ffmpeg"), &args).expect("spawn");
        // Wait for the first progress line so the kill hits a running encode.
        match p.next_update().await {
            Some(FfmpegUpdate::Progress { .. }) => {}
            other => panic!("expected progress first, got {other:?}"),
        }
        p.kill();
        assert!(p.was_killed());
        let status = loop {
            match p.next_update().await {
                Some(FfmpegUpdate::Exited(s)) => break s,
                Some(_) => {}
                None => panic!("no exit reported"),
            }
        };
        let err = p.check_exit(status).expect_err("killed");
        assert!(
            matches!(err, TranscodeError::FfmpegKilled { signal: 9, .. }),
            "{err}"
        );
        assert!(p.next_update().await.is_none());
    }

    /// Whether process `pid` is gone (or a zombie nobody reaps: a container's init may not).
    fn is_gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    /// A wrapper that forks ffmpeg instead of exec-ing it (the configured `ffmpeg_path` may be
    /// one): killing ffmpeg kills the whole process group, so the forked encoder dies too
    /// instead of running on (and holding stderr open, so the exit would never be seen).
    #[tokio::test]
    async fn kill_reaches_what_a_wrapper_forked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("inner.pid");
        let wrapper = dir.path().join("ffmpeg-forks");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nffmpeg \"$@\" &\necho $! > {:?}\nwait\n",
                pid_file.display().to_string()
            ),
        )
        .expect("write wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let args = realtime_encode_args();
        let mut p = FfmpegProcess::spawn(&wrapper, &args).expect("spawn");
        match p.next_update().await {
            Some(FfmpegUpdate::Progress { .. }) => {}
            other => panic!("expected progress first, got {other:?}"),
        }
        let inner: u32 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        assert!(!is_gone(inner));
        let waited =
            tokio::time::timeout(std::time::Duration::from_secs(10), p.kill_and_wait()).await;
        if waited.is_err() {
            // Leave nothing behind on failure either.
            // SAFETY: plain syscall; `inner` is the ffmpeg this test started.
            unsafe {
                libc::kill(inner as libc::pid_t, libc::SIGKILL);
            }
        }
        assert!(
            waited.is_ok(),
            "ffmpeg did not end: its forked encoder holds stderr open"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_gone(inner) {
            assert!(
                std::time::Instant::now() < deadline,
                "the forked ffmpeg {inner} survived the kill"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let err = FfmpegProcess::spawn(Path::new("/nonexistent/ffmpeg"), &[])
            .err()
            .expect("spawn fails");
        assert!(matches!(err, TranscodeError::Spawn { .. }) && !err.is_permanent());
    }
}
