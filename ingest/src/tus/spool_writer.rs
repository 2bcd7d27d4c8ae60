//! Spool writes with O_DIRECT and aligned buffers where the filesystem allows (DESIGN.md "Disk
//! speed"): a PATCH's bytes are gathered into [`BUF`]-sized, [`ALIGN`]-aligned buffers and each
//! full buffer is written at an aligned file offset with O_DIRECT — no page-cache copy, no
//! write-back, and on io_uring a truly asynchronous write — while the next buffer fills from the
//! socket (up to [`DEPTH`] buffers written and hashed at once while one more fills).
//!
//! Checkpoints inside a PATCH ([`SpoolWriter::checkpoint`]) make only the full buffers durable
//! and leave the buffer filling, the hash thread and its queue alone, so the pipeline does not
//! drain every 64 MiB.
//!
//! The unaligned tail: when the PATCH's own offset must be made durable (its end), the last
//! partial block is written padded with zeros to a whole block, the file is cut
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
//! Digests ([`crate::tus::digests`]): the writer feeds every byte it is handed to the upload's
//! digests, in order. Full buffers go to the PATCH's hash thread (a [`HashPipe`], started at
//! the first full buffer) while they are written and the next ones fill — shared between the
//! write and the hash thread, never copied; up to [`DEPTH`] buffers are on their way at once, so
//! neither the worker nor the hash thread waits for the other at every buffer. When the digests
//! must be current ([`SpoolWriter::catch_up_digests`], also part of [`SpoolWriter::sync`]) every
//! buffer on its way lands, the hash thread hands the digests back, and the bytes of the partial
//! buffer are hashed here.
//!
//! Small PATCHes: a body shorter than [`DIRECT_MIN_BODY`] is written buffered, straight
//! through (open without O_DIRECT, no read-back of a partial block, no padded write and
//! `ftruncate`): for a few hundred KB the page cache costs less than the direct path's extra
//! metadata work, and the fdatasync before the ack is the same.
//!
//! Memory: the aligned buffers are pooled per worker like the PATCH buffers: up to
//! [`DEPTH`] + 1 per PATCH that holds a pooled buffer, at most [`DIRECT_PAIRS_PER_WORKER`] such
//! PATCHes per worker (later PATCHes write straight through): ≤ 4 × 1 MiB × 8 per worker.

use std::alloc::Layout;
use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::fs::{File, OpenOptions};

use ringcast_server::Conn;

use crate::tus::digests::{Digests, HashPipe, Hashed};
use crate::tus::lock::{UploadLock, WriteTicket};

/// Alignment of O_DIRECT buffers, offsets and lengths: the page size, a multiple of every
/// common logical block size (512, 4096).
pub const ALIGN: usize = 4096;
/// Bytes per direct write.
pub const BUF: usize = 1024 * 1024;
/// Most PATCHes per worker writing through aligned buffers at once.
pub const DIRECT_PAIRS_PER_WORKER: usize = 8;
/// Full buffers of one PATCH on their way (written and hashed) at once; one more fills.
pub const DEPTH: usize = 3;
/// PATCH bodies shorter than this are written buffered (see the module docs): one aligned
/// buffer, below which no direct write would be a full one anyway.
pub const DIRECT_MIN_BODY: u64 = BUF as u64;

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

    /// A buffer without an allocation: the placeholder while the real one is lent to a read.
    fn empty() -> Self {
        Self {
            ptr: NonNull::dangling(),
            cap: 0,
            len: 0,
        }
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

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

// SAFETY: the buffer owns its heap allocation like a `Vec<u8>` (no aliasing, no thread-bound
// state); shared references only read it.
unsafe impl Send for AlignedBuf {}
// SAFETY: `&AlignedBuf` only gives read access (`as_slice`); mutation needs `&mut`.
unsafe impl Sync for AlignedBuf {}

/// A full buffer shared by its O_DIRECT write and its hash job (both only read it).
struct SharedBuf(Arc<AlignedBuf>);

// SAFETY: the allocation behind the `Arc` does not move or change while any clone lives, and
// `bytes_init` is its `len`, fixed once it is shared.
unsafe impl IoBuf for SharedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.0.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.0.len
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap == 0 {
            // `empty`: nothing was allocated.
            return;
        }
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
    /// PATCHes holding aligned buffers.
    pairs_out: usize,
    free: Vec<AlignedBuf>,
}

/// Buffers a worker's pool keeps at most.
const POOL_MAX: usize = (DEPTH + 1) * DIRECT_PAIRS_PER_WORKER;

thread_local! {
    /// Aligned buffers of this worker (monoio runs one runtime per thread).
    static POOL: RefCell<Pool> = RefCell::default();
}

/// Two pooled aligned buffers (a PATCH's first; it takes more with [`take_extra`]), or `None`
/// when this worker's writers all have theirs.
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

/// One more buffer for a PATCH that holds a pair (up to [`DEPTH`] + 1 in all).
fn take_extra() -> AlignedBuf {
    POOL.with(|p| p.borrow_mut().free.pop())
        .unwrap_or_else(|| AlignedBuf::new(BUF))
}

/// A PATCH's buffers back (it holds a pair no more).
fn give_back(bufs: impl IntoIterator<Item = AlignedBuf>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.pairs_out = p.pairs_out.saturating_sub(1);
        for mut b in bufs {
            if b.capacity() == BUF && p.free.len() < POOL_MAX {
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

/// A full buffer on its way: its background write, its hashing, and where it is written.
struct Pending {
    /// `None` once a checkpoint waited for it (and handled its outcome).
    write: Option<monoio::task::JoinHandle<io::Result<()>>>,
    /// Written with O_DIRECT (a refusal is then written again buffered).
    direct: bool,
    hashed: Option<Hashed>,
    buf: Arc<AlignedBuf>,
    at: u64,
}

/// Where the digests are.
enum Hashing {
    /// Here, fed every byte before `hashed_to` (boxed: the hashers' state is a few hundred
    /// bytes).
    Here(Box<Digests>),
    /// With the PATCH's hash thread (fed every byte before `hashed_to` once it is drained).
    Pipe(HashPipe),
    /// Taken, or lost with a failed hash thread.
    Gone,
}

/// How the bytes reach the file.
enum Mode {
    /// Gathered into aligned buffers; `direct`: the file is open with O_DIRECT.
    Aligned {
        direct: bool,
        /// Bytes `[cur_start, cur_start + cur.len())` of the upload, not yet written.
        cur: AlignedBuf,
        cur_start: u64,
        spare: Vec<AlignedBuf>,
        /// Full buffers on their way, oldest first (at most [`DEPTH`]).
        pending: std::collections::VecDeque<Pending>,
    },
    /// Each chunk written as it comes (no pooled buffers left on this worker).
    Through,
}

/// Writes one PATCH's bytes into the spool from the upload's offset on.
pub struct SpoolWriter {
    file: Rc<File>,
    path: std::path::PathBuf,
    mode: Mode,
    /// Where this PATCH started writing (its upload's offset).
    start: u64,
    /// End of the bytes handed to [`SpoolWriter::write`].
    pos: u64,
    /// O_DIRECT was refused for this writer (at the open or a write): it writes buffered.
    fell_back: bool,
    /// A write failed (with this OS error, if it had one): bytes before `pos` may be missing,
    /// so nothing may be declared durable.
    failed: Option<Option<i32>>,
    hashing: Hashing,
    /// End of the bytes handed to the digests (here or to the hash thread).
    hashed_to: u64,
}

impl SpoolWriter {
    /// Open the spool at `path` to write from `start` on, feeding `digests`. `aligned`: this
    /// PATCH may use pooled aligned buffers (it holds a full-size PATCH buffer and its body is
    /// at least [`DIRECT_MIN_BODY`]; see the module docs).
    pub async fn open(
        path: &Path,
        start: u64,
        aligned: bool,
        digests: Digests,
    ) -> io::Result<Self> {
        let pair = if aligned { take_pair() } else { None };
        let Some((mut cur, spare)) = pair else {
            let file = buffered(path).await?;
            return Ok(Self {
                file: Rc::new(file),
                path: path.to_path_buf(),
                mode: Mode::Through,
                start,
                pos: start,
                fell_back: false,
                failed: None,
                hashing: Hashing::Here(Box::new(digests)),
                hashed_to: start,
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
                spare: vec![spare],
                pending: Default::default(),
            },
            start,
            pos: start,
            fell_back: !direct,
            failed: None,
            hashing: Hashing::Here(Box::new(digests)),
            hashed_to: start,
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

    /// Whether body bytes can be received straight into this writer's buffer
    /// ([`SpoolWriter::receive`]): it gathers into aligned buffers.
    pub fn receives_in_place(&self) -> bool {
        matches!(self.mode, Mode::Aligned { .. })
    }

    /// Read the next piece of `conn`'s body straight into the aligned buffer filling (no copy
    /// from a socket buffer), at most what it has room for. The bytes read are only staged:
    /// they become the upload's next bytes with [`SpoolWriter::keep`] (inside the chunk's write
    /// guard), and are dropped by anything else the writer does first (a request taken over
    /// meanwhile writes none of them). A writer that does not receive in place reads nothing.
    pub async fn receive(&mut self, conn: &mut Conn) -> io::Result<usize> {
        self.unstage();
        let Mode::Aligned { cur, .. } = &mut self.mode else {
            return Ok(0);
        };
        let room = cur.capacity() - cur.len();
        let lent = std::mem::replace(cur, AlignedBuf::empty());
        // The buffer comes back also after a timeout or an error, its bytes intact.
        let (res, back) = conn.read_body_into(lent, room).await;
        if let Mode::Aligned { cur, .. } = &mut self.mode {
            *cur = back;
        }
        res
    }

    /// Make the `n` bytes [`SpoolWriter::receive`] just staged the upload's next bytes (a full
    /// buffer starts its write, as with [`SpoolWriter::write`]). Call inside the chunk's write
    /// guard.
    pub async fn keep(&mut self, n: usize, lock: &UploadLock) -> io::Result<()> {
        let Mode::Aligned { cur, cur_start, .. } = &self.mode else {
            return Ok(());
        };
        let staged = (*cur_start + cur.len() as u64).saturating_sub(self.pos);
        if n as u64 != staged {
            // A caller bug, not the client's: refuse rather than record bytes never read.
            return Err(io::Error::other(format!(
                "{n} bytes kept but {staged} staged"
            )));
        }
        self.pos += n as u64;
        if cur.len() == cur.capacity() {
            if let Err(e) = self.write_full(lock).await {
                self.fail(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// What [`SpoolWriter::receive`] does with the bytes a read brings (tests have no `Conn`).
    #[cfg(test)]
    fn stage(&mut self, bytes: &[u8]) -> usize {
        self.unstage();
        match &mut self.mode {
            Mode::Aligned { cur, .. } => cur.extend(bytes),
            Mode::Through => 0,
        }
    }

    /// Drop bytes [`SpoolWriter::receive`] staged and nobody kept.
    fn unstage(&mut self) {
        if let Mode::Aligned { cur, cur_start, .. } = &mut self.mode {
            let kept = self.pos.saturating_sub(*cur_start) as usize;
            if cur.len > kept {
                cur.len = kept;
            }
        }
    }

    /// Write `buf` (all of it) next. Call inside the chunk's write guard: a full buffer's write
    /// goes on in the background under a [`WriteTicket`] from `lock`. Returns the buffer for the
    /// next read.
    pub async fn write(&mut self, buf: Vec<u8>, lock: &UploadLock) -> (io::Result<()>, Vec<u8>) {
        let (res, buf) = self.write_inner(buf, lock).await;
        if let Err(e) = &res {
            self.fail(e);
        }
        (res, buf)
    }

    /// Remember the first failed write (its OS error is what later syncs report, so a full
    /// disk stays a full disk to the caller).
    fn fail(&mut self, e: &io::Error) {
        self.failed.get_or_insert(e.raw_os_error());
    }

    async fn write_inner(&mut self, buf: Vec<u8>, lock: &UploadLock) -> (io::Result<()>, Vec<u8>) {
        self.unstage();
        if let Mode::Through = self.mode {
            let (res, buf) = self.file.write_all_at(buf, self.pos).await;
            if res.is_ok() {
                if let Hashing::Here(d) = &mut self.hashing {
                    d.update(&buf);
                }
                self.pos += buf.len() as u64;
                self.hashed_to = self.pos;
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

    /// Start the background write of the full current buffer and hand it to the hash thread;
    /// the next buffer is a spare, a new one while fewer than [`DEPTH`] are on their way, or
    /// the oldest one's once it landed.
    async fn write_full(&mut self, lock: &UploadLock) -> io::Result<()> {
        let waiting = matches!(&self.mode, Mode::Aligned { pending, .. } if pending.len() >= DEPTH);
        let landed = if waiting {
            self.land_oldest().await?
        } else {
            None
        };
        let Some(ticket) = lock.write_ticket() else {
            return Err(io::Error::other("taken over by a newer request"));
        };
        let Mode::Aligned {
            direct,
            cur,
            cur_start,
            spare,
            pending,
        } = &mut self.mode
        else {
            return Ok(());
        };
        let next = landed.or_else(|| spare.pop()).unwrap_or_else(take_extra);
        let full = std::mem::replace(cur, next);
        let at = *cur_start;
        *cur_start += full.len() as u64;
        // The buffer's first bytes may be hashed already (a partial block kept from a
        // checkpoint, or bytes read back from before this PATCH's offset).
        let from = self.hashed_to.saturating_sub(at) as usize;
        self.hashed_to = self.hashed_to.max(*cur_start);
        let full = Arc::new(full);
        let hashed = if from < full.len() {
            if let Hashing::Here(_) = self.hashing {
                let Hashing::Here(d) = std::mem::replace(&mut self.hashing, Hashing::Gone) else {
                    unreachable!("matched above")
                };
                self.hashing = Hashing::Pipe(HashPipe::start(*d));
            }
            match &self.hashing {
                Hashing::Pipe(pipe) => Some(pipe.feed(Arc::clone(&full), from)),
                _ => None,
            }
        } else {
            None
        };
        let file = Rc::clone(&self.file);
        let write = monoio::spawn(background_write(
            file,
            SharedBuf(Arc::clone(&full)),
            at,
            ticket,
        ));
        pending.push_back(Pending {
            write: Some(write),
            direct: *direct,
            hashed,
            buf: full,
            at,
        });
        Ok(())
    }

    /// Wait for the oldest buffer on its way to be written and hashed; the buffer back for
    /// reuse. A write the filesystem refused as direct is written again buffered (and the
    /// writer stays buffered).
    async fn land_oldest(&mut self) -> io::Result<Option<AlignedBuf>> {
        let Mode::Aligned { pending, .. } = &mut self.mode else {
            return Ok(None);
        };
        let Some(Pending {
            write,
            direct: was_direct,
            hashed,
            buf,
            at,
        }) = pending.pop_front()
        else {
            return Ok(None);
        };
        let res = match write {
            Some(write) => write.await,
            None => Ok(()),
        };
        if let Some(hashed) = hashed {
            if hashed.await.is_err() {
                self.hashing = Hashing::Gone;
                return Err(io::Error::other("the spool's hash thread failed"));
            }
        }
        self.written(res, was_direct, &buf, at).await?;
        // Both the write and the hash thread are done with it and dropped their clones: the
        // buffer is this writer's again (were it not, it is freed with the last clone).
        Ok(Arc::try_unwrap(buf).ok().map(|mut b| {
            b.clear();
            b
        }))
    }

    /// Land every buffer on its way (their buffers become spares).
    async fn land_all(&mut self) -> io::Result<()> {
        while matches!(&self.mode, Mode::Aligned { pending, .. } if !pending.is_empty()) {
            let landed = self.land_oldest().await?;
            if let (Mode::Aligned { spare, .. }, Some(b)) = (&mut self.mode, landed) {
                spare.push(b);
            }
        }
        Ok(())
    }

    /// The outcome of a full buffer's background write: a write the filesystem refused as
    /// direct is written again buffered (and the writer stays buffered).
    async fn written(
        &mut self,
        res: io::Result<()>,
        was_direct: bool,
        buf: &Arc<AlignedBuf>,
        at: u64,
    ) -> io::Result<()> {
        match res {
            Ok(()) => Ok(()),
            Err(e) if was_direct && is_refusal(&e) => {
                self.fall_back(&e).await?;
                let (res, _) = write_all(&self.file, SharedBuf(Arc::clone(buf)), at).await;
                res
            }
            Err(e) => Err(e),
        }
    }

    /// A checkpoint inside a PATCH that keeps the pipeline running: it waits for the full
    /// buffers' writes already started (not for their hashing, not for the buffer filling) and
    /// `fdatasync`s; returns the end of the bytes now durable — the end of the last full buffer
    /// (behind [`SpoolWriter::pos`] by the bytes of the buffer filling, which are written by a
    /// later checkpoint or [`SpoolWriter::sync`]). No padded block, no `ftruncate`, no hand-back
    /// of the digests: recording this offset needs none of them (a resumed upload whose
    /// in-memory hasher is gone rehashes the spool's prefix, `crate::tus::dedup`), so the hash
    /// thread goes on with the buffers it holds while the file is flushed.
    pub async fn checkpoint(&mut self) -> io::Result<u64> {
        if let Some(failed) = self.failed {
            return Err(failed_error(failed));
        }
        let durable = match &mut self.mode {
            Mode::Through => self.pos,
            Mode::Aligned {
                pending, cur_start, ..
            } => {
                let end = *cur_start;
                let mut landing = Vec::new();
                for p in pending.iter_mut() {
                    if let Some(write) = p.write.take() {
                        landing.push((write, p.direct, Arc::clone(&p.buf), p.at));
                    }
                }
                for (write, was_direct, buf, at) in landing {
                    let res = write.await;
                    if let Err(e) = self.written(res, was_direct, &buf, at).await {
                        self.fail(&e);
                        return Err(e);
                    }
                }
                // No full buffer yet: `cur_start` is the block below the PATCH's offset, whose
                // bytes up to the offset were durable before.
                end.max(self.start)
            }
        };
        self.file.sync_data().await?;
        Ok(durable)
    }

    /// Bring the digests up to [`SpoolWriter::pos`]: wait for the hash job in flight, then
    /// hash the bytes still in the current buffer here. After this the digests (if not taken)
    /// have consumed exactly the bytes handed to [`SpoolWriter::write`], in order.
    pub async fn catch_up_digests(&mut self) -> io::Result<()> {
        self.unstage();
        if let Err(e) = self.land_all().await {
            self.fail(&e);
            return Err(e);
        }
        if let Hashing::Pipe(_) = self.hashing {
            let Hashing::Pipe(pipe) = std::mem::replace(&mut self.hashing, Hashing::Gone) else {
                unreachable!("matched above")
            };
            // Every piece fed has landed: the thread hands the digests back at once.
            self.hashing = Hashing::Here(Box::new(pipe.finish().await?));
        }
        if let (Mode::Aligned { cur, cur_start, .. }, Hashing::Here(d)) =
            (&self.mode, &mut self.hashing)
        {
            let from = self.hashed_to.saturating_sub(*cur_start) as usize;
            if let Some(rest) = cur.as_slice().get(from..) {
                d.update(rest);
            }
        }
        self.hashed_to = self.pos;
        Ok(())
    }

    /// The digests, fed every byte up to [`SpoolWriter::pos`] when taken right after
    /// [`SpoolWriter::catch_up_digests`] or [`SpoolWriter::sync`]; `None` if already taken (or
    /// lost with a failed hash thread).
    pub fn take_digests(&mut self) -> Option<Digests> {
        match std::mem::replace(&mut self.hashing, Hashing::Gone) {
            Hashing::Here(d) => Some(*d),
            other => {
                self.hashing = other;
                None
            }
        }
    }

    /// Make every byte written so far durable (and the file exactly [`SpoolWriter::pos`] long
    /// when a padded block was written): the checkpoint before an offset is recorded.
    pub async fn sync(&mut self) -> io::Result<()> {
        if let Some(failed) = self.failed {
            return Err(failed_error(failed));
        }
        // Also lands the background write; the bytes a checkpoint moves out of the buffer
        // below must have been hashed.
        self.catch_up_digests().await?;
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
                let mut owned = std::mem::replace(cur, AlignedBuf::new(ALIGN));
                owned.len = padded;
                let (res, mut back) = write_all(&self.file, owned, *cur_start).await;
                back.len = len;
                *cur = back;
                match res {
                    Ok(()) => {}
                    Err(e) if *direct && is_refusal(&e) => refused = Some(e),
                    Err(e) => {
                        self.fail(&e);
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

    /// Close the file, waiting for the background writes first (so none lands after a
    /// truncate or a takeover), and return the buffers to the pool. Bytes not synced may be
    /// lost.
    pub async fn close(mut self) -> io::Result<()> {
        self.unstage();
        // Whatever the background writes' outcome, they are over: nothing lands after this.
        while matches!(&self.mode, Mode::Aligned { pending, .. } if !pending.is_empty()) {
            if let Ok(Some(b)) = self.land_oldest().await {
                if let Mode::Aligned { spare, .. } = &mut self.mode {
                    spare.push(b);
                }
            }
        }
        if let Mode::Aligned { cur, spare, .. } = std::mem::replace(&mut self.mode, Mode::Through) {
            give_back(std::iter::once(cur).chain(spare));
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
            give_back(std::iter::once(cur).chain(spare));
        }
    }
}

/// Whether files in `dir` can be opened with O_DIRECT: a probe file is created there and
/// removed (tests and diagnostics; the writer itself finds out at its open and first write).
pub fn supports_o_direct(dir: &Path) -> bool {
    let probe = dir.join(format!(".o_direct_probe.{}", std::process::id()));
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

async fn buffered(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path).await
}

/// Write all of `buf` at `at`, under `ticket` (dropped when the write is done). The buffer's
/// clone is dropped before the result is handed back, so the writer can reclaim it.
async fn background_write(
    file: Rc<File>,
    buf: SharedBuf,
    at: u64,
    ticket: WriteTicket,
) -> io::Result<()> {
    let (res, buf) = write_all(&file, buf, at).await;
    drop(buf);
    drop(ticket);
    res
}

/// `write_all_at` of `buf`'s initialised bytes (for a padded block, its `len` includes the
/// padding).
async fn write_all<B: IoBuf>(file: &File, mut buf: B, at: u64) -> (io::Result<()>, B) {
    let len = buf.bytes_init();
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

/// What a sync or checkpoint reports after a failed write (its OS error, so a full disk stays a
/// full disk to the caller).
fn failed_error(failed: Option<i32>) -> io::Error {
    match failed {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::other(
            "an earlier spool write failed; the bytes after the last checkpoint are not kept",
        ),
    }
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
    use crate::tus::checksum::ChunkDigest;
    use crate::tus::lock::UploadLocks;
    use crate::tus::test_runtime::block_on;
    use ringcast_proto::tus::checksum::ChecksumAlgorithm;
    use sha2::{Digest as _, Sha256};

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

    fn digests() -> Digests {
        Digests {
            source: Sha256::new(),
            chunk: None,
        }
    }

    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Spool `data` in PATCHes ending at `cuts`, each sent in reads of `read` bytes, with a
    /// sync (checkpoint) every `sync_every` reads; returns whether the writes were direct. The
    /// source sha256 is carried from PATCH to PATCH as the handler does, and must come out as
    /// the data's; each PATCH's chunk digest must be its bytes'.
    fn spool_in_patches(
        path: &Path,
        data: &[u8],
        cuts: &[usize],
        read: usize,
        sync_every: usize,
    ) -> Vec<bool> {
        std::fs::write(path, b"").expect("create");
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        let mut direct = Vec::new();
        let mut source = Sha256::new();
        block_on(async {
            let mut start = 0;
            for &end in cuts {
                let d = Digests {
                    source: source.clone(),
                    chunk: Some(ChunkDigest::new(ChecksumAlgorithm::Sha1)),
                };
                let mut w = SpoolWriter::open(path, start as u64, true, d)
                    .await
                    .expect("open");
                direct.push(w.is_direct());
                for (i, piece) in data[start..end].chunks(read).enumerate() {
                    let (res, _) = w.write(piece.to_vec(), &lock).await;
                    res.expect("write");
                    if i % sync_every == sync_every - 1 {
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
                let d = w.take_digests().expect("digests");
                source = d.source;
                let Some(ChunkDigest::Sha1(chunk)) = d.chunk else {
                    panic!("chunk digest kept")
                };
                assert_eq!(
                    chunk.finalize().to_vec(),
                    sha1::Sha1::digest(&data[start..end]).to_vec(),
                    "the chunk digest covers this PATCH's bytes"
                );
                w.close().await.expect("close");
                assert_eq!(std::fs::metadata(path).expect("meta").len(), end as u64);
                start = end;
            }
        });
        assert_eq!(
            hex::encode(source.finalize()),
            sha256_hex(&data[..*cuts.last().expect("a cut")]),
            "the source digest is the data's"
        );
        direct
    }

    fn check(dir: &Path) -> Vec<bool> {
        let data = payload(6 * BUF + 12_345);
        let path = dir.join("spool.bin");
        // Unaligned PATCH ends, reads smaller and larger than a block, and a PATCH of 1 byte.
        let cuts = [1, 5000, 5001, BUF + 4096, 2 * BUF + 77, data.len()];
        // Frequent checkpoints: no buffer fills between two, every byte hashed inline.
        let direct = spool_in_patches(&path, &data, &cuts, 65_536 + 3, 7);
        let mut runs = vec![direct.clone()];
        // No checkpoint inside a PATCH: full buffers are hashed on another thread, the first
        // one of a PATCH with the bytes read back from before its offset left out.
        runs.push(spool_in_patches(&path, &data, &cuts, 65_536 + 3, 1000));
        // One PATCH, a checkpoint every 10 reads: full buffers start with the partial block
        // the last checkpoint kept (hashed already).
        runs.push(spool_in_patches(
            &path,
            &data,
            &[data.len()],
            65_536 + 3,
            10,
        ));
        runs.push(spool_in_patches(&path, &data, &[data.len()], 1000, 7));
        for run in &runs {
            assert!(
                std::fs::read(&path).expect("read") == data,
                "byte-identical"
            );
            assert_eq!(run[0], direct[0]);
        }
        direct
    }

    /// A temp dir on the disk where the system has one: /var/tmp is on the disk on ordinary
    /// systems (/tmp may be a tmpfs, which refuses O_DIRECT).
    fn disk_tempdir() -> tempfile::TempDir {
        tempfile::tempdir_in("/var/tmp")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir")
    }

    #[test]
    fn a_disk_spool_is_written_direct_and_byte_identical_across_unaligned_patches() {
        let dir = disk_tempdir();
        let supported = supports_o_direct(dir.path());
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
        assert!(!supports_o_direct(dir.path()), "ramfs refuses O_DIRECT");
        let direct = check(dir.path());
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
        assert!(direct.iter().all(|d| !d), "buffered on ramfs: {direct:?}");
    }

    #[test]
    fn a_checkpoint_makes_the_full_buffers_durable_and_the_digests_stay_exact() {
        let dir = disk_tempdir();
        let path = dir.path().join("spool.bin");
        let data = payload(5 * BUF + 777);
        // The PATCH starts at an unaligned offset: its first buffer reads the block below back.
        let start = 1000;
        std::fs::write(&path, &data[..start]).expect("prefix");
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        let mut prefix = Sha256::new();
        prefix.update(&data[..start]);
        let d = Digests {
            source: prefix,
            chunk: Some(ChunkDigest::new(ChecksumAlgorithm::Md5)),
        };
        let mut checkpoints = Vec::new();
        let source = block_on(async {
            let mut w = SpoolWriter::open(&path, start as u64, true, d)
                .await
                .expect("open");
            // Before any full buffer: nothing new is durable, the start is.
            assert_eq!(w.checkpoint().await.expect("checkpoint"), start as u64);
            for (i, piece) in data[start..].chunks(65_536 + 3).enumerate() {
                let (res, _) = w.write(piece.to_vec(), &lock).await;
                res.expect("write");
                if i % 13 == 12 {
                    let durable = w.checkpoint().await.expect("checkpoint");
                    let pos = w.pos();
                    assert!(
                        durable <= pos && pos - durable <= BUF as u64,
                        "durable {durable} is at most a buffer behind {pos}"
                    );
                    // What is declared durable is on disk (read through the page cache, which
                    // O_DIRECT writes keep coherent).
                    let on_disk = std::fs::read(&path).expect("read");
                    assert!(
                        on_disk.len() as u64 >= durable
                            && on_disk[..durable as usize] == data[..durable as usize],
                        "the bytes before the checkpoint's offset are the data's"
                    );
                    checkpoints.push(durable);
                }
            }
            w.sync().await.expect("sync");
            let d = w.take_digests().expect("digests");
            w.close().await.expect("close");
            let Some(ChunkDigest::Md5(chunk)) = d.chunk else {
                panic!("chunk digest kept")
            };
            assert_eq!(
                chunk.finalize().to_vec(),
                md5::Md5::digest(&data[start..]).to_vec(),
                "the chunk digest covers the PATCH's bytes once, in order"
            );
            d.source
        });
        assert!(
            // (Two checkpoints with no buffer filled between them record the same offset.)
            checkpoints.windows(2).all(|w| w[0] <= w[1])
                && checkpoints.first() < checkpoints.last()
                && checkpoints.iter().all(|c| *c >= start as u64),
            "checkpoints move forward: {checkpoints:?}"
        );
        assert_eq!(hex::encode(source.finalize()), sha256_hex(&data));
        assert!(
            std::fs::read(&path).expect("read") == data,
            "byte-identical"
        );
    }

    #[test]
    fn bytes_received_in_place_count_only_once_kept() {
        let dir = disk_tempdir();
        let path = dir.path().join("spool.bin");
        std::fs::write(&path, b"").expect("create");
        let data = payload(3 * BUF + 5000);
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        let d = block_on(async {
            let mut w = SpoolWriter::open(&path, 0, true, digests())
                .await
                .expect("open");
            assert!(w.receives_in_place());
            let mut at = 0;
            for (i, piece) in data.chunks(300_000).enumerate() {
                // Pieces staged over a buffer's end are split like reads that only get the
                // buffer's room.
                let mut rest = piece;
                while !rest.is_empty() {
                    let n = w.stage(rest);
                    if i % 3 == 1 {
                        // Not kept (a takeover between read and write): dropped by whatever
                        // comes next, here the next read staging the same bytes again.
                        assert_eq!(w.pos(), at as u64);
                        let again = w.stage(rest);
                        assert_eq!(again, n);
                    }
                    w.keep(n, &lock).await.expect("keep");
                    rest = &rest[n..];
                    at += n;
                }
            }
            // Staged and never kept: the sync writes none of it, the digests see none of it.
            let n = w.stage(b"never kept");
            assert!(n > 0);
            assert!(w.keep(n + 1, &lock).await.is_err(), "more than staged");
            w.sync().await.expect("sync");
            assert_eq!(w.pos(), data.len() as u64);
            let d = w.take_digests().expect("digests");
            w.close().await.expect("close");
            d
        });
        assert!(
            std::fs::read(&path).expect("read") == data,
            "byte-identical"
        );
        assert_eq!(hex::encode(d.source.finalize()), sha256_hex(&data));
    }

    #[test]
    fn a_writer_without_pooled_buffers_writes_straight_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.bin");
        std::fs::write(&path, b"").expect("create");
        let locks = UploadLocks::default();
        let lock = locks.try_lock("u").expect("lock");
        block_on(async {
            let mut w = SpoolWriter::open(&path, 0, false, digests())
                .await
                .expect("open");
            assert!(!w.is_direct() && !w.fell_back());
            let (res, _) = w.write(b"hello".to_vec(), &lock).await;
            res.expect("write");
            w.sync().await.expect("sync");
            let d = w.take_digests().expect("digests");
            assert_eq!(hex::encode(d.source.finalize()), sha256_hex(b"hello"));
            w.close().await.expect("close");
        });
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
    }
}
