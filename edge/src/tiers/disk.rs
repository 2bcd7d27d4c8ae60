//! The disk tier: complete objects as files under a cache directory, LRU by bytes, size-capped,
//! kept across restarts, served with `sendfile` ([`crate::tiers::sendfile`]).
//!
//! Layout under the configured directory:
//! - `objects/{key}`: one file per object, the key's path as is (keys are validated relative
//!   paths, see [`crate::routes::path`]), so the index can be rebuilt from the tree alone;
//! - `tmp/`: files being written. A fill writes `tmp/{n}` completely and renames it into
//!   `objects/` (atomic on one filesystem), so `objects/` only ever holds complete files. `tmp/`
//!   is emptied at start-up: whatever a crash left there is never indexed nor served;
//! - `recency`: the keys, least recently used first, written at a clean shutdown
//!   ([`DiskTier::save_recency`]), so a restart evicts in LRU order rather than fill order.
//!   Files not listed (filled after it was written, e.g. before a crash) count as newer than
//!   every listed one, in fill order; listed keys without a file are ignored.
//!
//! No fsync: this is a cache. After a power loss a renamed file may come back empty (delayed
//! allocation); the start-up scan drops empty files so such a file costs a refetch, not a
//! wrong answer. One process owns a cache directory at a time.
//!
//! Concurrency: the index ([`DiskIndex`]) sits behind an `RwLock`; a hit takes it shared for a
//! hash probe and an atomic store (hits never wait for each other; the file is opened after the
//! guard is dropped). Fills rename, index and unlink the evicted files under the write lock, so an eviction can never delete a file that a concurrent fill
//! of the same key just renamed into place. A reader that opened a file before it was evicted
//! keeps reading it (unlinked files live until their last descriptor closes).

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::tiers::disk_index::{DiskIndex, TooLarge};

/// An object found in the disk tier, opened for reading.
#[derive(Debug)]
pub struct DiskObject {
    pub file: File,
    pub len: u64,
    /// When the file was filled (for `Age`, also after a restart).
    pub filled_at: SystemTime,
}

/// What a fill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object is on disk and indexed.
    Yes,
    /// The object is larger than the whole tier; nothing was written.
    TooLarge,
}

/// Sizes for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskGauges {
    pub bytes: u64,
    pub capacity_bytes: u64,
    pub entries: u64,
}

/// The disk cache of one edge process.
pub struct DiskTier {
    objects: PathBuf,
    recency: PathBuf,
    tmp: PathBuf,
    index: RwLock<DiskIndex>,
    next_tmp: AtomicU64,
    evictions: AtomicU64,
}

impl DiskTier {
    /// Open (creating) the cache under `dir` with a capacity of `capacity` bytes: clear `tmp/`,
    /// scan `objects/` and rebuild the index (newest files kept if the cap shrank).
    pub fn open(dir: &Path, capacity: u64) -> io::Result<Self> {
        let objects = dir.join("objects");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&objects)?;
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        let mut found = Vec::new();
        scan(&objects, &objects, &mut found)?;
        let recency = dir.join(RECENCY_FILE);
        apply_saved_recency(&mut found, &recency);
        let (index, dropped) = DiskIndex::rebuild(capacity, found);
        for key in &dropped {
            let _ = std::fs::remove_file(objects.join(key));
        }
        tracing::info!(
            dir = %dir.display(),
            entries = index.len(),
            bytes = index.used(),
            capacity,
            dropped = dropped.len(),
            "disk tier ready"
        );
        Ok(Self {
            recency,
            objects,
            tmp,
            index: RwLock::new(index),
            next_tmp: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Write the LRU order to `recency` (temp file + rename, so a crash mid-write leaves the old
    /// list or none). Called at a clean shutdown.
    pub fn save_recency(&self) -> io::Result<()> {
        let keys = self.read().recency_order();
        let tmp = self.recency.with_extension("tmp");
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        for k in &keys {
            writeln!(out, "{k}")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &self.recency)
    }

    /// The object for `key` if it is on disk (marks it most recently used).
    pub fn lookup(&self, key: &str) -> Option<DiskObject> {
        let entry = self.read().touch(key)?;
        let opened = File::open(self.objects.join(key)).and_then(|file| {
            let modified = file.metadata()?.modified()?;
            Ok((file, modified))
        });
        match opened {
            Ok((file, filled_at)) => Some(DiskObject {
                file,
                len: entry.size,
                filled_at,
            }),
            Err(e) => {
                // Gone from under the index (deleted by hand, or evicted between the probe and
                // the open): forget exactly this entry; the caller fetches again.
                tracing::debug!(key, error = %e, "indexed disk object unreadable");
                self.write().remove_generation(key, entry.generation);
                None
            }
        }
    }

    /// Write `body` as the object `key`: temp file, rename, index, evict. On any error nothing of
    /// this fill remains (the temp file is removed, the index unchanged).
    pub fn store(&self, key: &str, body: &[u8]) -> io::Result<Stored> {
        if body.len() as u64 > self.read().capacity() {
            return Ok(Stored::TooLarge);
        }
        let n = self.next_tmp.fetch_add(1, Relaxed);
        let tmp = self.tmp.join(n.to_string());
        let written = File::create(&tmp).and_then(|mut f| f.write_all(body));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let dst = self.objects.join(key);
        let mut index = self.write();
        let placed = dst
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(&tmp, &dst));
        if let Err(e) = placed {
            drop(index);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        match index.insert(key, body.len() as u64) {
            Ok(evicted) => {
                for old in &evicted {
                    let _ = std::fs::remove_file(self.objects.join(old));
                }
                self.evictions.fetch_add(evicted.len() as u64, Relaxed);
                Ok(Stored::Yes)
            }
            // The capacity was checked above and never changes; kept for completeness.
            Err(TooLarge) => {
                let _ = std::fs::remove_file(&dst);
                Ok(Stored::TooLarge)
            }
        }
    }

    /// Drop `key` from the tier (file and index); whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        let mut index = self.write();
        let present = index.remove(key).is_some();
        if present {
            let _ = std::fs::remove_file(self.objects.join(key));
        }
        present
    }

    /// Drop every key starting with `prefix`; how many went. The index lock is held for the
    /// scan and the unlinks, so no fill of a matching key slips in between (purge is rare).
    pub fn remove_prefix(&self, prefix: &str) -> u64 {
        let mut index = self.write();
        let mut n = 0;
        for key in index.keys_with_prefix(prefix) {
            if index.remove(&key).is_some() {
                let _ = std::fs::remove_file(self.objects.join(&key));
                n += 1;
            }
        }
        n
    }

    /// Evictions since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    pub fn gauges(&self) -> DiskGauges {
        let index = self.read();
        DiskGauges {
            bytes: index.used(),
            capacity_bytes: index.capacity(),
            entries: index.len() as u64,
        }
    }

    // The index stays usable even if a holder panicked (no await under the lock, and the worst
    // case of a half-done update is a wrong byte count, not unsafety): keep serving.
    fn read(&self) -> RwLockReadGuard<'_, DiskIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, DiskIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Name of the saved LRU order under the cache directory.
const RECENCY_FILE: &str = "recency";

/// Replace the fill-time order of `found` by the saved LRU order where there is one: listed
/// keys get their list position, unlisted files come after all of them in fill order. A missing
/// or unreadable list leaves fill order.
fn apply_saved_recency(found: &mut [(String, u64, u128)], path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let rank: std::collections::HashMap<&str, u128> = text
        .lines()
        .enumerate()
        .map(|(i, k)| (k, i as u128))
        .collect();
    // Unlisted files: after every listed one (list positions stay far below 2^64), by mtime.
    let after = 1u128 << 64;
    for (key, _, order) in found.iter_mut() {
        *order = match rank.get(key.as_str()) {
            Some(&i) => i,
            None => after + *order,
        };
    }
}

/// Collect `(key, size, mtime)` of every complete object under `dir`; remove what cannot be an
/// object (empty files, non-UTF-8 names, symlinks and other non-files).
fn scan(root: &Path, dir: &Path, found: &mut Vec<(String, u64, u128)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            scan(root, &path, found)?;
            continue;
        }
        let key = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_string);
        let meta = entry.metadata()?;
        match key {
            Some(key) if kind.is_file() && meta.len() > 0 => {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                found.push((key, meta.len(), mtime));
            }
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn read(obj: DiskObject) -> Vec<u8> {
        let mut v = Vec::new();
        let mut f = obj.file;
        f.read_to_end(&mut v).expect("read");
        v
    }

    #[test]
    fn store_lookup_evict_and_rebuild() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tier = DiskTier::open(dir.path(), 100).expect("open");
        assert_eq!(
            tier.store("v/a/1/s1.m4s", &[1; 40]).expect("store"),
            Stored::Yes
        );
        assert_eq!(
            tier.store("v/a/1/s2.m4s", &[2; 40]).expect("store"),
            Stored::Yes
        );
        assert_eq!(
            tier.store("v/a/1/big.m4s", &[0; 101]).expect("store"),
            Stored::TooLarge
        );
        assert_eq!(read(tier.lookup("v/a/1/s1.m4s").expect("s1")), vec![1; 40]);
        // s2 is now least recently used: the next fill evicts it, file and all.
        assert_eq!(
            tier.store("v/a/1/s3.m4s", &[3; 40]).expect("store"),
            Stored::Yes
        );
        assert!(tier.lookup("v/a/1/s2.m4s").is_none());
        assert!(!dir.path().join("objects/v/a/1/s2.m4s").exists());
        assert_eq!(tier.evictions(), 1);
        let g = tier.gauges();
        assert_eq!((g.bytes, g.entries), (80, 2));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
        drop(tier);

        // Leftovers of a crash: a temp file and an empty object are never indexed.
        std::fs::write(dir.path().join("tmp/7"), b"partial").expect("write");
        std::fs::write(dir.path().join("objects/v/a/1/empty.m4s"), b"").expect("write");
        let tier = DiskTier::open(dir.path(), 100).expect("reopen");
        assert_eq!(read(tier.lookup("v/a/1/s3.m4s").expect("s3")), vec![3; 40]);
        assert!(tier.lookup("v/a/1/s1.m4s").is_some());
        assert!(tier.lookup("v/a/1/empty.m4s").is_none());
        assert!(!dir.path().join("tmp/7").exists());
        assert_eq!(tier.gauges().entries, 2);

        // A smaller cap at restart keeps what fits.
        drop(tier);
        let tier = DiskTier::open(dir.path(), 50).expect("reopen smaller");
        assert_eq!(tier.gauges().entries, 1);
    }

    #[test]
    fn a_file_deleted_behind_the_index_is_a_miss_and_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tier = DiskTier::open(dir.path(), 1000).expect("open");
        tier.store("k/x", b"abc").expect("store");
        std::fs::remove_file(dir.path().join("objects/k/x")).expect("rm");
        assert!(tier.lookup("k/x").is_none());
        assert_eq!(tier.gauges().entries, 0);
    }

    #[test]
    fn a_failed_fill_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tier = DiskTier::open(dir.path(), 1000).expect("open");
        // A file where a directory is needed makes the rename fail.
        std::fs::write(dir.path().join("objects/k"), b"x").expect("write");
        assert!(tier.store("k/x", b"abc").is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
        assert_eq!(tier.gauges().entries, 0);
    }
}
