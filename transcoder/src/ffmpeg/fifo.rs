//! Named pipes between ffmpeg and the packager, one per rendition.
//!
//! The classic trap: opening a FIFO blocks until the other side opens it, ffmpeg opens its
//! outputs one after the other, and a reader that is never matched (ffmpeg died first) blocks
//! forever. This module never blocks in `open`:
//!
//! 1. the read end is opened `O_NONBLOCK` (which succeeds without a writer), then switched to
//!    blocking mode for the reader thread;
//! 2. a "keeper" write end is opened at once, so the pipe always has a writer: reads block
//!    waiting for data instead of reporting end-of-file before ffmpeg connects, and ffmpeg's
//!    own `open` never waits;
//! 3. once ffmpeg has exited, [`Fifo::close_keeper`] drops the keeper and the reader drains
//!    the pipe and sees end-of-file.
//!
//! Each read end is served by its own OS thread (blocking `read`), which forwards chunks over a
//! bounded tokio channel. The bound is the backpressure: a slow upload stalls that reader, the
//! pipe fills and ffmpeg waits, instead of memory growing. If the packager goes away, the
//! thread ends, the read end closes and ffmpeg gets `EPIPE` (the caller kills it anyway).
//! All descriptors are close-on-exec (std's default), so ffmpeg never inherits a keeper.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes per read: a pipe holds 64 KiB by default; reading up to 256 KiB drains it in one
/// call when the writer is ahead.
const READ_CHUNK: usize = 256 * 1024;

/// What a reader thread sends: data chunks, or the read error that ended the stream. The
/// channel closing without an error is end-of-file.
pub type Chunk = io::Result<Bytes>;

/// A created FIFO with its keeper write end.
#[derive(Debug)]
pub struct Fifo {
    pub path: PathBuf,
    keeper: Option<File>,
}

impl Fifo {
    /// Create the FIFO at `path` (mode 0600) and open both ends without blocking. Returns the
    /// FIFO (holding the keeper) and the blocking read end for [`spawn_reader`].
    pub fn create(path: &Path) -> io::Result<(Self, File)> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; mkfifo
        // only reads it.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        set_blocking(&reader)?;
        // Succeeds without blocking because the read end is open; O_NONBLOCK only affects
        // this open (we never write through the keeper).
        let keeper = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                keeper: Some(keeper),
            },
            reader,
        ))
    }

    /// Drop the keeper write end. Call after the real writer (ffmpeg) has exited: the reader
    /// then gets end-of-file once the pipe is drained.
    pub fn close_keeper(&mut self) {
        self.keeper = None;
    }
}

/// Clear `O_NONBLOCK` so the reader thread's `read` waits for data.
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own and keep open for the duration of the calls;
    // F_GETFL/F_SETFL read and write only the descriptor's status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reader → consumer channel depth, in chunks of up to `READ_CHUNK`.
const CHUNK_QUEUE: usize = 16;

/// One rendition's ffmpeg output pipe: `{dir}/{name}.fifo` is made and a reader thread streams
/// it into the returned channel (what both the VOD and the live pipeline set up per rung).
/// `written` adds up the bytes read from every FIFO it is given (the watchdog's sign of life).
pub fn open_output(
    dir: &Path,
    name: &str,
    written: Arc<AtomicU64>,
) -> Result<(Fifo, mpsc::Receiver<Chunk>), crate::error::TranscodeError> {
    use crate::error::TranscodeError;
    let path = dir.join(format!("{name}.fifo"));
    let (fifo, reader) = Fifo::create(&path)
        .map_err(|e| TranscodeError::io(format!("creating FIFO {}", path.display()), e))?;
    let (tx, rx) = mpsc::channel(CHUNK_QUEUE);
    spawn_reader(name, reader, tx, written)
        .map_err(|e| TranscodeError::io("starting a FIFO reader thread", e))?;
    Ok((fifo, rx))
}

/// Read `file` to end-of-file on a new thread named after `name`, sending chunks to `tx`.
/// Ends early (closing the read end) when the receiver is dropped.
pub fn spawn_reader(
    name: &str,
    mut file: File,
    tx: mpsc::Sender<Chunk>,
    written: Arc<AtomicU64>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("fifo-{name}"))
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        written.fetch_add(n as u64, Ordering::Relaxed);
                        if tx
                            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reader_waits_for_a_late_writer_then_sees_eof_after_the_keeper_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r0.fifo");
        let (mut fifo, reader) = Fifo::create(&path).expect("create");
        let (tx, mut rx) = mpsc::channel(4);
        let handle = spawn_reader("t", reader, tx, Arc::default()).expect("spawn");
        // The writer (ffmpeg's role) opens after the reader without blocking, writes, exits.
        let mut w = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open writer");
        w.write_all(b"hello ").expect("write");
        w.write_all(b"world").expect("write");
        drop(w);
        fifo.close_keeper();
        let mut got = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(got, b"hello world");
        handle.join().expect("join");
    }

    #[test]
    fn a_writer_that_never_comes_does_not_hang_the_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut fifo, reader) = Fifo::create(&dir.path().join("r.fifo")).expect("create");
        let (tx, mut rx) = mpsc::channel(4);
        let handle = spawn_reader("t", reader, tx, Arc::default()).expect("spawn");
        fifo.close_keeper();
        assert!(rx.blocking_recv().is_none(), "plain end-of-file");
        handle.join().expect("join");
    }

    #[test]
    fn create_fails_cleanly_when_the_path_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x");
        std::fs::write(&path, b"").expect("write");
        assert_eq!(
            Fifo::create(&path).expect_err("exists").kind(),
            io::ErrorKind::AlreadyExists
        );
    }
}
