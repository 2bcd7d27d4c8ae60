//! The spool written with O_DIRECT and aligned buffers where the filesystem allows, buffered
//! where it refuses (`crate::tus::spool_writer`), against a running ingest: an upload sent in
//! PATCHes that end at unaligned offsets (so each large PATCH re-reads and rewrites the partial
//! block the previous one left, also one a small buffered PATCH wrote) is spooled and stored
//! byte-identical either way, with the right sha256, and the metrics say which path wrote it:
//! PATCHes of at least one aligned buffer direct, smaller ones buffered. The disk case needs a
//! filesystem with O_DIRECT (ext4/xfs/btrfs; /var/tmp); the fallback case mounts a ramfs (which
//! refuses O_DIRECT with EINVAL; needs root).

mod support;

use std::path::{Path, PathBuf};

use ringcast_ingest::tus::spool_writer::{supports_o_direct, DIRECT_MIN_BODY};
use ringcast_proto::keys;
use ringcast_testkit::Stack;
use support::*;

const MIB: usize = 1024 * 1024;

/// A valid MP4 grown past several 1 MiB write buffers (unique per `seed`).
fn big_clip(stack: &Stack, seed: u64) -> Vec<u8> {
    padded_mp4(stack.dir(), 5 * MIB + 1234, seed)
}

/// Upload `video` in PATCHes ending at unaligned offsets: small (buffered) ones, then large
/// (direct) ones starting at unaligned offsets, then a last byte. Returns the upload id once
/// stored and how many PATCHes were large enough for O_DIRECT.
fn upload_in_unaligned_patches(stack: &Stack, data_dir: &Path, video: &[u8]) -> (String, u64) {
    let ingest = stack.ingest();
    let loc = ingest.create(video.len() as u64, None);
    let id = upload_id(&loc);
    let n = video.len();
    let cuts = [
        1000,
        5000,
        5001,
        5001 + MIB + 3,
        5001 + 2 * MIB + 4099,
        n - 1,
        n,
    ];
    let large = cuts
        .iter()
        .zip(std::iter::once(&0).chain(&cuts))
        .filter(|(end, start)| (*end - *start) as u64 >= DIRECT_MIN_BODY)
        .count() as u64;
    assert_eq!(large, 3, "the cuts exercise both paths");
    let mut at = 0;
    for end in cuts[..cuts.len() - 1].iter().copied() {
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
    // The source sha256 the ingest computed while writing (partly on another thread) is the
    // file's: the version record carries it.
    let versions = ingest
        .conn()
        .request(
            "GET",
            &format!("/v1/videos/{id}/versions"),
            &ingest.with_auth(&[]),
            b"",
        )
        .expect("GET versions");
    assert_eq!(versions.status, 200, "{}", versions.text());
    assert!(
        versions.text().contains(&sha256(video)),
        "recorded sha256: {}",
        versions.text()
    );
    (id, large)
}

fn data_dir_toml(dir: &Path, extra: &str) -> String {
    format!(
        "data_dir = {:?}\n{extra}",
        dir.join("ingest").display().to_string()
    )
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
    let (_, large) = upload_in_unaligned_patches(&stack, dir.path(), &video);
    let ingest = stack.ingest();
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_patches_total"),
        large,
        "every PATCH of at least 1 MiB written with O_DIRECT, none of the small ones"
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
    let (_, large) = upload_in_unaligned_patches(&stack, &ramfs.0, &video);
    let ingest = stack.ingest();
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_fallbacks_total"),
        large,
        "every PATCH that tried O_DIRECT fell back"
    );
    assert_eq!(
        ingest.counter("ringcast_ingest_spool_direct_patches_total"),
        0
    );
    drop(stack);
    drop(ramfs);
}
