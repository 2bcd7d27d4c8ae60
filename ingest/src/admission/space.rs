//! The spool's free-space reserve: before a creation or a PATCH body is taken, the spool's
//! filesystem must keep `admission.spool_reserve_bytes` free after it (statvfs, the blocks an
//! unprivileged writer may use). Refusing early (507 with `Retry-After`) keeps the disk from
//! filling under every upload at once and leaves room for the state files that record offsets;
//! the ENOSPC answer of a write that fails anyway stays behind it (`crate::error`).

use std::path::Path;

use ringcast_infra::log_limit::LogEvery;

use crate::admission::AdmissionError;
use crate::app::App;

/// A client retrying at once would otherwise log one warning per refusal.
static WARN: LogEvery = LogEvery::new(std::time::Duration::from_secs(10));

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn available(path: &Path) -> std::io::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs(3) fills the zeroed struct we own; `c` is a valid NUL-terminated path.
    let s = unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        s
    };
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// Whether taking `incoming` more bytes keeps `reserve` free out of `available`.
pub fn fits(available: u64, incoming: u64, reserve: u64) -> bool {
    available
        .checked_sub(incoming)
        .is_some_and(|left| left >= reserve)
}

/// 507 unless `incoming` bytes fit on the spool above the reserve (a creation passes its
/// `Upload-Length`: an upload that could not be finished now is not started; a PATCH its body).
/// A failing statvfs does not block uploads; the write would tell.
pub fn check(app: &App, incoming: u64) -> Result<(), AdmissionError> {
    let reserve = app.config.admission.spool_reserve_bytes;
    if reserve == 0 {
        return Ok(());
    }
    match available(app.uploads.dir()) {
        Ok(free) if !fits(free, incoming, reserve) => {
            app.metrics
                .admission
                .refused(crate::admission::metrics::Refusal::Storage);
            if let Some(held_back) = WARN.due() {
                tracing::warn!(
                    free,
                    incoming,
                    reserve,
                    held_back,
                    "spool below its free-space reserve; 507 (at most one line per 10 s; \
                     held_back = refusals since the last line)"
                );
            }
            Err(AdmissionError::InsufficientStorage)
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "statvfs of the spool failed; free space not checked");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_arithmetic() {
        assert!(fits(100, 0, 100));
        assert!(!fits(99, 0, 100));
        assert!(fits(150, 50, 100));
        assert!(!fits(150, 51, 100));
        assert!(!fits(10, 20, 0), "more than is free never fits");
        assert!(available(Path::new("/")).is_ok());
    }
}
