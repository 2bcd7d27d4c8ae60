//! The tokio "side runtime": one process-wide tokio thread that runs libraries built on tokio
//! (rust-s3, redis) on behalf of monoio cores.
//!
//! Why: edge and ingest run one monoio runtime per core; tokio-based clients cannot run there.
//! Instead of a tokio runtime per core, a single side thread takes the work and hands back a
//! future that any executor can await (tokio's `JoinHandle` only needs a waker). Hot paths (edge
//! cache hits, tus PATCH bodies) never cross it.
//!
//! Where its threads run: tokio spawns the blocking pool's threads on demand, from whichever
//! thread calls `spawn_blocking` — usually a server worker pinned to one CPU (and for the edge
//! under `SCHED_BATCH`) — and the runtime itself is built by its first caller, often a worker
//! too. A thread inherits its spawner's affinity and policy, so every side thread would run on
//! that one worker's core, taking turns with it. Each thread therefore starts by taking the
//! process's CPUs and policy back ([`run_as_the_process`]).

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
        builder()
            .build()
            // Start-up failure (no threads / no epoll) leaves nothing to serve with.
            .expect("cannot start the tokio side runtime")
    })
}

fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(1)
        .thread_name("ringcast-side")
        .on_thread_start(run_as_the_process)
        .enable_all();
    builder
}

/// A side thread's first step: the process's CPUs and scheduling policy, not those of the
/// (pinned, batch) thread that spawned it (see the module docs). Best effort: an error leaves
/// the thread as it was.
fn run_as_the_process() {
    if let Err(error) = crate::cpu_affinity::unpin_current_thread() {
        tracing::debug!(%error, "side thread keeps the CPUs it inherited");
    }
    if let Err(error) = crate::sched_policy::take_process_policy() {
        tracing::debug!(%error, "side thread keeps the policy it inherited");
    }
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

    #[test]
    fn threads_started_from_a_pinned_batch_worker_run_as_the_process() {
        use crate::cpu_affinity::{allowed_cpus, pin_current_thread, process_cpus};
        use crate::sched_policy::{
            current_thread_policy, process_policy, set_current_thread_batch,
        };
        let process = process_cpus().expect("process affinity");
        let worker_cpu = process[0];
        let seen = std::thread::spawn(move || {
            // As a server worker: pinned, under SCHED_BATCH; it builds a runtime of its own
            // (fresh threads, none left over from other tests) and starts blocking work there.
            pin_current_thread(worker_cpu).expect("pin");
            set_current_thread_batch().expect("batch");
            let rt = builder().build().expect("runtime");
            let where_ = || {
                (
                    allowed_cpus().expect("cpus"),
                    current_thread_policy().expect("policy"),
                )
            };
            let on_worker = rt.block_on(async { rt.spawn(async move { where_() }).await });
            let on_pool = rt.block_on(rt.spawn_blocking(where_));
            (
                on_worker.expect("worker task"),
                on_pool.expect("blocking task"),
            )
        })
        .join()
        .expect("worker thread");
        let expected = (process, process_policy().expect("process policy"));
        assert_eq!(seen.0, expected, "the runtime's worker thread");
        assert_eq!(seen.1, expected, "a blocking-pool thread");
    }

    /// Minimal executor: proves the side runtime's futures need no tokio context to be awaited.
    fn futures_block_on<F: Future>(fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(fut)
    }
}
