//! The in-memory hashers of uploads in progress, for duplicate detection
//! ([`crate::tus::dedup`]): one map shared by every core, keyed by upload id, each hasher
//! tagged with the offset it has hashed up to. Held by the upload store so that deleting an
//! upload forgets its hasher too.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::Sha256;

/// Uploads whose hasher is kept in memory at most (a few hundred bytes each). Past this, an
/// upload's prefix is rehashed when it continues: a cap on memory held by abandoned uploads.
pub const MAX_HASHERS: usize = 100_000;

/// The hashers of uploads in progress (see the module docs of `crate::tus::dedup`).
#[derive(Default)]
pub struct SourceHashers {
    map: Mutex<HashMap<String, (u64, Sha256)>>,
}

impl SourceHashers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Sha256)>> {
        // A poisoned map still holds valid hashers.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take `id`'s hasher if it has hashed exactly `offset` bytes.
    pub fn take(&self, id: &str, offset: u64) -> Option<Sha256> {
        let mut map = self.lock();
        match map.remove(id) {
            Some((at, h)) if at == offset => Some(h),
            _ => None,
        }
    }

    /// Keep `hasher`, which has hashed `offset` bytes of `id`.
    pub fn put(&self, id: &str, offset: u64, hasher: Sha256) {
        let mut map = self.lock();
        if map.len() < MAX_HASHERS || map.contains_key(id) {
            map.insert(id.to_string(), (offset, hasher));
        }
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn a_hasher_is_only_handed_out_at_its_offset() {
        let hashers = SourceHashers::default();
        let mut h = Sha256::new();
        h.update(b"abc");
        hashers.put("u", 3, h);
        assert!(hashers.take("u", 2).is_none(), "wrong offset");
        // A mismatch drops it (the caller rehashes from the spool instead).
        assert!(hashers.is_empty());
        let mut h = Sha256::new();
        h.update(b"abc");
        hashers.put("u", 3, h);
        let h = hashers.take("u", 3).expect("kept");
        assert_eq!(
            hex::encode(h.finalize()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        hashers.put("u", 1, Sha256::new());
        hashers.forget("u");
        assert!(hashers.is_empty());
    }
}
