//! Filesystem backend: objects are files under a root directory; writes go to a temp file in
//! `{root}/.tmp` and are renamed into place, so a reader sees the old object or the new one,
//! never a partial one. Content types are not stored (the edge derives them from the key).

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{ObjectMeta, StoreError};

/// Objects as files under `root`.
pub struct FsStore {
    root: PathBuf,
    tmp: PathBuf,
}

fn io_err(key: &str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        key: key.to_string(),
        source,
    }
}

impl FsStore {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp).map_err(io_err(".tmp"))?;
        Ok(Self {
            root: root.to_path_buf(),
            tmp,
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn tmp_path(&self) -> PathBuf {
        self.tmp.join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Rename a finished temp file into place (creating parent directories).
    async fn publish(&self, key: &str, tmp: &Path) -> Result<(), StoreError> {
        let dst = self.path(key);
        if let Some(parent) = dst.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_err(key))?;
        }
        tokio::fs::rename(tmp, &dst).await.map_err(io_err(key))
    }

    pub async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let tmp = self.tmp_path();
        tokio::fs::write(&tmp, &body).await.map_err(io_err(key))?;
        self.publish(key, &tmp).await
    }

    pub async fn put_file(
        &self,
        key: &str,
        src: &Path,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let tmp = self.tmp_path();
        tokio::fs::copy(src, &tmp).await.map_err(io_err(key))?;
        self.publish(key, &tmp).await
    }

    /// `put_file` of a file nobody writes again: hard-linked into place when it lies on the
    /// store's filesystem, so no byte is read or written (a finished upload's spool, which may
    /// be gigabytes and is deleted right after); copied when linking is refused (another
    /// filesystem: `EXDEV`, or one without hard links).
    pub async fn put_sealed_file(
        &self,
        key: &str,
        src: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let tmp = self.tmp_path();
        match tokio::fs::hard_link(src, &tmp).await {
            Ok(()) => {
                let published = self.publish(key, &tmp).await;
                // Putting the same file again (a retried finish): `rename` between two links
                // of one inode does nothing and leaves the temp link, which would keep the
                // bytes alive after the object is deleted.
                match tokio::fs::remove_file(&tmp).await {
                    Err(e) if !not_found(&e) => tracing::warn!(error = %e, "stray temp link"),
                    _ => {}
                }
                published
            }
            Err(e) => {
                tracing::debug!(
                    error = %e,
                    src = %src.display(),
                    "cannot link into the store; copying"
                );
                self.put_file(key, src, content_type).await
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    pub async fn get_to_file(&self, key: &str, dst: &Path) -> Result<bool, StoreError> {
        match tokio::fs::copy(self.path(key), dst).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                size: m.len(),
                content_type: None,
                etag: None,
            })),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    /// Delete every key in `keys` (missing ones included), then the directories they leave
    /// empty up to the root, so a deleted video leaves no folder behind.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let root = self.root.clone();
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        tokio::task::spawn_blocking(move || {
            for path in &paths {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if not_found(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            for path in &paths {
                let mut dir = path.parent();
                // Only empty folders go (`remove_dir` refuses others), never the root.
                while let Some(d) = dir.filter(|d| *d != root && d.starts_with(&root)) {
                    if std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io {
            key: "delete".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io_err("delete"))
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let keys = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            // Walk only the folder the prefix names (not the whole store).
            let folder = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
            let start = root.join(folder);
            match walk(&root, &start, &mut out) {
                Ok(()) => {}
                Err(e) if not_found(&e) && !folder.is_empty() => {}
                Err(e) => return Err(e),
            }
            out.retain(|k| k.starts_with(&prefix) && !k.starts_with(".tmp/"));
            out.sort();
            Ok::<_, std::io::Error>(out)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: "list".into(),
            source: std::io::Error::other(e),
        })?;
        keys.map_err(io_err("list"))
    }
}

/// A missing file, or a path whose parent is a file (a key that cannot exist either).
fn not_found(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
