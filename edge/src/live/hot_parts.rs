//! Per core: the parts of followed renditions that several viewers asked for, as sealed
//! in-memory files ([`crate::tiers::mem_file`]), so the herd that every part announcement
//! releases gets the part by `sendfile` (the kernel passes the file's pages to each socket)
//! instead of one copy of it per viewer.
//!
//! A part gets its file on its second request on this core (one viewer alone never pays for
//! the file: creating it copies the part once and costs three system calls); the table keeps
//! the [`HOT_MAX`] most recently used, so a core holds at most that many descriptors. An entry
//! is found by the identity of the memory tier's `Bytes` (pointer and length): the table holds
//! a clone of them, so the allocation cannot be reused for other bytes while the entry lives,
//! and the file always holds exactly the body the entry was made from.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::tiers::mem_file;

/// Parts smaller than this are copied: a copy of a few KB costs less than `sendfile`'s extra
/// system calls.
pub const HOT_MIN_BYTES: usize = 16 * 1024;
/// Parts kept per core (newest used first): a few parts of each rendition a core serves.
pub const HOT_MAX: usize = 32;

struct Hot {
    body: Bytes,
    /// `None` until its second request.
    file: Option<Arc<File>>,
}

impl Hot {
    fn is(&self, body: &Bytes) -> bool {
        self.body.as_ptr() == body.as_ptr() && self.body.len() == body.len()
    }
}

thread_local! {
    static HOT: RefCell<VecDeque<Hot>> = const { RefCell::new(VecDeque::new()) };
}

/// The in-memory file holding `body` (a followed rendition's part from the memory tier), if it
/// is asked for often enough to be worth one; `None`: answer from `body`.
pub fn file_for(body: &Bytes) -> Option<Arc<File>> {
    if body.len() < HOT_MIN_BYTES {
        return None;
    }
    HOT.with_borrow_mut(|hot| {
        let Some(i) = hot.iter().position(|h| h.is(body)) else {
            if hot.len() >= HOT_MAX {
                hot.pop_back();
            }
            hot.push_front(Hot {
                body: body.clone(),
                file: None,
            });
            return None;
        };
        if i != 0 {
            let h = hot.remove(i).expect("found above");
            hot.push_front(h);
        }
        let h = &mut hot[0];
        if h.file.is_none() {
            match mem_file::sealed(c"ringcast-part", &h.body) {
                Ok(f) => h.file = Some(Arc::new(f)),
                Err(error) => {
                    // Out of descriptors or memory: the part is still served, copied.
                    tracing::debug!(%error, "no in-memory file for a hot part");
                    return None;
                }
            }
        }
        h.file.clone()
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    fn part(fill: u8) -> Bytes {
        Bytes::from(vec![fill; HOT_MIN_BYTES + 100])
    }

    #[test]
    fn a_part_gets_its_file_on_the_second_request_and_keeps_it() {
        let p = part(7);
        assert!(file_for(&p).is_none(), "first request: from memory");
        let f = file_for(&p).expect("second request: a file");
        let mut back = vec![0u8; p.len()];
        f.read_exact_at(&mut back, 0).expect("read");
        assert_eq!(&back[..], &p[..]);
        let again = file_for(&p.clone()).expect("third: the same file");
        assert!(Arc::ptr_eq(&f, &again));
    }

    #[test]
    fn small_parts_and_other_bytes_with_equal_content_are_not_confused() {
        let small = Bytes::from(vec![1u8; HOT_MIN_BYTES - 1]);
        assert!(file_for(&small).is_none() && file_for(&small).is_none());
        // Equal content in another allocation is another entry (identity, not content).
        let a = part(9);
        let b = part(9);
        assert!(file_for(&a).is_none());
        assert!(file_for(&b).is_none(), "b is new, whatever its bytes");
        assert!(file_for(&a).is_some());
        // A slice of a hot body is another body.
        assert!(file_for(&a.slice(1..)).is_none());
    }

    #[test]
    fn the_table_is_bounded_and_evicts_the_least_recently_used() {
        let first = part(1);
        assert!(file_for(&first).is_none());
        let others: Vec<Bytes> = (0..HOT_MAX).map(|i| part(i as u8)).collect();
        for o in &others {
            assert!(file_for(o).is_none());
        }
        assert!(HOT.with_borrow(|h| h.len()) <= HOT_MAX);
        // `first` was pushed out: it starts over.
        assert!(file_for(&first).is_none(), "evicted, seen once again");
        assert!(file_for(&first).is_some());
    }
}
