//! Where the edge gets objects it does not have: one enum, so routes and tiers do not care.
//!
//! - [`Origin::Store`]: the object store (S3 or the filesystem backend), the production origin;
//! - [`Origin::Dir`]: a plain directory (`--origin-dir`), the edge as a cache in front of files,
//!   read-only (unlike the filesystem store it writes nothing into the directory);
//! - [`Origin::Http`]: a plain HTTP/1.1 origin (`--origin-url`), see [`crate::origin::http`].
//!
//! `fetch` answers `Ok(None)` for "does not exist" (the edge caches that briefly and answers 404)
//! and an error for everything else (502; the caller's timeout gives 504).

pub mod http;
pub mod trace;

use std::path::PathBuf;

use bytes::Bytes;
use ringcast_infra::side_runtime;
use ringcast_infra::store::ObjectStore;

use crate::error::EdgeError;
use crate::origin::http::{HttpOrigin, OriginError};

/// The configured origin.
pub enum Origin {
    Store(ObjectStore),
    Dir(DirOrigin),
    Http(HttpOrigin),
}

impl Origin {
    /// The whole object, or `None` when the origin does not have it.
    pub async fn fetch(&self, key: &str) -> Result<Option<Bytes>, EdgeError> {
        match self {
            Origin::Store(store) => store.get(key).await.map_err(EdgeError::Origin),
            Origin::Dir(dir) => dir.fetch(key).await.map_err(EdgeError::Upstream),
            Origin::Http(http) => http.fetch(key).await.map_err(EdgeError::Upstream),
        }
    }

    /// For logs: `s3`, `fs`, `dir` or `http`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Store(store) => store.backend_name(),
            Origin::Dir(_) => "dir",
            Origin::Http(_) => "http",
        }
    }
}

/// Objects as files under a directory (key `v/a/1/seg1.m4s` → `{root}/v/a/1/seg1.m4s`).
pub struct DirOrigin {
    root: PathBuf,
}

impl DirOrigin {
    /// The directory must exist (a typo should fail at start-up, not as 404s).
    pub fn open(root: PathBuf) -> Result<Self, EdgeError> {
        if !root.is_dir() {
            return Err(EdgeError::InvalidConfig(format!(
                "origin_dir {} is not a directory",
                root.display()
            )));
        }
        Ok(Self { root })
    }

    /// Read the file on the side runtime's blocking pool (a slow disk must not stall a worker).
    /// Keys are validated relative paths without `.`/`..` ([`crate::routes::path::object_key`]).
    async fn fetch(&self, key: &str) -> Result<Option<Bytes>, OriginError> {
        let path = self.root.join(key);
        let read = side_runtime::run_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| OriginError::Io(std::io::Error::other(e)))?;
        match read {
            Ok(data) => Ok(Some(Bytes::from(data))),
            // A directory or a path through a file is "no such object", not an origin failure.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(OriginError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_origin_reads_files_and_maps_missing_to_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("v/a")).expect("mkdir");
        std::fs::write(dir.path().join("v/a/x.m4s"), b"xyz").expect("write");
        let origin = Origin::Dir(DirOrigin::open(dir.path().to_path_buf()).expect("open"));
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("rt");
        rt.block_on(async {
            let got = origin.fetch("v/a/x.m4s").await.expect("fetch");
            assert_eq!(got.as_deref(), Some(&b"xyz"[..]));
            assert!(origin.fetch("v/a/none").await.expect("fetch").is_none());
            assert!(
                origin.fetch("v/a").await.expect("fetch").is_none(),
                "a directory"
            );
            assert!(origin.fetch("v/a/x.m4s/y").await.expect("fetch").is_none());
        });
        assert!(DirOrigin::open(dir.path().join("nope")).is_err());
        assert_eq!(origin.kind(), "dir");
        // Read-only: nothing was created in the directory.
        assert!(!dir.path().join(".tmp").exists());
    }
}
