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
    set_current_thread_fair_policy(libc::SCHED_BATCH)
}

/// Put the calling thread under `policy`, one of the fair policies (priority 0).
fn set_current_thread_fair_policy(policy: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a live, initialised `sched_param` that
    // the call only reads.
    let ret = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's scheduling policy (`libc::SCHED_*`).
pub fn current_thread_policy() -> io::Result<libc::c_int> {
    policy_of(0)
}

/// The process's scheduling policy: its main thread's, which no server changes (workers are
/// spawned threads).
pub fn process_policy() -> io::Result<libc::c_int> {
    // SAFETY: getpid takes nothing and cannot fail.
    policy_of(unsafe { libc::getpid() })
}

fn policy_of(tid: libc::pid_t) -> io::Result<libc::c_int> {
    // SAFETY: the call takes no pointers.
    let ret = unsafe { libc::sched_getscheduler(tid) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Give the calling thread the process's policy back when it inherited `SCHED_BATCH` from the
/// worker that spawned it (a helper thread is not I/O-driven and should not wait behind other
/// work on its CPU). Only the fair policies are switched: a real-time policy stays as it is.
pub fn take_process_policy() -> io::Result<()> {
    let (mine, process) = (current_thread_policy()?, process_policy()?);
    if mine == process || !matches!(process, libc::SCHED_OTHER | libc::SCHED_BATCH) {
        return Ok(());
    }
    set_current_thread_fair_policy(process)
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

    #[test]
    fn a_thread_spawned_by_a_batch_worker_can_take_the_process_policy_back() {
        let process = process_policy().expect("process policy");
        assert_eq!(process, libc::SCHED_OTHER, "the test process runs as usual");
        let (inherited, after) = std::thread::spawn(|| {
            set_current_thread_batch().expect("batch");
            std::thread::spawn(|| {
                let inherited = current_thread_policy().expect("inherited");
                take_process_policy().expect("take the process's policy");
                (inherited, current_thread_policy().expect("after"))
            })
            .join()
            .expect("inner thread")
        })
        .join()
        .expect("outer thread");
        assert_eq!(
            inherited,
            libc::SCHED_BATCH,
            "a spawned thread inherits the policy"
        );
        assert_eq!(after, process);
    }
}
