//! SIGTERM/SIGINT handling without a signal-handler function: the signals are blocked in every
//! thread (the mask is inherited, so this must run before any thread starts) and one dedicated
//! thread takes them synchronously with `sigwait(3)`. No async-signal-safety concerns, no
//! self-pipe, and the workers never see a signal.
//!
//! First signal: the process drains for the server's drain delay (`/readyz` answers 503 while
//! it still serves), then shuts down gracefully through the server's [`ShutdownHandle`].
//! Second signal: exit immediately (an operator who presses Ctrl-C twice means it).
//!
//! SIGHUP is taken the same way (also while draining): it reloads the TLS certificate and key
//! (new handshakes use them; open connections keep theirs); without TLS it is logged and
//! otherwise ignored.

use std::io;
use std::sync::Arc;

use crate::tls::TlsContext;
use crate::ShutdownHandle;

/// The set {SIGINT, SIGTERM, SIGHUP}.
fn termination_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use, and
    // sigaddset only writes into the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigemptyset(&mut set) != 0
            || libc::sigaddset(&mut set, libc::SIGINT) != 0
            || libc::sigaddset(&mut set, libc::SIGTERM) != 0
            || libc::sigaddset(&mut set, libc::SIGHUP) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// Block SIGINT/SIGTERM/SIGHUP in the calling thread and every thread it starts afterwards.
pub fn block_termination_signals() -> io::Result<()> {
    let set = termination_set()?;
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Start the thread that waits for SIGINT/SIGTERM and stops the server (SIGHUP: nothing to
/// reload).
pub fn spawn_signal_thread(shutdown: ShutdownHandle) -> io::Result<()> {
    spawn_signal_thread_with_reload(shutdown, None)
}

/// Like [`spawn_signal_thread`]; SIGHUP reloads `tls` (the server's [`crate::Server::tls_context`]).
pub fn spawn_signal_thread_with_reload(
    shutdown: ShutdownHandle,
    tls: Option<Arc<TlsContext>>,
) -> io::Result<()> {
    let set = termination_set()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = 0;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is initialised and blocked in this thread (inherited mask);
                // `sig` is a valid out-pointer.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc != 0 {
                    tracing::error!(error = %io::Error::from_raw_os_error(rc), "sigwait failed");
                    return;
                }
                if sig == libc::SIGHUP {
                    reload(tls.as_deref());
                    continue;
                }
                received += 1;
                if received == 1 {
                    shutdown.begin_drain();
                    let delay = shutdown.drain_delay();
                    if !delay.is_zero() {
                        tracing::info!(signal = sig, ?delay, "draining: /readyz answers 503");
                        if let Some(second) = wait_for_signal(&set, delay, tls.as_deref()) {
                            tracing::warn!(signal = second, "second signal: exiting now");
                            std::process::exit(128 + second);
                        }
                    }
                    tracing::info!(
                        signal = sig,
                        "shutting down: no new connections, finishing in-flight requests"
                    );
                    shutdown.trigger();
                } else {
                    tracing::warn!(signal = sig, "second signal: exiting now");
                    std::process::exit(128 + sig);
                }
            }
        })?;
    Ok(())
}

/// Wait up to `timeout` for one of `set` (blocked in this thread) other than SIGHUP (which
/// reloads `tls` and waits on); the signal, if one came.
fn wait_for_signal(
    set: &libc::sigset_t,
    timeout: std::time::Duration,
    tls: Option<&TlsContext>,
) -> Option<libc::c_int> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
        };
        // SAFETY: `set` is initialised and blocked in this thread; `ts` is a valid timespec and
        // a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
        if sig == libc::SIGHUP {
            reload(tls);
            continue;
        }
        if sig > 0 {
            return Some(sig);
        }
        // EAGAIN: timed out; EINTR: interrupted by another signal: recompute and wait again.
    }
}

fn reload(tls: Option<&TlsContext>) {
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: no TLS configured, nothing to reload");
        return;
    };
    let s = tls.settings();
    match tls.reload() {
        Ok(()) => tracing::info!(
            cert = %s.cert_path.display(),
            key = %s.key_path.display(),
            "SIGHUP: TLS certificate reloaded; new handshakes use it"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "SIGHUP: TLS reload failed; still serving the previous certificate"
        ),
    }
}
