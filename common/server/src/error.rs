//! Why the shell could not start.

use std::io;

/// A worker could not start (the whole server then stops).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("worker {worker}: cannot {what}: {source}")]
    Worker {
        worker: usize,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("worker {0} exited during start-up")]
    WorkerLost(usize),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}
