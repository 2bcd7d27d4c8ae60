//! Keeping `sendfile` off the disk: a disk-tier file whose pages are not all in the page cache
//! is read into it on the side runtime's blocking pool before the worker sends it.
//!
//! `sendfile` reads missing pages synchronously, so a cold file (after a restart, or pushed out
//! of memory by others) would stall the worker, and with it every connection on that core, for
//! a disk read (nginx solves the same with `aio threads`). `cachestat(2)` (Linux 6.5) counts a
//! file's cached pages without touching them; where it is missing (ENOSYS, other
//! architectures) the edge sends as before.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use ringcast_infra::side_runtime;

use crate::metrics::Metrics;

/// `cachestat(2)`'s number in the generic syscall table (x86_64 and aarch64 alike).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_CACHESTAT: libc::c_long = 451;

/// Reads of a cold file go in pieces of this size.
const WARM_CHUNK: usize = 256 * 1024;

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Whether every page of `file[..len]` is in the page cache; `None` when the kernel cannot
/// say (no `cachestat`).
pub fn resident(file: &File, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let range = CachestatRange { off: 0, len };
        let mut stat = Cachestat::default();
        // SAFETY: `file` is an open descriptor we borrow for the call; `range` and `stat` are
        // live, properly laid out (#[repr(C)], as in linux/mman.h) values on our stack, read
        // and written only during the call; flags must be 0.
        let ret = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd(),
                &range as *const CachestatRange,
                &mut stat as *mut Cachestat,
                0u32,
            )
        };
        if ret != 0 {
            return None;
        }
        let page = page_size();
        Some(stat.nr_cache >= len.div_ceil(page))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Make sure `file[..len]` is in the page cache before a worker sends it: when `cachestat`
/// says pages are missing, read the file on the side runtime's blocking pool, so the worker's
/// `sendfile` finds every page in memory. Unknown residency sends at once.
pub async fn make_resident(file: &File, len: u64, metrics: &Metrics) -> io::Result<()> {
    if resident(file, len) != Some(false) {
        return Ok(());
    }
    metrics.disk_cold_read();
    let file = file.try_clone()?;
    side_runtime::run_blocking(move || read_through(&file, len))
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

/// Read `file[..len]` (positional reads: the descriptor's offset stays untouched).
fn read_through(file: &File, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; WARM_CHUNK.min(len as usize)];
    let mut off = 0u64;
    while off < len {
        let want = (len - off).min(buf.len() as u64) as usize;
        let n = file.read_at(&mut buf[..want], off)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        off += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drop a file's pages from the page cache (clean pages only: sync first).
    fn evict(file: &File, len: u64) {
        file.sync_all().expect("sync");
        // SAFETY: advisory call on a descriptor we own; no memory is passed.
        let ret = unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, len as i64, libc::POSIX_FADV_DONTNEED)
        };
        assert_eq!(ret, 0);
    }

    #[test]
    fn residency_follows_eviction_and_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seg.m4s");
        let len = 1024 * 1024 + 100;
        std::fs::write(&path, vec![7u8; len]).expect("write");
        let file = File::open(&path).expect("open");
        // SAFETY: statfs fills the zeroed struct we own.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        let c_path =
            std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).expect("path");
        assert_eq!(unsafe { libc::statfs(c_path.as_ptr(), &mut fs) }, 0);
        if fs.f_type == libc::TMPFS_MAGIC {
            eprintln!("temp dir on tmpfs: its pages cannot be evicted, nothing to check");
            return;
        }
        let Some(true) = resident(&file, len as u64) else {
            // No cachestat on this kernel: nothing to check, the edge sends as before.
            assert_eq!(resident(&file, len as u64), None);
            return;
        };
        evict(&file, len as u64);
        assert_eq!(resident(&file, len as u64), Some(false), "after DONTNEED");
        read_through(&file, len as u64).expect("read");
        assert_eq!(resident(&file, len as u64), Some(true), "after reading it");
        assert_eq!(resident(&file, 0), Some(true));
        let short = File::open(&path).expect("open");
        assert!(
            read_through(&short, len as u64 + 1).is_err(),
            "EOF is an error"
        );
    }
}
