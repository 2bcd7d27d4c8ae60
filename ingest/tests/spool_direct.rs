//! The spool written with O_DIRECT and aligned buffers where the filesystem allows, buffered
//! where it refuses (`crate::tus::spool_writer`), against a running ingest: an upload sent in
//! PATCHes that end at unaligned offsets (so each PATCH re-reads and rewrites the partial block
//! the previous one left) is spooled and stored byte-identical either way, and the metrics say
//! which path wrote it. The disk case needs a filesystem with O_DIRECT (ext4/xfs/btrfs; /var/tmp);
//! the fallback case mounts a ramfs (which refuses O_DIRECT with EINVAL; needs root).

mod support;

use std::path::{Path, PathBuf};

use ringcast_proto::keys;
use ringcast_testkit::Stack;
use support::*;

/// A valid MP4 grown past several 1 MiB write buffers by a trailing `free` box of
/// pseudo-random bytes (unique per `seed`).
fn big_clip(stack: &Stack, seed: u64) -> Vec<u8> {
    let mut v = small_mp4(stack.dir());
    let extra = 3 * 1024 * 1024 + 1234;
    v.extend_from_slice(&((8 + extra) as u32).to_be_bytes());
    v.extend_from_slice(b"free");
    let mut x = seed | 1;
    v.extend((0..extra).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    v
}

/// Upload `video` in PATCHes ending at unaligned offsets; returns the upload id once stored.
fn upload_in_unaligned_patches(stack: &Stack, data_dir: &Path, video: &[u8]) -> String {
    let ingest = stack.ingest();
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);
    let n = video.len();
    let cuts = [
        1000,
        5000,
        5001,
        1024 * 1024 + 3,
        2 * 1024 * 1024 + 4096,
        n - 1,
    ];
    let mut at = 0;
    for end in cuts {
        let r = ingest.patch(&loc, at as u64, &video[at..end]);
        assert_eq!(r.status, 204, "PATCH {at}..{end}: {}", r.text());
        at = end;
        // What the spool holds is exactly the bytes sent, and no more.
        let spooled =
            std::fs::read(data_dir.join(format!("ingest/uploads/{id}.bin"))).expect("spool file");
        assert_eq!(spooled.len(), end, "spool length after PATCH to {end}");
        assert!(spooled == video[..end], "spool bytes after PATCH to {end}");
    }
    let r = ingest.patch(&loc, at as u64, &video[at..]);
    assert_eq!(r.status, 204, "last PATCH: {}", r.text());
    let stored = std::fs::read(stack.object_path(&keys::source(&id, 1))).expect("stored source");
    assert_eq!(
        sha256(&stored),
        sha256(video),
        "stored source is byte-identical"
    );
    id
}

fn data_dir_toml(dir: &Path, extra: &str) -> String {
    format!(
        "data_dir = {:?}\n{extra}",
        dir.join("ingest").display().to_string()
    )
}

fn supports_o_direct(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join("o_direct_probe");
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(probe);
    ok
}

#[test]
fn on_a_disk_the_spool_is_written_with_o_direct_and_byte_identical() {
    let dir = tempfile::tempdir_in("/var/tmp")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    if !supports_o_direct(dir.path()) {
        eprintln!("SKIPPED: the temp dir's filesystem refuses O_DIRECT");
        return;
    }
    let stack = start(options().toml(data_dir_toml(dir.path(), "")));
    let video = big_clip(&stack, 7);
    upload_in_unaligned_patches(&stack, dir.path(), &video);
    let ingest = stack.ingest();
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_patches_total"),
        7,
        "every PATCH written with O_DIRECT"
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_fallbacks_total"),
        0
    );
}

/// A ramfs mounted on a fresh temp dir for the test's life (the dir is removed after the
/// unmount: fields drop after `drop`).
struct Ramfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Ramfs {
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self(dir.path().to_path_buf(), dir))
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn without_o_direct_the_spool_falls_back_to_buffered_writes_and_stays_byte_identical() {
    let Some(ramfs) = Ramfs::mount() else {
        eprintln!("SKIPPED: cannot mount a ramfs (needs root)");
        return;
    };
    assert!(!supports_o_direct(&ramfs.0), "ramfs refuses O_DIRECT");
    // ramfs reports no free blocks: no free-space reserve on it.
    let toml = data_dir_toml(&ramfs.0, "[admission]\nspool_reserve_bytes = 0");
    let stack = start(options().toml(toml));
    let video = big_clip(&stack, 11);
    upload_in_unaligned_patches(&stack, &ramfs.0, &video);
    let ingest = stack.ingest();
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_fallbacks_total"),
        7,
        "every PATCH fell back"
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_patches_total"),
        0
    );
    drop(stack);
    drop(ramfs);
}
