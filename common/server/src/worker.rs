//! What one worker's connections share (single-threaded: `Cell`s, no atomics).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use crate::{ServerSettings, ServerStats};

pub(crate) struct Worker {
    pub settings: ServerSettings,
    pub stats: Arc<ServerStats>,
    /// Requests being answered right now on this worker (shutdown waits for them).
    pub inflight: Cell<usize>,
    /// Set at shutdown: finish the current request, then close.
    pub draining: Cell<bool>,
    /// The server's shutdown handle: whether the process is draining (see [`crate::shutdown`]).
    pub shutdown: crate::ShutdownHandle,
    /// Connections open on this worker.
    pub open: Cell<usize>,
    /// The ring takes `IORING_RECVSEND_POLL_FIRST` on receives (io_uring on Linux ≥ 5.19):
    /// a keep-alive connection's wait for its next request arms the poll without trying first.
    pub recv_poll_first: bool,
}

/// Counts a connection as open for as long as it lives.
pub(crate) struct OpenGuard<'a>(&'a Worker);

impl<'a> OpenGuard<'a> {
    pub fn new(w: &'a Worker) -> Self {
        w.open.set(w.open.get() + 1);
        w.stats.connection_opened();
        Self(w)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
        self.0.stats.connection_closed();
    }
}

/// Counts a request as in flight from its handler's start until its response is flushed (also
/// when its task is dropped): a worker that is shutting down waits for the count to reach 0, and
/// a count that dropped when the handler returned would let it stop before the response was
/// written.
pub(crate) struct InflightGuard(Rc<Worker>);

impl InflightGuard {
    pub fn new(w: &Rc<Worker>) -> Self {
        w.inflight.set(w.inflight.get() + 1);
        w.stats.request_started();
        Self(Rc::clone(w))
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.set(self.0.inflight.get() - 1);
        self.0.stats.request_finished();
    }
}
