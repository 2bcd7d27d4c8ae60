//! Ready-made heads for plain hits: a GET/HEAD of a memory-tier object without a range, a
//! precondition or a gzip choice always gets the same head within one second (same `Date`,
//! `Age`, validators, `X-Cache`), so each worker builds that head once per second and object
//! and shares it ([`ringcast_server::SharedHead`]); the connection writes its cached bytes with
//! one copy. A 1 KiB hit is then parse → lookup → one head copy + body → one send.
//!
//! Why: building the head (nine fields pushed one by one), dropping it and formatting it field
//! by field into the output was ≈8 % of an edge worker on 1 KiB hits (perf, issue 16), where
//! nginx's whole answer to the same request costs about as much as the edge's.
//!
//! The cache is per worker thread (no locking), direct-mapped by the object's ETag, and keyed
//! by everything the head is made from ([`Key`]): a changed object (another ETag or fetch
//! time), another second, age or cache status simply misses and replaces the slot.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ringcast_proto::http::RequestHead;
use ringcast_server::SharedHead;

use super::ObjectMeta;

/// Slots per worker: more than the small objects a herd asks for in the same second.
const SLOTS: usize = 64;

/// Everything the head of a plain 200 is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The second of the `Date` header. Read just before the head is built: if the second
    /// turns in between, the head is shared for the microseconds left of the earlier second
    /// with the later date, within the header's one-second resolution.
    pub date_secs: u64,
    pub meta: ObjectMeta,
}

/// One slot: the key a head was made for, and the head.
type Slot = Option<(Key, Arc<SharedHead>)>;

thread_local! {
    static SLOTS_OF_WORKER: RefCell<Vec<Slot>> = RefCell::new(vec![None; SLOTS]);
}

/// Whether `req` asks for the whole identity body with no condition: no `Range`, `If-Range`,
/// `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` (the caller checks
/// the gzip choice, which depends on the object).
pub fn is_plain(req: &RequestHead) -> bool {
    !req.headers.iter().any(|(name, _)| {
        let n = name.as_bytes();
        (n.len() == 5 && name.eq_ignore_ascii_case("range"))
            || (n.len() > 3 && n[..3].eq_ignore_ascii_case(b"if-"))
    })
}

/// The head made for `key` in this second, if this worker has it.
pub fn get(key: &Key) -> Option<Arc<SharedHead>> {
    SLOTS_OF_WORKER.with_borrow(|slots| match &slots[slot(key)] {
        Some((k, head)) if k == key => Some(Arc::clone(head)),
        _ => None,
    })
}

/// Keep `head` as the head of `key` (replacing whatever had its slot).
pub fn put(key: Key, head: Arc<SharedHead>) {
    SLOTS_OF_WORKER.with_borrow_mut(|slots| slots[slot(&key)] = Some((key, head)));
}

fn slot(key: &Key) -> usize {
    let mut h = LastWord(0);
    key.meta.etag.hash(&mut h);
    (h.0 as usize) % SLOTS
}

/// The ETag is already a content hash (xxh3): its words need no mixing.
struct LastWord(u64);

impl Hasher for LastWord {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::req;
    use super::*;

    #[test]
    fn only_requests_without_range_or_conditions_are_plain() {
        assert!(is_plain(&req("")));
        assert!(is_plain(&req(
            "Accept-Encoding: gzip\r\nIf: x\r\nRanges: y\r\n"
        )));
        for h in [
            "Range: bytes=0-1",
            "range: bytes=0-1",
            "If-Range: \"a\"",
            "If-Match: *",
            "IF-NONE-MATCH: \"a\"",
            "If-Modified-Since: Sun, 06 Dec 2026 16:00:05 GMT",
            "If-Unmodified-Since: Sun, 06 Dec 2026 16:00:05 GMT",
        ] {
            assert!(!is_plain(&req(&format!("{h}\r\n"))), "{h}");
        }
    }
}
