//! The scratch directory of one job attempt (source copy, FIFOs), removed when dropped, so a
//! failed or abandoned attempt leaves nothing behind under `work_dir`; [`sweep`] removes what a
//! killed process left there (SIGKILL skips `Drop`), and [`available_bytes`] / [`has_room`]
//! decide whether a job may start on the free space left.

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

/// Length of the random suffix: a simple (hyphen-less, lowercase hex) UUID.
const SUFFIX_LEN: usize = 32;

/// Longest job id (`keys::is_valid_id`) plus the longest prefix (`live-`).
const MAX_HEAD_LEN: usize = 64 + 5;

/// True for a name [`WorkDir::create`] makes: `{prefix}{job_id}-{32 lowercase hex}`, the head
/// made of id characters only. Anything else under `work_dir` is not ours and is left alone.
pub fn is_job_dir_name(name: &str) -> bool {
    let Some((head, suffix)) = name.rsplit_once('-') else {
        return false;
    };
    suffix.len() == SUFFIX_LEN
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !head.is_empty()
        && head.len() <= MAX_HEAD_LEN
        && head
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub dirs: u64,
    pub bytes: u64,
}

/// Remove every job directory left under `root` by an earlier process (run at start-up, before
/// any worker creates one). Only real directories whose name matches [`is_job_dir_name`] go;
/// symlinks are never followed (a symlink with a job-dir name is left alone, and links inside a
/// job dir are removed as links), other files stay. A directory that cannot be removed is
/// logged and skipped.
pub fn sweep(root: &Path) -> std::io::Result<Swept> {
    let mut swept = Swept::default();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // `DirEntry::file_type` does not follow symlinks.
        if !entry.file_type()?.is_dir() || !is_job_dir_name(name) {
            continue;
        }
        let path = entry.path();
        let bytes = tree_bytes(&path);
        // `remove_dir_all` removes symlinks inside as links, never their targets.
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                swept.dirs += 1;
                swept.bytes += bytes;
            }
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "cannot remove a leftover job dir");
            }
        }
    }
    Ok(swept)
}

/// [`sweep`] at process start, logging what was freed.
pub fn sweep_at_start(root: &Path) -> std::io::Result<Swept> {
    let swept = sweep(root)?;
    if swept.dirs > 0 {
        tracing::warn!(
            work_dir = %root.display(), dirs = swept.dirs, bytes = swept.bytes,
            "removed job dirs left by an earlier process"
        );
    } else {
        tracing::info!(work_dir = %root.display(), "no job dirs left by an earlier process");
    }
    Ok(swept)
}

/// Bytes of the regular files under `dir`, without following symlinks; unreadable parts count 0.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Bytes an unprivileged process may still write on the filesystem of `path` (`statvfs`:
/// `f_bavail * f_frsize`).
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is plain data written by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointers are valid for the duration of the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Whether a job may start with `available` bytes free: at least `min_free` must stay free
/// after the source (`source_size`, when known) has been downloaded into the work dir.
pub fn has_room(available: u64, min_free: u64, source_size: Option<u64>) -> bool {
    available >= min_free.saturating_add(source_size.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_dir_names() {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        for ok in [format!("job-a-{uuid}"), format!("live-j_1-{uuid}")] {
            assert!(is_job_dir_name(&ok), "{ok}");
        }
        let long = "a".repeat(70);
        for bad in [
            uuid.clone(),
            format!("-{uuid}"),
            format!("job-{}", &uuid[1..]),
            format!("job-{}", uuid.to_uppercase()),
            format!("job.x-{uuid}"),
            format!("{long}-{uuid}"),
            "notes.txt".to_string(),
            "job-x-1234".to_string(),
        ] {
            assert!(!is_job_dir_name(&bad), "{bad}");
        }
    }

    #[test]
    fn sweep_removes_only_job_dirs_and_follows_no_symlink() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("precious"), b"keep me").expect("write");
        // Two leftovers as crashed jobs leave them, one with a nested dir and a link out.
        // Leaked guards: what a SIGKILLed process leaves.
        let leak = |prefix: &str, id: &str| {
            let dir = WorkDir::create(root.path(), prefix, id).expect("create");
            let path = dir.0.clone();
            std::mem::forget(dir);
            path
        };
        let (a, b) = (leak("", "job-a"), leak("live-", "job-b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        }
        std::fs::write(a.join("source"), vec![0u8; 1000]).expect("write");
        std::fs::write(b.join("sub/x"), vec![0u8; 24]).expect("write");
        std::os::unix::fs::symlink(outside.path(), a.join("out")).expect("symlink");
        // Foreign things: a file, a dir of another scheme, and a job-dir-named link outside.
        std::fs::write(root.path().join("notes.txt"), b"x").expect("write");
        std::fs::create_dir(root.path().join("other-tool")).expect("mkdir");
        let link_name = format!("job-c-{}", uuid::Uuid::new_v4().simple());
        std::os::unix::fs::symlink(outside.path(), root.path().join(&link_name)).expect("link");

        let swept = sweep(root.path()).expect("sweep");
        assert_eq!(
            swept,
            Swept {
                dirs: 2,
                bytes: 1024
            }
        );
        assert!(!a.exists() && !b.exists());
        assert!(root.path().join("notes.txt").is_file());
        assert!(root.path().join("other-tool").is_dir());
        assert!(std::fs::symlink_metadata(root.path().join(&link_name))
            .expect("link kept")
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read(outside.path().join("precious")).expect("untouched"),
            b"keep me"
        );
        assert_eq!(sweep(root.path()).expect("again"), Swept::default());
    }

    #[test]
    fn room_threshold() {
        assert!(has_room(100, 100, None));
        assert!(!has_room(99, 100, None));
        assert!(has_room(150, 100, Some(50)));
        assert!(!has_room(149, 100, Some(50)));
        assert!(!has_room(u64::MAX - 1, u64::MAX, Some(u64::MAX)));
        assert!(has_room(0, 0, Some(0)));
    }

    #[test]
    fn statvfs_on_a_real_dir() {
        let root = tempfile::tempdir().expect("tempdir");
        let free = available_bytes(root.path()).expect("statvfs");
        assert!(free > 0);
        assert!(available_bytes(&root.path().join("missing")).is_err());
    }

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
