//! The tokio "side runtime": one process-wide tokio thread that runs libraries built on tokio
//! (rust-s3, redis) on behalf of monoio cores.
//!
//! Why: edge and ingest run one monoio runtime per core; tokio-based clients cannot run there.
//! Instead of a tokio runtime per core, a single side thread takes the work and hands back a
//! future that any executor can await (tokio's `JoinHandle` only needs a waker). Hot paths (edge
//! cache hits, tus PATCH bodies) never cross it.

use std::future::Future;
use std::sync::OnceLock;

/// Error when the side runtime could not run a task to completion.
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    #[error("side runtime task panicked or was cancelled: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ringcast-side")
            .enable_all()
            .build()
            // Start-up failure (no threads / no epoll) leaves nothing to serve with.
            .expect("cannot start the tokio side runtime")
    })
}

/// A handle to the side runtime, e.g. to build clients that must be created inside tokio.
pub fn handle() -> tokio::runtime::Handle {
    runtime().handle().clone()
}

/// Run `fut` on the side runtime and await its output from any executor (monoio or tokio).
pub async fn run<F>(fut: F) -> Result<F::Output, SideError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime().spawn(fut).await?)
}

/// Run a blocking closure on the side runtime's blocking pool (file copies, hashing).
pub async fn run_blocking<F, T>(f: F) -> Result<T, SideError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Ok(runtime().spawn_blocking(f).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_futures_from_a_plain_thread() {
        let out = futures_block_on(run(async { 40 + 2 })).expect("side task");
        assert_eq!(out, 42);
    }

    #[test]
    fn reports_a_panicking_task() {
        let out = futures_block_on(run(async { panic!("boom") }));
        assert!(matches!(out, Err(SideError::Join(_))));
    }

    /// Minimal executor: proves the side runtime's futures need no tokio context to be awaited.
    fn futures_block_on<F: Future>(fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(fut)
    }
}
