//! The scheduling policy of a server's worker threads.
//!
//! `SCHED_BATCH` is the fair scheduler with one difference: a thread that wakes up never
//! preempts the thread running on its CPU; it waits for that thread to sleep or to use up its
//! slice (at the latest the next scheduler tick), unless the scheduler places it on an idle CPU.
//! An I/O-driven worker wakes up for every few completions; sharing its core with another busy
//! process (a co-located service, a load generator), each such wake-up otherwise interrupts that
//! process, and both pay for the switch and the caches. The cost: a worker waking onto a core
//! busy with another process starts at most a slice later (a few ms) — nothing changes on a
//! core it has to itself. Measured in docs/BENCHMARKS.md ("edge workers under `SCHED_BATCH`",
//! issue 16).

use std::io;

/// Put the calling thread under `SCHED_BATCH` (priority 0, as `SCHED_OTHER`; the nice value
/// stays).
pub fn set_current_thread_batch() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a live, initialised `sched_param` that
    // the call only reads.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's scheduling policy (`libc::SCHED_*`).
pub fn current_thread_policy() -> io::Result<libc::c_int> {
    // SAFETY: pid 0 is the calling thread; the call takes no pointers.
    let ret = unsafe { libc::sched_getscheduler(0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_applies_to_the_calling_thread_only() {
        let before = current_thread_policy().expect("policy of the test thread");
        let inside = std::thread::spawn(|| {
            set_current_thread_batch().expect("SCHED_BATCH needs no privilege");
            current_thread_policy().expect("policy after the change")
        })
        .join()
        .expect("thread");
        assert_eq!(inside, libc::SCHED_BATCH);
        assert_eq!(current_thread_policy().expect("policy again"), before);
    }
}
