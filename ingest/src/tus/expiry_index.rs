//! The on-disk index of when upload records are due for deletion, so the expiry sweep reads
//! only what is due instead of every record (a soak piled up 400 000 records a full-scan sweep
//! could not keep up with).
//!
//! Layout: `{data_dir}/upload-expiry/{end}/{id}`, empty files, where `{end}` is the bucket's end
//! in epoch seconds ([`ExpiryPolicy::bucket_end_secs`]): every record filed under a bucket whose
//! end has passed is due. An entry is written before the state that makes it due is renamed
//! into place, so a state never lacks its entry after a process crash; after a power loss the
//! start-up scan ([`crate::tus::upload_store::UploadStore::open`]) files every record again.
//! Entries may be stale (the upload made progress and was filed under a later bucket too, or is
//! gone): the sweep checks the state before deleting and drops stale entries.

use std::io;
use std::path::{Path, PathBuf};

use ringcast_proto::keys;
use ringcast_proto::tus::expiry::ExpiryPolicy;

/// One index entry: upload `id` filed under the bucket ending at `bucket` (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub bucket: u64,
    pub id: String,
}

/// The bucket directories under `{data_dir}/upload-expiry`.
pub struct ExpiryIndex {
    dir: PathBuf,
    policy: ExpiryPolicy,
}

impl ExpiryIndex {
    /// Open (creating) the index directory.
    pub fn open(data_dir: &Path, policy: ExpiryPolicy) -> io::Result<Self> {
        let dir = data_dir.join("upload-expiry");
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, policy })
    }

    pub fn policy(&self) -> &ExpiryPolicy {
        &self.policy
    }

    fn bucket_dir(&self, bucket: u64) -> PathBuf {
        self.dir.join(bucket.to_string())
    }

    /// File `id` under the bucket of `due_ms`; returns the bucket. Idempotent. Metadata-only
    /// syscalls (mkdir, an empty create), like the rename in `UploadStore::save`.
    pub fn note(&self, id: &str, due_ms: u64) -> io::Result<u64> {
        let bucket = self.policy.bucket_end_secs(due_ms);
        let dir = self.bucket_dir(bucket);
        let path = dir.join(id);
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        match create() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir)?;
                create()?;
            }
            Err(e) => return Err(e),
        }
        Ok(bucket)
    }

    /// Up to `limit` entries of the buckets due at `now_ms`, oldest bucket first. Reads only the
    /// list of buckets and the due ones: records not yet due are never touched.
    pub fn due(&self, now_ms: u64, limit: usize) -> io::Result<Vec<Entry>> {
        let mut buckets = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(end) = name.to_str().and_then(|n| n.parse::<u64>().ok()) {
                if ExpiryPolicy::bucket_due(end, now_ms) {
                    buckets.push(end);
                }
            }
        }
        buckets.sort_unstable();
        let mut out = Vec::new();
        for bucket in buckets {
            if out.len() >= limit {
                break;
            }
            let dir = self.bucket_dir(bucket);
            let mut any = false;
            for entry in std::fs::read_dir(&dir)? {
                any = true;
                if out.len() >= limit {
                    break;
                }
                let name = entry?.file_name();
                match name.to_str().filter(|n| keys::is_valid_id(n)) {
                    Some(id) => out.push(Entry {
                        bucket,
                        id: id.to_string(),
                    }),
                    // Not an entry this index wrote: out of the way.
                    None => {
                        let _ = std::fs::remove_file(dir.join(&name));
                    }
                }
            }
            if !any {
                self.prune(bucket);
            }
        }
        Ok(out)
    }

    /// Drop an entry (no error when it is already gone).
    pub fn forget(&self, entry: &Entry) -> io::Result<()> {
        match std::fs::remove_file(self.bucket_dir(entry.bucket).join(&entry.id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Remove a bucket directory once it is empty (nothing happens while it is not).
    pub fn prune(&self, bucket: u64) {
        let _ = std::fs::remove_dir(self.bucket_dir(bucket));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_due_buckets_are_read_and_entries_come_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = ExpiryPolicy {
            unfinished_secs: 3600,
            finished_secs: 60,
            bucket_secs: 10,
        };
        let index = ExpiryIndex::open(dir.path(), policy).expect("open");
        // 200 records due in an hour, 3 due in a minute, 1 due in two minutes.
        for i in 0..200 {
            index.note(&format!("later{i}"), 3_600_000).expect("note");
        }
        for i in 0..3 {
            index.note(&format!("soon{i}"), 60_000).expect("note");
        }
        index.note("next", 120_000).expect("note");
        assert_eq!(index.due(59_999, 100).expect("due"), vec![]);
        let due = index.due(60_000, 100).expect("due");
        let mut ids: Vec<&str> = due.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["soon0", "soon1", "soon2"]);
        // Bounded: at most `limit` per call, oldest bucket first.
        let due = index.due(200_000, 4).expect("due");
        assert_eq!(due.len(), 4);
        assert_eq!(due[3].id, "next");
        for e in &due {
            index.forget(e).expect("forget");
            index.forget(e).expect("forget twice");
        }
        // Emptied buckets are pruned on the next look; the hour's bucket stays untouched.
        assert_eq!(index.due(200_000, 100).expect("due"), vec![]);
        let buckets: Vec<_> = std::fs::read_dir(dir.path().join("upload-expiry"))
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(buckets, ["3600"]);
        assert_eq!(index.due(3_600_000, 1000).expect("due").len(), 200);
    }
}
