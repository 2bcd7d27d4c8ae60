//! An object's bytes as an in-memory file (`memfd`), so they can leave by `sendfile` like a
//! disk-tier file: the kernel then hands the file's pages to every socket by reference instead
//! of copying the body into each one.
//!
//! Why: an LL-HLS part announcement sends the same part to every held viewer at once. From the
//! memory tier's `Bytes` each `writev` copied the 39 KB part into that viewer's socket
//! (`_copy_from_iter`, 13 % of the edge's CPU under a 500-viewer herd); nginx `sendfile`s it
//! from the page cache (docs/BENCHMARKS.md "LL-HLS herd cost vs nginx").
//!
//! The file is sealed once written (no write, grow, shrink, or further seals), so a response
//! that announced its `Content-Length` from it can never send other or fewer bytes, and pages a
//! socket still references are never changed under it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;

/// A sealed in-memory file holding `bytes` (named `name` in `/proc/PID/fd`, for debugging).
pub fn sealed(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call; the flags
    // are valid `memfd_create` flags. The call creates a new descriptor and touches no memory
    // of ours otherwise.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `memfd_create`, is open, and is owned by nothing else:
    // the `File` takes sole ownership and closes it on drop (also on the error paths below).
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: `fd` is open (owned by `file`, alive here); F_ADD_SEALS takes an int argument and
    // reads no memory.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn holds_the_bytes_and_refuses_changes() {
        let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut f = sealed(c"part", &body).expect("memfd");
        assert_eq!(f.metadata().expect("stat").len(), body.len() as u64);
        // Writing left the cursor at the end; `sendfile` passes its own offset, so does this.
        f.seek(SeekFrom::Start(0)).expect("rewind");
        let mut back = Vec::new();
        f.read_to_end(&mut back).expect("read");
        assert!(back == body, "from the start, through the descriptor");
        let mut mid = [0u8; 10];
        f.read_exact_at(&mut mid, 1000).expect("read at");
        assert_eq!(&mid[..], &body[1000..1010]);
        // Sealed: writing, growing and shrinking all fail.
        assert!(f.write_at(b"x", 0).is_err(), "write refused");
        assert!(f.set_len(10).is_err(), "shrink refused");
        assert!(f.set_len(body.len() as u64 + 1).is_err(), "grow refused");
        // SAFETY: F_GET_SEALS on an open descriptor reads no memory.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0 && seals & libc::F_SEAL_SEAL != 0);
    }

    #[test]
    fn an_empty_body_is_an_empty_file() {
        let f = sealed(c"empty", b"").expect("memfd");
        assert_eq!(f.metadata().expect("stat").len(), 0);
    }
}
