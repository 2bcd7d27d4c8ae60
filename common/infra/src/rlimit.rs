//! The open-file limit of a serving process, raised at start: every connection, spool file,
//! cached object and child pipe is a descriptor, and the usual soft limit (1024) would stop a
//! server at about a thousand clients — trickling ones included — long before any of its own
//! limits (`max_connections_per_worker`) apply. The soft limit goes up to the hard one (no
//! privilege needed); the result is logged so an operator sees what the process got.

use std::io;

/// The open-file limit before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub after: u64,
    pub hard: u64,
}

/// Raise `RLIMIT_NOFILE`'s soft limit to its hard limit (an unlimited hard limit is capped at
/// `fs.nr_open`'s usual default, 1 048 576, which setrlimit accepts).
pub fn raise_nofile() -> io::Result<NofileLimit> {
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return Err(io::Error::last_os_error());
        }
        let before = l.rlim_cur as u64;
        let hard = l.rlim_max as u64;
        let target = if l.rlim_max == libc::RLIM_INFINITY {
            1 << 20
        } else {
            l.rlim_max
        };
        if l.rlim_cur != libc::RLIM_INFINITY && l.rlim_cur < target {
            l.rlim_cur = target;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut now: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NofileLimit {
            before,
            after: now.rlim_cur as u64,
            hard,
        })
    }
}

/// [`raise_nofile`], logged (`open-file limit` with before/after/hard); a failure is logged as
/// a warning and the process carries on with the limit it has.
pub fn raise_nofile_logged(service: &str) {
    match raise_nofile() {
        Ok(l) => tracing::info!(
            service,
            before = l.before,
            after = l.after,
            hard = l.hard,
            "open-file limit (RLIMIT_NOFILE) raised to the hard limit"
        ),
        Err(e) => tracing::warn!(service, error = %e, "could not raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_reaches_hard() {
        let l = super::raise_nofile().expect("raise");
        assert!(l.after >= l.before);
        assert!(l.after == l.hard || l.hard > 1 << 20, "{l:?}");
    }
}
