//! npm `hls-parser` in strict mode over playlists: the one validator the live and VOD tests
//! share (`scripts/js/validate_hls_files.mjs`; `scripts/js/validate_hls.mjs` walks a master
//! playlist over HTTP instead).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tempdir::TempDir;

/// What the files must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any playlist (multivariant or media).
    Any,
    /// Media playlists only: one that parses as a multivariant playlist fails.
    Media,
}

/// The workspace's `scripts/js` (where `npm ci` installed hls-parser).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/js")
}

/// Runs the validator over `paths` (files, or directories standing for every file in them);
/// `Ok` with its summary line, `Err` with what it rejected.
pub fn check<P: AsRef<Path>>(paths: &[P], expect: Expect) -> Result<String, String> {
    let js = js_dir();
    if !js.join("node_modules/hls-parser").is_dir() {
        return Err(format!(
            "hls-parser is not installed in {} (run scripts/install-deps --test, or `npm ci` there)",
            js.display()
        ));
    }
    let mut cmd = Command::new("node");
    cmd.current_dir(&js).arg("validate_hls_files.mjs");
    if expect == Expect::Media {
        cmd.arg("--media");
    }
    let o = cmd
        .args(paths.iter().map(AsRef::as_ref))
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let stdout = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Panics unless hls-parser (strict) accepts every file in `paths`.
pub fn assert_files<P: AsRef<Path>>(paths: &[P], expect: Expect) {
    match check(paths, expect) {
        Ok(summary) => eprintln!("hls-parser strict: {summary}"),
        Err(e) => panic!("hls-parser rejected playlists:\n{e}"),
    }
}

/// Panics unless hls-parser (strict) accepts every playlist body; the bodies are in the
/// message when it does not.
pub fn assert_bodies<B: AsRef<str>>(bodies: &[B], expect: Expect) {
    let dir = TempDir::new("hls-parser");
    for (i, b) in bodies.iter().enumerate() {
        std::fs::write(dir.path().join(format!("p{i:04}.m3u8")), b.as_ref())
            .expect("write playlist");
    }
    if let Err(e) = check(&[dir.path()], expect) {
        let mut detail = e;
        for (i, b) in bodies.iter().enumerate() {
            detail.push_str(&format!("\n--- p{i:04}.m3u8\n{}", b.as_ref()));
        }
        panic!("hls-parser rejected playlists:\n{detail}");
    }
}
