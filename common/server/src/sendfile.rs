//! Zero-copy file → socket with `sendfile(2)` on monoio.
//!
//! monoio 0.2.4 has no file→socket splice (RECIPES.md "Zero-copy on monoio"), so the edge calls
//! `libc::sendfile` on the socket's raw descriptor itself, in a loop, and waits with
//! `TcpStream::writable()` when the socket buffer is full. The kernel moves page-cache pages to
//! the socket without a userspace copy, which is what nginx does for its 2 MB responses.
//!
//! Blocking mode: under io_uring, monoio accepts sockets in blocking mode (io_uring never needs
//! O_NONBLOCK), and a blocking `sendfile` of a 2 MB body would stall the whole worker until a slow
//! client read it. So the connection switches its socket to O_NONBLOCK before its first file
//! body ([`set_nonblocking`]) and leaves it so: switching it there and back around every
//! transfer cost three `fcntl` calls per response, as much as a live part's copy that
//! `sendfile` saves (docs/BENCHMARKS.md "LL-HLS herd cost vs nginx"). The socket's later
//! io_uring reads and writes normally do not notice: io_uring retries an operation that would
//! block by polling whenever the file supports non-blocking attempts, as sockets do, whatever
//! its O_NONBLOCK flag says. One it runs on its worker threads instead fails with `EAGAIN`
//! (seastar#3479), so the connection's reads and writes then wait with [`ready`] and try again
//! (`conn.rs`); the legacy driver's sockets are non-blocking from the start.
//! `edge/tests/live.rs` (`hot_parts_are_sent_whole_in_ranges_and_pipelined`) fills such a
//! socket with io_uring writes to a client that is not reading, on both drivers.
//!
//! The response head (and any pipelined responses queued before it) goes out first with
//! `send(MSG_MORE)`, and the body with one `sendfile` call for all of it: the kernel then packs
//! head and body into full-sized segments and pushes only the last one, as nginx does with
//! `tcp_nopush`. Measured (2 MiB bodies, wrk -c64 on loopback): the head written on its own
//! through io_uring with TCP_NODELAY cost one extra io_uring round trip and ~14 more TCP
//! segments per response (68 vs 54 for nginx), and the client's receive path paid for them.
//! When the socket buffer is full the task parks on `writable()` and the worker serves its other
//! connections meanwhile; a call is capped at [`CHUNK`] bytes.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use monoio::net::TcpStream;

/// Largest transfer per `sendfile` call. A non-blocking call returns once the socket buffer is
/// full, so the cap only bounds one call's work; 2 MiB segments go out in a single call.
pub const CHUNK: usize = 16 * 1024 * 1024;

/// The raw system calls this module needs.
enum Sys {
    GetFlags,
    SetFlags(libc::c_int),
    /// `send(2)` with `MSG_MORE`: more data follows, do not push a partial segment.
    SendMore(*const u8, usize),
    SendFile {
        file: RawFd,
        offset: *mut libc::off_t,
        count: usize,
    },
}

/// The one place with `unsafe`: `fcntl`, `send` and `sendfile` on descriptors the caller borrows.
fn sys(sock: RawFd, call: Sys) -> io::Result<usize> {
    // SAFETY: `sock` and `file` are open descriptors borrowed from a live `TcpStream` and `File`
    // for the duration of the call (the callers hold `&TcpStream` / `&File`), so they cannot be
    // closed or reused meanwhile. `fcntl(F_GETFL/F_SETFL)` only reads/sets status flags.
    // `sendfile` writes through `offset`, which points at a live, exclusively borrowed `off_t`
    // on the caller's stack (see `send_file`), and reads no user memory otherwise. `send` reads
    // `len` bytes from a pointer into a slice the caller borrows for the call (see `send_file`).
    let ret: isize = unsafe {
        match call {
            Sys::GetFlags => libc::fcntl(sock, libc::F_GETFL) as isize,
            Sys::SetFlags(flags) => libc::fcntl(sock, libc::F_SETFL, flags) as isize,
            Sys::SendMore(buf, len) => libc::send(sock, buf.cast(), len, libc::MSG_MORE),
            Sys::SendFile {
                file,
                offset,
                count,
            } => libc::sendfile(sock, file, offset, count),
        }
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Switch `stream` to non-blocking mode for the rest of its life (see the module docs); a
/// socket that already is one costs one `fcntl`.
pub fn set_nonblocking(stream: &TcpStream) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    let flags = sys(fd, Sys::GetFlags)? as libc::c_int;
    if flags & libc::O_NONBLOCK == 0 {
        sys(fd, Sys::SetFlags(flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// Send `head` (the response head and anything queued before it), then `len` bytes of `file`
/// starting at `offset`, to `stream`, which must be non-blocking ([`set_nonblocking`]). Each
/// wait for the socket to become writable may last at most `idle_timeout`. Returns the file bytes sent (always `len` on success); a file shorter
/// than promised is an error (`UnexpectedEof`), so the caller closes the connection instead of
/// leaving a response short of its `Content-Length`. `on_progress` sees every byte written, head included.
pub async fn send_file(
    stream: &TcpStream,
    head: &[u8],
    file: &File,
    offset: u64,
    len: u64,
    idle_timeout: Duration,
    mut on_progress: impl FnMut(u64),
) -> io::Result<u64> {
    let sock = stream.as_raw_fd();
    let mut head_sent = 0;
    while head_sent < head.len() {
        let rest = &head[head_sent..];
        match sys(sock, Sys::SendMore(rest.as_ptr(), rest.len())) {
            Ok(n) => {
                head_sent += n;
                on_progress(n as u64);
            }
            Err(e) => retry_or_fail(stream, e, idle_timeout).await?,
        }
    }
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
    let mut sent = 0u64;
    while sent < len {
        let count = (len - sent).min(CHUNK as u64) as usize;
        let call = Sys::SendFile {
            file: file.as_raw_fd(),
            offset: &mut off,
            count,
        };
        match sys(sock, call) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                sent += n as u64;
                on_progress(n as u64);
            }
            Err(e) => retry_or_fail(stream, e, idle_timeout).await?,
        }
    }
    Ok(sent)
}

/// After a failed non-blocking call: wait for the socket to drain (`EAGAIN`) or retry at once
/// (`EINTR`); any other error ends the transfer.
async fn retry_or_fail(stream: &TcpStream, e: io::Error, idle_timeout: Duration) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::WouldBlock => ready(stream, Interest::Write, idle_timeout).await,
        io::ErrorKind::Interrupted => Ok(()),
        _ => Err(e),
    }
}

/// An operation on the socket said it would block. Only possible once the connection made its
/// socket non-blocking for `sendfile` ([`set_nonblocking`]): io_uring normally waits by polling
/// whatever the flag says, but an operation it hands to its worker threads instead (after
/// repeated spurious wake-ups, or on older kernels) then fails with `EAGAIN` like a
/// non-blocking system call would (seastar#3479). Wait with [`ready`] and try again.
pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// What [`ready`] waits for.
pub(crate) enum Interest {
    Read,
    Write,
}

/// Wait until `stream` is readable or writable, at most `idle_timeout`: after a raw call here
/// hit `EAGAIN`, and after an io_uring operation did on the non-blocking socket (`conn.rs`).
/// `relaxed = false`: check real readiness (the legacy driver's cached readiness does not know
/// that a raw call hit `EAGAIN`).
pub(crate) async fn ready(
    stream: &TcpStream,
    interest: Interest,
    idle_timeout: Duration,
) -> io::Result<()> {
    let wait = async {
        match interest {
            Interest::Read => stream.readable(false).await,
            Interest::Write => stream.writable(false).await,
        }
    };
    match monoio::time::timeout(idle_timeout, wait).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
