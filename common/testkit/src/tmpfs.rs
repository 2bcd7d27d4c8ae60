//! [`Tmpfs`]: a small tmpfs mounted for one test, to run a service's disk out of space (the
//! ingest's spool, the edge's disk tier) and give the space back. Needs root (or
//! `CAP_SYS_ADMIN`); [`Tmpfs::mount`] returns `None` where mounting is impossible, so the test
//! can skip with a clear message instead of failing on the machine rather than the code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tempdir::TempDir;

/// A mounted tmpfs, unmounted (lazily, so a process still holding a file cannot keep it
/// busy) and removed on drop. Drop it after the services that use it.
pub struct Tmpfs {
    dir: TempDir,
    filler: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size_bytes` on a fresh temp dir; `None` (with the reason on stderr)
    /// when `mount` fails.
    pub fn mount(size_bytes: u64) -> Option<Self> {
        let dir = TempDir::new("tmpfs");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                return None;
            }
        }
        let filler = dir.path().join(".filler");
        Some(Self { dir, filler })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Take every free byte with a filler file (written until the filesystem says ENOSPC).
    pub fn fill(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .expect("create the filler file");
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // A page may still be free below a full 4 KiB write: fill it byte by byte.
        while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
    }

    /// Give the filler's space back.
    pub fn free(&self) {
        match std::fs::remove_file(&self.filler) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing the filler file: {e}"),
        }
    }

    /// Bytes free on the filesystem now.
    pub fn available(&self) -> u64 {
        let c = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes())
            .expect("path without NUL");
        // SAFETY: statvfs(3) fills the zeroed struct we own; the path is a valid C string.
        unsafe {
            let mut s: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0, "statvfs");
            s.f_bavail as u64 * s.f_frsize as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
