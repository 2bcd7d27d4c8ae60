//! Pinning thread-per-core workers to CPUs, and keeping helper threads off a worker's pin.
//!
//! Worker `i` of a thread-per-core server is bound to the `i`-th CPU the process may run on
//! (modulo their count), so a process started under `taskset -c 2,3` pins its workers to 2 and
//! 3, not to 0 and 1. Pinning keeps a worker's caches, its io_uring rings and its sockets' softirq
//! work on one core; the scheduler cannot bounce two workers onto the same core while the other
//! idles.
//!
//! A thread inherits the affinity of the thread that spawns it. Helper threads spawned on
//! demand from a pinned worker (the side runtime's, see `crate::side_runtime`) would otherwise
//! all run on that worker's one CPU: [`unpin_current_thread`] gives such a thread the
//! process's CPUs back, read from the main thread ([`process_cpus`]), which no server pins.

use std::io;

/// The CPUs the calling thread may run on (its affinity mask), in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    cpus_of(0)
}

/// The CPUs the process may run on: the affinity of its main thread (the thread-group leader,
/// whose thread id is the pid), i.e. what the process was started with (`taskset`, cgroup
/// cpusets). Servers pin spawned worker threads, never the main thread, so this is right from
/// any thread at any time, before or after the workers pinned themselves.
pub fn process_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: getpid takes nothing and cannot fail.
    cpus_of(unsafe { libc::getpid() })
}

/// The affinity of thread `tid` (0: the calling thread), in ascending order.
fn cpus_of(tid: libc::pid_t) -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is a valid empty set, and `sched_getaffinity`
    // writes at most `size_of::<cpu_set_t>()` bytes into the set we own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ret =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `CPU_ISSET` only reads the set; `cpu` stays below `CPU_SETSIZE`.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Let the calling thread run on every CPU of the process again ([`process_cpus`]), whatever
/// it inherited from the thread that spawned it.
pub fn unpin_current_thread() -> io::Result<()> {
    let cpus = process_cpus()?;
    if cpus.is_empty() {
        return Err(io::Error::other("the process may run on no CPU"));
    }
    set_current_thread_cpus(&cpus)
}

/// The CPU worker `index` should run on: the `index`-th allowed CPU, wrapping around.
pub fn cpu_for_worker(allowed: &[usize], index: usize) -> Option<usize> {
    (!allowed.is_empty()).then(|| allowed[index % allowed.len()])
}

/// Bind the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    set_current_thread_cpus(&[cpu])
}

/// Let the calling thread run on `cpus` only (all below `CPU_SETSIZE`, at least one).
pub fn set_current_thread_cpus(cpus: &[usize]) -> io::Result<()> {
    if let Some(cpu) = cpus.iter().find(|&&c| c >= libc::CPU_SETSIZE as usize) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} out of range"),
        ));
    }
    // SAFETY: as in `cpus_of`; `CPU_SET` writes one bit of the set we own, each `cpu` is
    // in range, and pid 0 is the calling thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU the calling thread runs on at this moment (for a pinned worker: its core).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments, no memory; -1 on failure.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// Pin the calling worker thread `index` (see [`cpu_for_worker`]); returns the CPU it now runs
/// on. An error leaves the thread unpinned (callers log it and go on: pinning is an
/// optimisation, never a reason not to serve).
pub fn pin_worker(index: usize) -> io::Result<usize> {
    let allowed = process_cpus()?;
    let cpu = cpu_for_worker(&allowed, index)
        .ok_or_else(|| io::Error::other("the process may run on no CPU"))?;
    pin_current_thread(cpu)?;
    Ok(cpu)
}

/// [`pin_worker`] for a server's worker thread at start-up: logs where it went, or why it stays
/// unpinned.
pub fn pin_worker_or_warn(index: usize) {
    match pin_worker(index) {
        Ok(cpu) => tracing::debug!(worker = index, cpu, "worker pinned"),
        Err(error) => {
            tracing::warn!(worker = index, %error, "cannot pin the worker; running unpinned")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_take_allowed_cpus_in_turn() {
        assert_eq!(cpu_for_worker(&[2, 3], 0), Some(2));
        assert_eq!(cpu_for_worker(&[2, 3], 1), Some(3));
        assert_eq!(cpu_for_worker(&[2, 3], 2), Some(2));
        assert_eq!(cpu_for_worker(&[], 0), None);
    }

    #[test]
    fn a_pinned_thread_runs_only_on_its_cpu() {
        let allowed = allowed_cpus().expect("affinity");
        assert!(!allowed.is_empty());
        let last = *allowed.last().expect("one cpu");
        // In a thread of its own: pinning the test runner's thread would leak into other tests.
        let seen = std::thread::spawn(move || {
            let cpu = pin_worker(allowed.len() - 1).expect("pin");
            (cpu, allowed_cpus().expect("affinity after pin"))
        })
        .join()
        .expect("thread");
        assert_eq!(seen, (last, vec![last]));
        assert!(pin_current_thread(libc::CPU_SETSIZE as usize).is_err());
    }

    #[test]
    fn a_thread_spawned_by_a_pinned_one_can_take_the_process_cpus_back() {
        let process = process_cpus().expect("process affinity");
        assert_eq!(process, allowed_cpus().expect("test thread affinity"));
        let first = process[0];
        let (inherited, unpinned, seen_process) = std::thread::spawn(move || {
            pin_current_thread(first).expect("pin");
            std::thread::spawn(|| {
                let inherited = allowed_cpus().expect("inherited");
                unpin_current_thread().expect("unpin");
                (
                    inherited,
                    allowed_cpus().expect("after"),
                    process_cpus().expect("process, seen from a pinned thread's child"),
                )
            })
            .join()
            .expect("inner thread")
        })
        .join()
        .expect("outer thread");
        assert_eq!(inherited, vec![first], "a spawned thread inherits the pin");
        assert_eq!(unpinned, process);
        assert_eq!(seen_process, process);
    }
}
