//! Running ffmpeg through ffmpeg-sidecar: spawn, turn its event iterator into async progress
//! updates, collect error lines for the failure message, kill on demand, report the exit.
//!
//! ffmpeg-sidecar's iterator is blocking and is fed through a zero-capacity channel by the
//! thread that parses stderr, so ffmpeg stalls if nobody iterates: one OS thread per process
//! drains it for the whole run and forwards what matters over a tokio channel. The child sits
//! behind a mutex so [`FfmpegProcess::kill`] can reach it while that thread waits on it;
//! std's `Child::kill` is a no-op once the child has been reaped, so a recycled pid is never
//! signalled.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
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
    /// Output timestamp reached, in seconds.
    Progress { out_time: f64 },
    /// The process has exited (and been reaped).
    Exited(io::Result<ExitStatus>),
}

/// A running ffmpeg. Dropping it kills the process if it is still running.
pub struct FfmpegProcess {
    child: Arc<Mutex<FfmpegChild>>,
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
        let mut child = FfmpegCommand::new_with_path(ffmpeg_path)
            .args(args)
            .spawn()
            .map_err(spawn_err)?;
        // Outputs go to FIFOs, not stdout. Taking stdout stops the iterator from starting its
        // stdout-frame reader, which would report a spurious "No streams found" error.
        drop(child.take_stdout());
        let iter = child
            .iter()
            .map_err(|e| spawn_err(io::Error::other(e.to_string())))?;
        let child = Arc::new(Mutex::new(child));
        let errors = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (thread_child, thread_errors) = (Arc::clone(&child), Arc::clone(&errors));
        let started = std::thread::Builder::new()
            .name("ffmpeg-events".into())
            .spawn(move || {
                for event in iter {
                    match event {
                        FfmpegEvent::Progress(p) => {
                            if let Some(out_time) = parse_time(&p.time) {
                                let _ = tx.send(FfmpegUpdate::Progress { out_time });
                            }
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
                let status = lock(&thread_child).wait();
                let _ = tx.send(FfmpegUpdate::Exited(status));
            });
        if let Err(e) = started {
            let _ = lock(&child).kill();
            let _ = lock(&child).wait();
            return Err(TranscodeError::io("starting the ffmpeg event thread", e));
        }
        Ok(Self {
            child,
            errors,
            killed: AtomicBool::new(false),
            exited: false,
            updates: rx,
        })
    }

    /// SIGKILL ffmpeg (no-op once it has exited).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let _ = lock(&self.child).kill();
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
                let _ = c.kill();
            }
        }
    }
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

    #[tokio::test]
    async fn kill_stops_a_long_run_and_is_seen_as_a_signal() {
        let args: Vec<OsString> = [
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
        .collect();
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

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let err = FfmpegProcess::spawn(Path::new("/nonexistent/ffmpeg"), &[])
            .err()
            .expect("spawn fails");
        assert!(matches!(err, TranscodeError::Spawn { .. }) && !err.is_permanent());
    }
}
