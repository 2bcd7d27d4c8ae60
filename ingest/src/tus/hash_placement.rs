//! Where and how urgently a PATCH's hash thread ([`crate::tus::digests::HashPipe`]) runs. The
//! SHA-256 of the source must cover every byte before the PATCH is acknowledged, and on one core
//! it runs at about the disk's O_DIRECT speed, so it bounds a large upload (docs/BENCHMARKS.md,
//! issue 13). What keeps it running:
//!
//! - **Off its worker's core**: the worker is pinned (`ringcast_infra::cpu_affinity`); a hash
//!   thread the scheduler puts on that same core takes turns with its own feeder. The hash
//!   thread may run on any of the process's CPUs but that one (left alone on a one-CPU process).
//!   The process's CPUs come from `cpu_affinity::process_cpus` (the main thread's), not from the
//!   pool thread's own affinity: before the side runtime's threads took the process's CPUs back
//!   at start, a pool thread spawned by a pinned worker had only that worker's CPU, found no
//!   other CPU to move to, and hashed on the worker's core in about half the uploads
//!   (docs/BENCHMARKS.md, issue 13, 2026-12-06 22:00–23:14 UTC).
//! - **Optionally ahead of the other threads on its core** (`uploads.hash_thread_nice`, default
//!   0: off): on a small machine the core it gets is shared with the client, other workers and
//!   the kernel's socket work, and at nice 0 it gets its fair share of that core. On the 2-core
//!   test VM nice -5 measured no gain when the machine was quiet (0.930× vs 0.929× dd by the
//!   medians; docs/BENCHMARKS.md), so it is off unless configured. A weight of about 3:1 at -5,
//!   not a real-time class: a core busy with other requests still gets a quarter of its time.
//!
//! The thread comes from the side runtime's blocking pool, so both are undone when the PATCH's
//! hashing ends. Both are optimisations: an error leaves the thread as it was (a missing
//! CAP_SYS_NICE is logged once).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use ringcast_infra::cpu_affinity::{allowed_cpus, process_cpus, set_current_thread_cpus};

/// The nice value hash threads take (`uploads.hash_thread_nice`; 0: left alone).
static NICE: AtomicI32 = AtomicI32::new(0);
/// A refused priority change was logged (once per process).
static NICE_REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);

/// Set the nice value hash threads take from now on (at start-up, from the config).
pub fn set_nice(nice: i32) {
    NICE.store(nice, Ordering::Relaxed);
}

/// `cpus` without `cpu`, or `None` when that would leave no CPU (a one-core process runs both
/// on the one core, as before).
fn without(cpus: &[usize], cpu: usize) -> Option<Vec<usize>> {
    let rest: Vec<usize> = cpus.iter().copied().filter(|&c| c != cpu).collect();
    (!rest.is_empty()).then_some(rest)
}

/// The calling thread's id, as `setpriority` takes it.
fn thread_id() -> libc::id_t {
    // SAFETY: no arguments; gettid cannot fail.
    unsafe { libc::gettid() as libc::id_t }
}

/// The calling thread's nice value.
fn get_nice() -> io::Result<i32> {
    // getpriority may return -1 as a value: errno tells an error apart.
    // SAFETY: errno is this thread's; getpriority only reads the thread's priority.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, thread_id());
        match *libc::__errno_location() {
            0 => Ok(nice),
            code => Err(io::Error::from_raw_os_error(code)),
        }
    }
}

fn set_nice_of_thread(nice: i32) -> io::Result<()> {
    // SAFETY: changes only the calling thread's priority (PRIO_PROCESS with a thread id).
    match unsafe { libc::setpriority(libc::PRIO_PROCESS, thread_id(), nice) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The calling (hash) thread moved off the worker's CPU and/or given the configured nice value;
/// dropping it puts the thread back as it was.
pub struct Placed {
    /// The CPUs the thread had before it was moved.
    affinity: Option<Vec<usize>>,
    nice: Option<i32>,
}

impl Placed {
    /// Move the calling thread off `worker_cpu` (unless that leaves no CPU, or the CPU is not
    /// known) and give it the configured nice value.
    pub fn away_from(worker_cpu: Option<usize>) -> Self {
        Self {
            affinity: off_cpu(worker_cpu),
            nice: reniced(NICE.load(Ordering::Relaxed)),
        }
    }
}

/// The CPUs the thread had before, once it was moved off `cpu` onto the process's other CPUs.
fn off_cpu(cpu: Option<usize>) -> Option<Vec<usize>> {
    let before = allowed_cpus().ok()?;
    let away = without(&process_cpus().ok()?, cpu?)?;
    match set_current_thread_cpus(&away) {
        Ok(()) => Some(before),
        Err(error) => {
            tracing::debug!(%error, "hash thread left on the CPUs it had");
            None
        }
    }
}

/// The nice value before, once the thread took `nice` (0: not changed).
fn reniced(nice: i32) -> Option<i32> {
    if nice == 0 {
        return None;
    }
    let before = get_nice().ok()?;
    match set_nice_of_thread(nice) {
        Ok(()) => Some(before),
        Err(error) => {
            if !NICE_REFUSAL_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    nice,
                    %error,
                    "cannot change the hash threads' priority (a nice value below 0 needs \
                     CAP_SYS_NICE); uploads hash at normal priority (logged once)"
                );
            }
            None
        }
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        // Back to what the pool's thread had (it may run other blocking work next). Raising
        // one's own nice value back needs no privilege.
        if let Some(nice) = self.nice {
            let _ = set_nice_of_thread(nice);
        }
        if let Some(before) = &self.affinity {
            let _ = set_current_thread_cpus(before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reniced_thread_takes_the_value_and_gets_its_own_back() {
        std::thread::spawn(|| {
            let before = get_nice().expect("nice");
            // Raising the nice value (lower priority) needs no privilege.
            let placed = Placed {
                affinity: None,
                nice: reniced(before + 3),
            };
            assert_eq!(placed.nice, Some(before));
            assert_eq!(get_nice().expect("nice"), before + 3);
            drop(placed);
            assert_eq!(get_nice().expect("nice"), before);
            assert_eq!(reniced(0), None, "0 leaves it alone");
            assert_eq!(get_nice().expect("nice"), before);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn a_placed_thread_avoids_the_worker_cpu_and_goes_back_after() {
        std::thread::spawn(|| {
            let all = allowed_cpus().expect("affinity");
            let worker = all[0];
            let placed = off_cpu(Some(worker));
            if all.len() < 2 {
                assert!(placed.is_none(), "one CPU: nothing to move to");
                return;
            }
            let placed = Placed {
                affinity: placed,
                nice: None,
            };
            assert!(placed.affinity.is_some(), "moved");
            let now = allowed_cpus().expect("affinity");
            assert!(!now.contains(&worker), "off the worker's CPU: {now:?}");
            assert_eq!(now.len(), all.len() - 1);
            drop(placed);
            assert_eq!(allowed_cpus().expect("affinity"), all, "restored");
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn a_thread_pinned_to_the_worker_cpu_still_moves_to_the_process_other_cpus() {
        std::thread::spawn(|| {
            let all = allowed_cpus().expect("affinity");
            if all.len() < 2 {
                eprintln!("SKIPPED: one CPU, nothing to move to");
                return;
            }
            let worker = all[0];
            // As a pool thread spawned by the pinned worker inherits its affinity.
            set_current_thread_cpus(&[worker]).expect("pin");
            let placed = Placed {
                affinity: off_cpu(Some(worker)),
                nice: None,
            };
            assert_eq!(
                placed.affinity.as_deref(),
                Some(&[worker][..]),
                "had the worker's"
            );
            let now = allowed_cpus().expect("affinity");
            assert_eq!(now, without(&all, worker).expect("others"));
            drop(placed);
            assert_eq!(allowed_cpus().expect("affinity"), vec![worker], "restored");
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn no_cpu_known_or_none_left_leaves_the_thread_alone() {
        std::thread::spawn(|| {
            let before = allowed_cpus().expect("affinity");
            assert!(off_cpu(None).is_none());
            assert!(without(&[3], 3).is_none(), "the only CPU stays");
            assert_eq!(without(&[3], 5).expect("other"), vec![3]);
            assert_eq!(without(&[1, 3], 1).expect("other"), vec![3]);
            assert_eq!(allowed_cpus().expect("affinity"), before);
        })
        .join()
        .expect("thread");
    }
}
