//! Object store: one handle over an S3-compatible backend (rust-s3) or a filesystem backend.
//!
//! Every call runs on the tokio side runtime ([`crate::side_runtime`]) and returns a future any
//! executor can await, so monoio cores (edge, ingest) and tokio code (transcoder) share one API.
//! Writes are all-or-nothing: the filesystem backend writes a temp file and renames it, S3 PUTs
//! and multipart uploads only become visible when complete. Nobody ever reads a partial object.

mod fs;
mod s3;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{StoreBackend, StoreConfig};
use crate::side_runtime::{self, SideError};

pub use fs::FsStore;
pub use s3::S3Store;

/// Errors from the object store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("object store I/O error on {key}: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("S3 error on {key}: {message}")]
    S3 { key: String, message: String },
    #[error("object store misconfigured: {0}")]
    Config(String),
    #[error(transparent)]
    Side(#[from] SideError),
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub content_type: Option<String>,
    pub etag: Option<String>,
}

enum Backend {
    Fs(FsStore),
    S3(S3Store),
}

/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct ObjectStore {
    backend: Arc<Backend>,
}

/// Keys are relative paths of safe components: no empty, `.` or `..` parts, no NUL or backslash,
/// at most 1024 bytes. Checked here so neither backend can be steered outside its namespace.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && !key.contains(['\0', '\\'])
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {{
        let backend = Arc::clone(&$self.backend);
        side_runtime::run(async move {
            match &*backend {
                Backend::Fs($b) => $call.await,
                Backend::S3($b) => $call.await,
            }
        })
        .await?
    }};
}

impl ObjectStore {
    /// Open the configured backend; for S3 the bucket is created when it does not exist yet.
    pub async fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        let backend = match cfg.backend {
            StoreBackend::Fs => Backend::Fs(FsStore::open(&cfg.root)?),
            StoreBackend::S3 => {
                let cfg = cfg.clone();
                Backend::S3(side_runtime::run(async move { S3Store::open(&cfg).await }).await??)
            }
        };
        Ok(Self {
            backend: Arc::new(backend),
        })
    }

    /// Which backend runs (`fs` or `s3`), for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Fs(_) => "fs",
            Backend::S3(_) => "s3",
        }
    }

    /// Store `body` under `key`, replacing any previous object atomically.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let (key, ct) = (key.to_string(), content_type.to_string());
        dispatch!(self, b => b.put(&key, body, &ct))
    }

    /// Store the file at `path` under `key` (streamed; multipart on S3).
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        let (key, ct, path) = (
            key.to_string(),
            content_type.to_string(),
            path.to_path_buf(),
        );
        dispatch!(self, b => b.put_file(&key, &path, &ct))
    }

    /// Store the file at `path` under `key`, promising that nobody writes to `path` again (it
    /// may be deleted): the filesystem backend then hard-links it into place when it is on the
    /// store's filesystem instead of copying it; S3 streams it like [`ObjectStore::put_file`].
    /// The object shares the file's inode: writing to `path` afterwards would change it.
    pub async fn put_sealed_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        let (key, ct, path) = (
            key.to_string(),
            content_type.to_string(),
            path.to_path_buf(),
        );
        dispatch!(self, b => b.put_sealed_file(&key, &path, &ct))
    }

    /// The whole object, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        dispatch!(self, b => b.get(&key))
    }

    /// Download the object into a new file at `path`; `false` when it does not exist.
    pub async fn get_to_file(&self, key: &str, path: &Path) -> Result<bool, StoreError> {
        validate_key(key)?;
        let (key, path) = (key.to_string(), path.to_path_buf());
        dispatch!(self, b => b.get_to_file(&key, &path))
    }

    /// Size and type of the object, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        dispatch!(self, b => b.head(&key))
    }

    /// Delete the object (no error when it does not exist).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        dispatch!(self, b => b.delete(&key))
    }

    /// Delete every key in `keys` (no error for missing ones): one multi-object request per
    /// 1000 keys on S3.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreError> {
        for k in &keys {
            validate_key(k)?;
        }
        dispatch!(self, b => b.delete_many(keys.clone()))
    }

    /// Delete every object whose key starts with `prefix`, which must end in `/` (a folder:
    /// `v/abc/` never touches `v/abcd/…`); returns how many there were. Objects written under
    /// the prefix while this runs may survive it.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        if !prefix.ends_with('/') {
            return Err(StoreError::InvalidKey(prefix.to_string()));
        }
        validate_key(prefix.trim_end_matches('/'))?;
        let keys = self.list(prefix).await?;
        let n = keys.len();
        self.delete_many(keys).await?;
        Ok(n)
    }

    /// Keys under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_string();
        dispatch!(self, b => b.list(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in ["a", "v/x/1/720p/seg1.m4s", "sources/a/1/source"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a//b", "a/../b", "..", "a/./b", "a\0b", "a\\b", "a/",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(1025)).is_err());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt")
            .block_on(f)
    }

    #[test]
    fn fs_backend_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = StoreConfig {
            root: dir.path().to_path_buf(),
            ..StoreConfig::default()
        };
        block_on(async {
            let store = ObjectStore::open(&cfg).await.expect("open");
            assert_eq!(store.get("v/a/1/x").await.expect("get"), None);
            store
                .put("v/a/1/x", Bytes::from_static(b"hello"), "text/plain")
                .await
                .expect("put");
            assert_eq!(
                store.get("v/a/1/x").await.expect("get"),
                Some(Bytes::from_static(b"hello"))
            );
            let meta = store.head("v/a/1/x").await.expect("head").expect("exists");
            assert_eq!(meta.size, 5);
            let src = dir.path().join("upload.bin");
            std::fs::write(&src, vec![7u8; 100_000]).expect("write");
            store
                .put_file("v/a/2/y", &src, "video/mp4")
                .await
                .expect("put_file");
            assert_eq!(
                store.list("v/a/").await.expect("list"),
                vec!["v/a/1/x", "v/a/2/y"]
            );
            // A sealed file on the store's filesystem is linked, not copied: same inode.
            let sealed = dir.path().join("spool.bin");
            std::fs::write(&sealed, vec![9u8; 50_000]).expect("write");
            store
                .put_sealed_file("v/a/3/z", &sealed, "video/mp4")
                .await
                .expect("put_sealed_file");
            {
                use std::os::unix::fs::MetadataExt as _;
                let ino = |p: &Path| std::fs::metadata(p).expect("meta").ino();
                assert_eq!(ino(&sealed), ino(&dir.path().join("v/a/3/z")), "linked");
            }
            // Again (a retried finish): no temp link is left behind.
            store
                .put_sealed_file("v/a/3/z", &sealed, "video/mp4")
                .await
                .expect("put_sealed_file again");
            assert_eq!(
                std::fs::read_dir(dir.path().join(".tmp"))
                    .expect("tmp")
                    .count(),
                0,
                "no stray temp link"
            );
            std::fs::remove_file(&sealed).expect("the spool goes");
            assert_eq!(
                store.get("v/a/3/z").await.expect("get").map(|b| b.len()),
                Some(50_000),
                "the object stays"
            );
            let out = dir.path().join("out.bin");
            assert!(store
                .get_to_file("v/a/2/y", &out)
                .await
                .expect("get_to_file"));
            assert_eq!(std::fs::read(&out).expect("read").len(), 100_000);
            store.delete("v/a/1/x").await.expect("delete");
            assert_eq!(store.head("v/a/1/x").await.expect("head"), None);
            assert!(matches!(
                store.get("../etc/passwd").await,
                Err(StoreError::InvalidKey(_))
            ));
        });
    }
}
