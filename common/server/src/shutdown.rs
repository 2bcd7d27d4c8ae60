//! One shutdown signal for every worker: [`ShutdownHandle::trigger`] wakes each worker through
//! its own oneshot channel (futures-channel; monoio's `sync` feature lets another thread wake a
//! runtime). Nothing on a request path waits on it: a worker stops accepting when woken and
//! sets its thread-local draining flag, which connections read between requests.

use std::sync::{Arc, Mutex};

use futures_channel::oneshot;

/// Stops a running server from any thread (e.g. the signal thread).
#[derive(Clone, Default)]
pub struct ShutdownHandle {
    senders: Arc<Mutex<Vec<oneshot::Sender<()>>>>,
}

impl ShutdownHandle {
    /// Tell every worker to stop accepting and finish. Idempotent.
    pub fn trigger(&self) {
        let senders = std::mem::take(&mut *self.senders.lock().unwrap_or_else(|e| e.into_inner()));
        for tx in senders {
            let _ = tx.send(());
        }
    }

    /// A receiver for one more worker.
    pub(crate) fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }
}
