//! Spool writes with O_DIRECT and aligned buffers where the filesystem allows (DESIGN.md "Disk
//! speed"): a PATCH's bytes are gathered into [`BUF`]-sized, [`ALIGN`]-aligned buffers and each
//! full buffer is written at an aligned file offset with O_DIRECT — no page-cache copy, no
//! write-back, and on io_uring a truly asynchronous write — while the next buffer fills from the
//! socket (one write in flight at a time, double-buffered).
//!
//! The unaligned tail: when the offset must be made durable (a checkpoint, the end of the
//! PATCH), the last partial block is written padded with zeros to a whole block, the file is cut
//! back to the real end with `ftruncate`, and `fdatasync` makes bytes and size durable before
//! the offset is recorded. The next PATCH starts at the aligned block below its offset and reads
//! that partial block back first, so it is rewritten whole with the bytes that follow. A crash
//! between the padded write and the truncate leaves zeros past the recorded offset, which the
//! resumed upload overwrites (and cuts again) like any unacknowledged bytes.
//!
//! Where O_DIRECT is refused (tmpfs answers `EINVAL`, at the open or at a write) the writer
//! falls back to ordinary buffered writes of the same buffers: logged once per process, counted
//! in `ringcast_ingest_spool_direct_fallbacks_total`. A PATCH that got no pooled buffer
//! (`crate::admission::buffers`) writes each socket read straight through, as before.
//!
//! Memory: the aligned buffers are pooled per worker like the PATCH buffers, two per PATCH that
//! holds a pooled buffer, at most [`DIRECT_PAIRS_PER_WORKER`] pairs per worker (later PATCHes
//! write straight through): ≤ 2 × 1 MiB × 8 per worker.

use std::alloc::Layout;
use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::fs::{File, OpenOptions};

use crate::tus::lock::{UploadLock, WriteTicket};

/// Alignment of O_DIRECT buffers, offsets and lengths: the page size, a multiple of every
/// common logical block size (512, 4096).
pub const ALIGN: usize = 4096;
/// Bytes per direct write.
pub const BUF: usize = 1024 * 1024;
/// Most PATCHes per worker writing through aligned buffers at once.
pub const DIRECT_PAIRS_PER_WORKER: usize = 8;

/// A heap buffer aligned to [`ALIGN`], `cap` bytes (a multiple of [`ALIGN`]), `len` of them in
/// use.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    fn layout(cap: usize) -> Layout {
        // ALIGN is a power of two and `cap` a small multiple of it: always a valid layout.
        Layout::from_size_align(cap, ALIGN).expect("valid layout")
    }

    pub fn new(cap: usize) -> Self {
        let cap = cap.div_ceil(ALIGN).max(1) * ALIGN;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(Self::layout(cap)) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(Self::layout(cap));
        };
        Self { ptr, cap, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `cap` bytes (zeroed at allocation, so initialised), and
        // `len <= cap`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn spare(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the range `len..cap` lies inside the allocation and no
        // other reference to it exists while `&mut self` is held.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.cap - self.len)
        }
    }

    /// Append as much of `data` as fits; returns how much.
    pub fn extend(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        self.spare()[..n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// Zero-fill up to the next multiple of [`ALIGN`]; returns the padded length.
    fn pad(&mut self) -> usize {
        let padded = self.len.div_ceil(ALIGN) * ALIGN;
        let extra = padded - self.len;
        self.spare()[..extra].fill(0);
        padded
    }

    /// Drop the first `n` bytes, moving the rest to the front.
    fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        // SAFETY: both ranges lie inside the allocation; `copy` allows overlap.
        unsafe {
            std::ptr::copy(self.ptr.as_ptr().add(n), self.ptr.as_ptr(), self.len - n);
        }
        self.len -= n;
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) };
    }
}

// SAFETY: the pointer is valid for `len` initialised bytes and does not move while the buffer
// lives (it is a heap allocation owned by the value).
unsafe impl IoBuf for AlignedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: as above; `bytes_total` is the allocation's size, and `set_init` only ever records
// bytes the kernel wrote inside it.
unsafe impl IoBufMut for AlignedBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn bytes_total(&mut self) -> usize {
        self.cap
    }

    unsafe fn set_init(&mut self, pos: usize) {
        self.len = pos.min(self.cap);
    }
}

#[derive(Default)]
struct Pool {
    pairs_out: usize,
    free: Vec<AlignedBuf>,
}

thread_local! {
    /// Aligned buffers of this worker (monoio runs one runtime per thread).
    static POOL: RefCell<Pool> = RefCell::default();
}

/// Two pooled aligned buffers, or `None` when this worker's writers all have theirs.
fn take_pair() -> Option<(AlignedBuf, AlignedBuf)> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.pairs_out >= DIRECT_PAIRS_PER_WORKER {
            return None;
        }
        p.pairs_out += 1;
        let mut one = || p.free.pop().unwrap_or_else(|| AlignedBuf::new(BUF));
        Some((one(), one()))
    })
}

fn give_back(bufs: impl IntoIterator<Item = AlignedBuf>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.pairs_out = p.pairs_out.saturating_sub(1);
        for mut b in bufs {
            if b.capacity() == BUF && p.free.len() < 2 * DIRECT_PAIRS_PER_WORKER {
                b.clear();
                p.free.push(b);
            }
        }
    });
}

/// O_DIRECT refused somewhere in this process (logged once).
static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

fn note_fallback(path: &Path, stage: &str, e: &io::Error) {
    if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            spool = %path.display(),
            stage,
            error = %e,
            "O_DIRECT refused by the spool's filesystem; spool writes are buffered (logged once)"
        );
    }
}

fn is_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// A background write: its result, its buffer back, and where it wrote.
type Pending = monoio::task::JoinHandle<(io::Result<()>, AlignedBuf, u64)>;

/// How the bytes reach the file.
enum Mode {
    /// Gathered into aligned buffers; `direct`: the file is open with O_DIRECT.
    Aligned {
        direct: bool,
        /// Bytes `[cur_start, cur_start + cur.len())` of the upload, not yet written.
        cur: AlignedBuf,
        cur_start: u64,
        spare: Option<AlignedBuf>,
        /// The background write of the previous buffer.
        pending: Option<Pending>,
    },
    /// Each chunk written as it comes (no pooled buffers left on this worker).
    Through,
}

/// Writes one PATCH's bytes into the spool from the upload's offset on.
pub struct SpoolWriter {
    file: Rc<File>,
    path: std::path::PathBuf,
    mode: Mode,
    /// End of the bytes handed to [`SpoolWriter::write`].
    pos: u64,
    /// O_DIRECT was refused for this writer (at the open or a write): it writes buffered.
    fell_back: bool,
    /// A write failed: bytes before `pos` may be missing, so nothing may be declared durable.
    failed: bool,
}

impl SpoolWriter {
    /// Open the spool at `path` to write from `start` on. `aligned`: this PATCH may use pooled
    /// aligned buffers (it holds a full-size PATCH buffer; see the module docs).
    pub async fn open(path: &Path, start: u64, aligned: bool) -> io::Result<Self> {
        let pair = if aligned { take_pair() } else { None };
        let Some((mut cur, spare)) = pair else {
            let file = buffered(path).await?;
            return Ok(Self {
                file: Rc::new(file),
                path: path.to_path_buf(),
                mode: Mode::Through,
                pos: start,
                fell_back: false,
                failed: false,
            });
        };
        let (file, direct) = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .await
        {
            Ok(f) => (f, true),
            Err(e) if is_refusal(&e) => {
                note_fallback(path, "open", &e);
                match buffered(path).await {
                    Ok(f) => (f, false),
                    Err(e) => {
                        give_back([cur, spare]);
                        return Err(e);
                    }
                }
            }
            Err(e) => {
                give_back([cur, spare]);
                return Err(e);
            }
        };
        // Direct writes start at the block below `start`: its first bytes are read back.
        let cur_start = if direct {
            start - start % ALIGN as u64
        } else {
            start
        };
        let head = (start - cur_start) as usize;
        if head > 0 {
            let (res, b) = file.read_at(cur, cur_start).await;
            cur = b;
            let n = match res {
                Ok(n) => n,
                Err(e) => {
                    give_back([cur, spare]);
                    return Err(e);
                }
            };
            if n < head {
                give_back([cur, spare]);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "spool ends at {}, before the offset {start}",
                        cur_start + n as u64
                    ),
                ));
            }
            cur.len = head;
        }
        Ok(Self {
            file: Rc::new(file),
            path: path.to_path_buf(),
            mode: Mode::Aligned {
                direct,
                cur,
                cur_start,
                spare: Some(spare),
                pending: None,
            },
            pos: start,
            fell_back: !direct,
            failed: false,
        })
    }

    /// Whether this writer writes with O_DIRECT.
    pub fn is_direct(&self) -> bool {
        matches!(self.mode, Mode::Aligned { direct: true, .. })
    }

    /// O_DIRECT was refused for this writer (the caller counts it).
    pub fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// End of the bytes written so far (durable only after [`SpoolWriter::sync`]).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Write `buf` (all of it) next. Call inside the chunk's write guard: a full buffer's write
    /// goes on in the background under a [`WriteTicket`] from `lock`. Returns the buffer for the
    /// next read.
    pub async fn write(&mut self, buf: Vec<u8>, lock: &UploadLock) -> (io::Result<()>, Vec<u8>) {
        let (res, buf) = self.write_inner(buf, lock).await;
        if res.is_err() {
            self.failed = true;
        }
        (res, buf)
    }

    async fn write_inner(&mut self, buf: Vec<u8>, lock: &UploadLock) -> (io::Result<()>, Vec<u8>) {
        if let Mode::Through = self.mode {
            let (res, buf) = self.file.write_all_at(buf, self.pos).await;
            if res.is_ok() {
                self.pos += buf.len() as u64;
            }
            return (res, buf);
        }
        let mut rest: &[u8] = &buf;
        while !rest.is_empty() {
            let Mode::Aligned { cur, .. } = &mut self.mode else {
                unreachable!("checked above")
            };
            let n = cur.extend(rest);
            rest = &rest[n..];
            self.pos += n as u64;
            if cur.len() == cur.capacity() {
                if let Err(e) = self.write_full(lock).await {
                    return (Err(e), buf);
                }
            }
        }
        (Ok(()), buf)
    }

    /// Start the background write of the full current buffer (after the previous one landed).
    async fn write_full(&mut self, lock: &UploadLock) -> io::Result<()> {
        let next = self.land_pending().await?;
        let Some(ticket) = lock.write_ticket() else {
            return Err(io::Error::other("taken over by a newer request"));
        };
        let Mode::Aligned {
            cur,
            cur_start,
            spare,
            pending,
            ..
        } = &mut self.mode
        else {
            return Ok(());
        };
        let full = std::mem::replace(
            cur,
            next.or_else(|| spare.take())
                .unwrap_or_else(|| AlignedBuf::new(BUF)),
        );
        let at = *cur_start;
        *cur_start += full.len() as u64;
        let file = Rc::clone(&self.file);
        *pending = Some(monoio::spawn(background_write(file, full, at, ticket)));
        Ok(())
    }

    /// Wait for the background write; its buffer back for reuse. A write the filesystem
    /// refused as direct is written again buffered (and the writer stays buffered).
    async fn land_pending(&mut self) -> io::Result<Option<AlignedBuf>> {
        let Mode::Aligned {
            pending, direct, ..
        } = &mut self.mode
        else {
            return Ok(None);
        };
        let Some(handle) = pending.take() else {
            return Ok(None);
        };
        let was_direct = *direct;
        let (res, mut buf, at) = handle.await;
        match res {
            Ok(()) => {}
            Err(e) if was_direct && is_refusal(&e) => {
                self.fall_back(&e).await?;
                let len = buf.len();
                let (res, back) = write_prefix(&self.file, buf, len, at).await;
                buf = back;
                res?;
            }
            Err(e) => return Err(e),
        }
        buf.clear();
        Ok(Some(buf))
    }

    /// Make every byte written so far durable (and the file exactly [`SpoolWriter::pos`] long
    /// when a padded block was written): the checkpoint before an offset is recorded.
    pub async fn sync(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier spool write failed; the bytes after the last checkpoint are not kept",
            ));
        }
        let landed = self.land_pending().await;
        if landed.is_err() {
            self.failed = true;
        }
        if let Some(b) = landed? {
            if let Mode::Aligned { spare, .. } = &mut self.mode {
                spare.get_or_insert(b);
            }
        }
        let pos = self.pos;
        let mut refused = None;
        if let Mode::Aligned {
            direct,
            cur,
            cur_start,
            ..
        } = &mut self.mode
        {
            if !cur.is_empty() {
                let len = cur.len();
                let (whole, padded) = if *direct {
                    (len / ALIGN * ALIGN, cur.pad())
                } else {
                    (len, len)
                };
                let owned = std::mem::replace(cur, AlignedBuf::new(ALIGN));
                let (res, mut back) = write_prefix(&self.file, owned, padded, *cur_start).await;
                back.len = len;
                *cur = back;
                match res {
                    Ok(()) => {}
                    Err(e) if *direct && is_refusal(&e) => refused = Some(e),
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                }
                if refused.is_none() {
                    if padded > len {
                        truncate(&self.file, pos)?;
                    }
                    // The partial last block stays in the buffer: the next bytes complete it
                    // and it is written whole again.
                    *cur_start += whole as u64;
                    cur.consume_front(whole);
                }
            }
        }
        if let Some(e) = refused {
            // The filesystem took the O_DIRECT open but not the write: buffered from here on.
            self.fall_back(&e).await?;
            return Box::pin(self.sync()).await;
        }
        self.file.sync_data().await
    }

    /// Reopen without O_DIRECT (the buffered bytes are kept and written by the next sync).
    async fn fall_back(&mut self, e: &io::Error) -> io::Result<()> {
        note_fallback(&self.path, "write", e);
        self.fell_back = true;
        let file = buffered(&self.path).await?;
        self.file = Rc::new(file);
        if let Mode::Aligned { direct, .. } = &mut self.mode {
            *direct = false;
        }
        Ok(())
    }

    /// Close the file, waiting for a background write first (so none lands after a truncate
    /// or a takeover), and return the buffers to the pool. Bytes not synced may be lost.
    pub async fn close(mut self) -> io::Result<()> {
        // Whatever the background write's outcome, it is over: nothing lands after this.
        let landed = self.land_pending().await.ok().flatten();
        if let Mode::Aligned { cur, spare, .. } = std::mem::replace(&mut self.mode, Mode::Through) {
            let bufs = [Some(cur), spare, landed];
            give_back(
                bufs.into_iter()
                    .flatten()
                    .filter(|b| b.capacity() == BUF)
                    .take(2),
            );
        }
        let file = Rc::clone(&self.file);
        drop(self);
        match Rc::try_unwrap(file) {
            Ok(f) => f.close().await,
            // Still shared (cannot happen once the background write landed): closed on drop.
            Err(_) => Ok(()),
        }
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        // Not closed (an early return): the buffers go back; a background write still running
        // keeps its own buffer and its ticket until it lands.
        if let Mode::Aligned { cur, spare, .. } = std::mem::replace(&mut self.mode, Mode::Through) {
            give_back([Some(cur), spare].into_iter().flatten());
        }
    }
}

async fn buffered(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path).await
}

/// Write `buf[..len]` at `at` (all of it), under `ticket` (dropped when the write is done).
async fn background_write(
    file: Rc<File>,
    buf: AlignedBuf,
    at: u64,
    ticket: WriteTicket,
) -> (io::Result<()>, AlignedBuf, u64) {
    let len = buf.len();
    let (res, buf) = write_prefix(&file, buf, len, at).await;
    drop(ticket);
    (res, buf, at)
}

/// `write_all_at` of the first `len` bytes of `buf` (which may exceed its `len` by padding).
async fn write_prefix(
    file: &File,
    mut buf: AlignedBuf,
    len: usize,
    at: u64,
) -> (io::Result<()>, AlignedBuf) {
    buf.len = len.min(buf.cap);
    let mut done = 0usize;
    while done < len {
        let (res, slice) = file.write_at(buf.slice(done..len), at + done as u64).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// Cut the file to `len` (after a padded last block).
fn truncate(file: &File, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: ftruncate on a file descriptor this process owns; no memory is passed.
    match unsafe { libc::ftruncate(file.as_raw_fd(), len) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tus::lock::UploadLocks;
    use crate::tus::test_runtime::block_on;

    /// Pseudo-random bytes (xorshift), so misplaced blocks show.
    fn payload(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Spool `data` in PATCHes ending at `cuts`, each sent in reads of `read` bytes, with a
    /// sync (checkpoint) every `checkpoint` bytes; returns whether the writes were direct.
    fn spool_in_patches(path: &Path, data: &[u8], cuts: &[usize], read: usize) -> Vec<bool> {
        std::fs::write(path, b"").expect("create");
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        let mut direct = Vec::new();
        block_on(async {
            let mut start = 0;
            for &end in cuts {
                let mut w = SpoolWriter::open(path, start as u64, true)
                    .await
                    .expect("open");
                direct.push(w.is_direct());
                for (i, piece) in data[start..end].chunks(read).enumerate() {
                    let (res, _) = w.write(piece.to_vec(), &lock).await;
                    res.expect("write");
                    if i % 7 == 6 {
                        w.sync().await.expect("checkpoint");
                        assert_eq!(
                            std::fs::metadata(path).expect("meta").len(),
                            w.pos(),
                            "the file ends at the checkpoint"
                        );
                    }
                }
                w.sync().await.expect("sync");
                assert_eq!(w.pos(), end as u64);
                w.close().await.expect("close");
                assert_eq!(std::fs::metadata(path).expect("meta").len(), end as u64);
                start = end;
            }
        });
        direct
    }

    fn check(dir: &Path) -> Vec<bool> {
        let data = payload(3 * BUF + 12_345);
        let path = dir.join("spool.bin");
        // Unaligned PATCH ends, reads smaller and larger than a block, and a PATCH of 1 byte.
        let cuts = [1, 5000, 5001, BUF + 4096, 2 * BUF + 77, data.len()];
        let direct = spool_in_patches(&path, &data, &cuts, 65_536 + 3);
        assert!(
            std::fs::read(&path).expect("read") == data,
            "byte-identical"
        );
        let direct2 = spool_in_patches(&path, &data, &[data.len()], 1000);
        assert!(
            std::fs::read(&path).expect("read") == data,
            "byte-identical"
        );
        assert_eq!(direct[0], direct2[0]);
        direct
    }

    #[test]
    fn a_disk_spool_is_written_direct_and_byte_identical_across_unaligned_patches() {
        // /var/tmp is on the disk on ordinary systems (/tmp may be a tmpfs).
        let dir = tempfile::tempdir_in("/var/tmp")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir");
        let probe = dir.path().join("probe");
        let supported = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let direct = check(dir.path());
        if !supported {
            eprintln!("SKIPPED the O_DIRECT check: the temp dir's filesystem refuses it");
            return;
        }
        assert!(
            direct.iter().all(|d| *d),
            "O_DIRECT on the disk: {direct:?}"
        );
    }

    #[test]
    fn a_filesystem_without_o_direct_falls_back_to_buffered_writes() {
        // ramfs refuses O_DIRECT (EINVAL at the open); mounting it needs root.
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a ramfs (needs root)");
            return;
        }
        let direct = check(dir.path());
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
        assert!(direct.iter().all(|d| !d), "buffered on ramfs: {direct:?}");
    }

    #[test]
    fn a_writer_without_pooled_buffers_writes_straight_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.bin");
        std::fs::write(&path, b"").expect("create");
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        block_on(async {
            let mut w = SpoolWriter::open(&path, 0, false).await.expect("open");
            assert!(!w.is_direct() && !w.fell_back());
            let (res, _) = w.write(b"hello".to_vec(), &lock).await;
            res.expect("write");
            w.sync().await.expect("sync");
            w.close().await.expect("close");
        });
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
    }
}
