//! Head and body in one `writev`: the pending output (response heads) and a shared body
//! `Bytes` leave in one system call (one io_uring SQE) without copying the body into the
//! connection's buffer.
//!
//! Why: an LL-HLS part announcement releases every held player at once and all of them fetch
//! the same part. Copying that part behind each head gave every connection its own copy of
//! it (500 viewers × 39 KB = 20 MB of buffers the kernel then copied again from, cold);
//! with `writev` the kernel copies from the one shared `Bytes`, which stays in the CPU cache
//! across the herd (docs/BENCHMARKS.md "LL-HLS herd cost vs nginx").

use bytes::Bytes;
use monoio::buf::IoVecBuf;

/// `head` then `body` as one gather list. The iovecs live in a `Box` so the pointer handed to
/// the kernel stays put while the runtime moves this value around.
pub(crate) struct HeadBody {
    pub head: Vec<u8>,
    pub body: Bytes,
    iov: Box<[libc::iovec; 2]>,
}

impl HeadBody {
    pub fn new(head: Vec<u8>, body: Bytes) -> Self {
        let iov = Box::new([
            libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: body.as_ptr() as *mut libc::c_void,
                iov_len: body.len(),
            },
        ]);
        Self { head, body, iov }
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }
}

// SAFETY: the iovecs point into `head`'s heap buffer and `body`'s shared buffer, both owned by
// this value and never mutated or reallocated while it exists (the fields are only read back
// after the runtime returns the value), and the array itself is boxed, so the pointer returned
// here does not change while the runtime owns the value. Both entries are valid iovecs.
unsafe impl IoVecBuf for HeadBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gather_list_covers_head_then_body() {
        let hb = HeadBody::new(
            b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            Bytes::from_static(b"abc"),
        );
        assert_eq!(hb.len(), 22);
        assert_eq!(hb.read_iovec_len(), 2);
        // SAFETY: two valid iovecs, see the impl.
        let iov = unsafe { std::slice::from_raw_parts(hb.read_iovec_ptr(), 2) };
        assert_eq!(iov[0].iov_base as *const u8, hb.head.as_ptr());
        assert_eq!(iov[0].iov_len, 19);
        assert_eq!(iov[1].iov_base as *const u8, hb.body.as_ptr());
        assert_eq!(iov[1].iov_len, 3);
    }
}
