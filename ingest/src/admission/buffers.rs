//! PATCH buffers, pooled per worker so the memory PATCH bodies take stays bounded however many
//! uploads are open: a worker keeps at most `admission.patch_buffers_per_worker` full-size
//! buffers ([`FULL`]); a PATCH that finds them all in use streams through a [`SMALL`] one
//! (slower, many more reads, but never unbounded memory). Buffers return to the pool when the
//! PATCH ends, so steady upload traffic allocates nothing.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use crate::app::App;

/// Bytes moved per socket read / file write with a pooled buffer.
pub const FULL: usize = 256 * 1024;
/// Bytes per read when the pool is exhausted.
pub const SMALL: usize = 16 * 1024;

#[derive(Default)]
struct Pool {
    /// Full-size buffers handed out and not returned yet.
    in_use: usize,
    free: Vec<Vec<u8>>,
}

thread_local! {
    /// One pool per worker thread (monoio runs one runtime per thread).
    static POOL: RefCell<Pool> = RefCell::default();
}

/// A PATCH's claim on a pooled buffer (or on none, for a small one).
pub struct Lease {
    pooled: bool,
}

/// A buffer for one PATCH and the read size to use with it.
pub fn take(app: &App) -> (Vec<u8>, usize, Lease) {
    let cap = app.config.admission.patch_buffers_per_worker;
    let pooled = POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.in_use < cap {
            p.in_use += 1;
            Some(p.free.pop().unwrap_or_else(|| Vec::with_capacity(FULL)))
        } else {
            None
        }
    });
    match pooled {
        Some(buf) => {
            app.metrics
                .admission
                .pooled_buffer_patches
                .fetch_add(1, Ordering::Relaxed);
            (buf, FULL, Lease { pooled: true })
        }
        None => {
            app.metrics
                .admission
                .small_buffer_patches
                .fetch_add(1, Ordering::Relaxed);
            (Vec::with_capacity(SMALL), SMALL, Lease { pooled: false })
        }
    }
}

impl Lease {
    /// A full-size buffer from the pool (not the small fallback).
    pub fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// Give the buffer back for the next PATCH on this worker.
    pub fn give_back(self, mut buf: Vec<u8>) {
        if self.pooled && buf.capacity() >= FULL {
            buf.clear();
            POOL.with(|p| p.borrow_mut().free.push(buf));
        }
        // `self` drops here and releases the slot.
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.pooled {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                // Buffers come back only from leases: free + in use never pass the cap.
                p.in_use = p.in_use.saturating_sub(1);
            });
        }
    }
}
