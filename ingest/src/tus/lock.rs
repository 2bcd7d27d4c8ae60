//! Who may write an upload now: one holder at a time, on any core, and a lock that follows the
//! client. A PATCH whose connection died silently (a laptop closing its lid, a network that
//! dropped without a FIN) would otherwise hold its upload until the body read times out
//! (`idle_timeout_secs`, a minute), while the client's retries (tus-js-client: 0, 1, 3, 5 s) all
//! get 423 and give up.
//!
//! So every holder has a *generation*. A new request for a held upload waits briefly; once the
//! holder has been idle for [`TAKEOVER_IDLE`] (no chunk written) and is not in the middle of
//! writing one, the new request takes the lock over with a new generation — within
//! [`TAKEOVER_WAIT`] at most. The old request notices at its next write (or when it records its
//! offset): its generation is no longer current, so it stops without writing or acknowledging
//! anything. Each chunk's write, hash update and offset checkpoint happen inside
//! [`UploadLock::begin_write`]'s guard, and a takeover waits until no guard is out, so the bytes
//! of two requests never mix and the recorded offset always names fdatasync'ed bytes of one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A holder that wrote nothing for this long can be taken over by a new request.
pub const TAKEOVER_IDLE: Duration = Duration::from_millis(1000);
/// How long a new request waits for a holder to finish or go idle before it gets 423.
pub const TAKEOVER_WAIT: Duration = Duration::from_millis(2000);
/// Poll interval while waiting (the wait is rare: only with a second request on one upload).
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Holder {
    generation: u64,
    /// A chunk is being written (or the offset recorded) right now.
    writing: bool,
    /// Spool writes still running in the background ([`WriteTicket`]s out): a takeover waits
    /// for them as for `writing`.
    in_flight: u32,
    /// Last time the holder took or finished a write.
    last_active: Instant,
}

type Map = HashMap<String, Holder>;

/// The locks of every upload in this process (shared by all cores).
#[derive(Default)]
pub struct UploadLocks {
    map: Arc<Mutex<Map>>,
    next_generation: AtomicU64,
}

/// Held while a request owns an upload; dropping it releases the upload (unless another
/// request has taken it over meanwhile).
pub struct UploadLock {
    id: String,
    generation: u64,
    map: Arc<Mutex<Map>>,
    /// Taken over from an idle holder (counted in the metrics).
    took_over: bool,
}

/// One chunk's write in progress; a takeover waits for it to be dropped.
pub struct WriteGuard<'a> {
    lock: &'a UploadLock,
}

/// A spool write that runs on after its chunk's [`WriteGuard`] (the direct spool writer's
/// background write, `crate::tus::spool_writer`); owned, so it can move into that write's
/// task. A takeover waits until every ticket is dropped, so a new holder never writes while an
/// old holder's bytes may still land.
pub struct WriteTicket {
    id: String,
    generation: u64,
    map: Arc<Mutex<Map>>,
}

fn lock_map(map: &Mutex<Map>) -> MutexGuard<'_, Map> {
    // A poisoned map still holds valid entries; recover it rather than leak locks.
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request for a held upload may do now.
enum Attempt {
    Got(UploadLock),
    /// Held by an active or writing request.
    Busy,
}

impl UploadLocks {
    fn attempt(&self, id: &str, takeover_idle: Option<Duration>) -> Attempt {
        let mut map = lock_map(&self.map);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed) + 1;
        let fresh = Holder {
            generation,
            writing: false,
            in_flight: 0,
            last_active: Instant::now(),
        };
        let mut took_over = false;
        match map.get_mut(id) {
            None => {
                map.insert(id.to_string(), fresh);
            }
            Some(h) => match takeover_idle {
                Some(idle) if !h.writing && h.in_flight == 0 && h.last_active.elapsed() >= idle => {
                    tracing::info!(
                        upload = %id,
                        idle_ms = h.last_active.elapsed().as_millis() as u64,
                        "a new request takes over the upload from an idle one"
                    );
                    *h = fresh;
                    took_over = true;
                }
                _ => return Attempt::Busy,
            },
        }
        Attempt::Got(UploadLock {
            id: id.to_string(),
            generation,
            map: Arc::clone(&self.map),
            took_over,
        })
    }

    /// Claim the upload only if nobody holds it (the expiry sweep, concatenation's partials).
    pub fn try_lock(&self, id: &str) -> Option<UploadLock> {
        match self.attempt(id, None) {
            Attempt::Got(l) => Some(l),
            Attempt::Busy => None,
        }
    }

    /// Claim the upload for a client request: at once when free, by takeover once the holder is
    /// idle (see the module docs), or `None` after [`TAKEOVER_WAIT`].
    pub async fn acquire(&self, id: &str) -> Option<UploadLock> {
        let started = Instant::now();
        loop {
            if let Attempt::Got(l) = self.attempt(id, Some(TAKEOVER_IDLE)) {
                return Some(l);
            }
            if started.elapsed() >= TAKEOVER_WAIT {
                return None;
            }
            monoio::time::sleep(POLL).await;
        }
    }

    /// Uploads held now (for tests and metrics).
    pub fn held(&self) -> usize {
        lock_map(&self.map).len()
    }
}

impl UploadLock {
    /// Start writing a chunk; `None` when another request took the upload over (stop, write
    /// nothing, acknowledge nothing).
    pub fn begin_write(&self) -> Option<WriteGuard<'_>> {
        let mut map = lock_map(&self.map);
        match map.get_mut(&self.id) {
            Some(h) if h.generation == self.generation => {
                h.writing = true;
                h.last_active = Instant::now();
                Some(WriteGuard { lock: self })
            }
            _ => None,
        }
    }

    /// A [`WriteTicket`] for a write that outlives the current guard; `None` when taken over.
    pub fn write_ticket(&self) -> Option<WriteTicket> {
        let mut map = lock_map(&self.map);
        match map.get_mut(&self.id) {
            Some(h) if h.generation == self.generation => {
                h.in_flight += 1;
                h.last_active = Instant::now();
                Some(WriteTicket {
                    id: self.id.clone(),
                    generation: self.generation,
                    map: Arc::clone(&self.map),
                })
            }
            _ => None,
        }
    }

    /// This request got the upload by taking it over from an idle one.
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    /// Whether this request still holds the upload.
    pub fn is_current(&self) -> bool {
        lock_map(&self.map)
            .get(&self.id)
            .is_some_and(|h| h.generation == self.generation)
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let mut map = lock_map(&self.lock.map);
        if let Some(h) = map.get_mut(&self.lock.id) {
            if h.generation == self.lock.generation {
                h.writing = false;
                h.last_active = Instant::now();
            }
        }
    }
}

impl Drop for WriteTicket {
    fn drop(&mut self) {
        let mut map = lock_map(&self.map);
        if let Some(h) = map.get_mut(&self.id) {
            if h.generation == self.generation {
                h.in_flight = h.in_flight.saturating_sub(1);
                h.last_active = Instant::now();
            }
        }
    }
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        let mut map = lock_map(&self.map);
        if map
            .get(&self.id)
            .is_some_and(|h| h.generation == self.generation)
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tus::test_runtime::block_on;

    #[test]
    fn exclusive_then_released() {
        let locks = UploadLocks::default();
        let a = locks.try_lock("u").expect("free");
        assert!(locks.try_lock("u").is_none());
        drop(a);
        assert!(locks.try_lock("u").is_some());
        assert_eq!(locks.held(), 0, "released on drop");
    }

    #[test]
    fn an_idle_holder_is_taken_over_and_writes_nothing_after() {
        let locks = UploadLocks::default();
        let old = locks.try_lock("u").expect("free");
        let started = Instant::now();
        let new = block_on(locks.acquire("u")).expect("taken over");
        assert!(new.took_over());
        let waited = started.elapsed();
        assert!(
            waited >= TAKEOVER_IDLE && waited < TAKEOVER_WAIT,
            "{waited:?}"
        );
        assert!(!old.is_current());
        assert!(old.begin_write().is_none(), "the old holder may not write");
        drop(old);
        assert!(new.is_current(), "the old holder's drop keeps the new lock");
        assert!(new.begin_write().is_some());
    }

    #[test]
    fn a_holder_with_a_write_in_flight_is_not_taken_over() {
        let locks = UploadLocks::default();
        let old = locks.try_lock("u").expect("free");
        let ticket = old.write_ticket().expect("current");
        let started = Instant::now();
        assert!(
            block_on(locks.acquire("u")).is_none(),
            "423 while a write runs"
        );
        assert!(started.elapsed() >= TAKEOVER_WAIT);
        drop(ticket);
        let new = block_on(locks.acquire("u")).expect("taken over once the write landed");
        assert!(new.took_over());
        assert!(
            old.write_ticket().is_none(),
            "the old holder starts no write"
        );
    }

    #[test]
    fn a_writing_holder_is_not_taken_over() {
        let locks = UploadLocks::default();
        let old = locks.try_lock("u").expect("free");
        let _writing = old.begin_write().expect("current");
        let started = Instant::now();
        assert!(block_on(locks.acquire("u")).is_none(), "423 while writing");
        assert!(started.elapsed() >= TAKEOVER_WAIT);
        assert!(old.is_current());
    }
}
