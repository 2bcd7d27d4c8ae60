//! One shutdown signal for every worker: [`ShutdownHandle::trigger`] wakes each worker through
//! its own oneshot channel (futures-channel; monoio's `sync` feature lets another thread wake a
//! runtime). Nothing on a request path waits on it: a worker stops accepting when woken and
//! sets its thread-local draining flag, which connections read between requests.
//!
//! Before that, the process may be *draining* ([`ShutdownHandle::begin_drain`]): still serving,
//! but answering `/readyz` with 503 so load balancers take it out first (the signal thread
//! holds this state for the configured drain delay, then triggers the shutdown).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::oneshot;

/// Stops a running server from any thread (e.g. the signal thread).
#[derive(Clone, Default)]
pub struct ShutdownHandle {
    senders: Arc<Mutex<Vec<oneshot::Sender<()>>>>,
    /// Set by [`ShutdownHandle::begin_drain`] and by [`ShutdownHandle::trigger`].
    draining: Arc<AtomicBool>,
    /// The drain delay in milliseconds (the server's settings).
    drain_delay_ms: Arc<AtomicU64>,
}

impl ShutdownHandle {
    /// Mark the process as draining: it keeps serving, `/readyz` answers 503. Idempotent.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Draining or shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// How long the signal thread keeps the process draining before it triggers the shutdown.
    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_drain_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.drain_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Tell every worker to stop accepting and finish. Idempotent.
    pub fn trigger(&self) {
        self.begin_drain();
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
