//! The scratch directory of one job attempt (source copy, FIFOs), removed when dropped, so a
//! failed or abandoned attempt leaves nothing behind under `work_dir`.

use std::path::{Path, PathBuf};

use crate::error::TranscodeError;

/// `{root}/{prefix}{job_id}-{random}`; removed (recursively) on drop.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    /// Create a fresh directory; `prefix` tells job kinds apart when looking at `work_dir`.
    pub fn create(root: &Path, prefix: &str, job_id: &str) -> Result<Self, TranscodeError> {
        let dir = root.join(format!(
            "{prefix}{job_id}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| TranscodeError::io(format!("creating {}", dir.display()), e))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the job work dir");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_under_the_root_and_removed_on_drop() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = WorkDir::create(root.path(), "live-", "job1").expect("create");
        let path = dir.0.clone();
        assert!(path.is_dir());
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("live-job1-"), "{name}");
        std::fs::write(path.join("f"), b"x").expect("write");
        drop(dir);
        assert!(!path.exists());
    }
}
