//! The wrk and k6 scripts users run by hand must keep working: each `wrk/*.lua` runs for a
//! second against a real edge serving a small HLS directory and must make requests without a
//! Lua error or an error status; each `k6/*.js` must parse as an ES module (`node --check`; k6
//! itself is not in this machine's package registries, so it cannot run them here).

use ringcast_testkit::{EdgeOptions, Stack};
use std::path::{Path, PathBuf};
use std::process::Command;

const SEGMENTS: usize = 10;
const SEGMENT_BYTES: usize = 20_000;

fn scripts_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(kind)
}

fn scripts(kind: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(scripts_dir(kind))
        .expect("scripts dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {kind}/*.{ext} scripts");
    out
}

/// An edge (one worker) serving `v/demo/1/720p/{index.m3u8, seg0..9.m4s}` from a directory.
fn start_edge(dir: &Path) -> (Stack, String) {
    let rendition = dir.join("store/v/demo/1/720p");
    std::fs::create_dir_all(&rendition).expect("dirs");
    let mut pl = String::from(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n",
    );
    for i in 0..SEGMENTS {
        pl.push_str(&format!("#EXTINF:2.00000,\nseg{i}.m4s\n"));
        std::fs::write(
            rendition.join(format!("seg{i}.m4s")),
            vec![i as u8; SEGMENT_BYTES],
        )
        .expect("segment");
    }
    pl.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(rendition.join("index.m3u8"), pl).expect("playlist");
    let stack = Stack::builder()
        .edge(EdgeOptions::new().workers(1).origin_dir(&dir.join("store")))
        .start();
    let base = stack.edge().url();
    (stack, base)
}

/// Run one wrk script for a second; returns (requests, stdout + stderr).
fn run_wrk(base: &str, script: &Path, args: &[&str]) -> (u64, String) {
    let out = Command::new("wrk")
        .args(["-t1", "-c4", "-d1s", "--timeout", "5s", "-s"])
        .arg(script)
        .arg(base)
        .arg("--")
        .args(args)
        .output()
        .expect("run wrk (apt wrk; scripts/install-deps --test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}: {text}", script.display());
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (requests, text)
}

#[test]
fn wrk_scripts_run_against_the_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_edge, base) = start_edge(dir.path());
    let segments = SEGMENTS.to_string();
    let size = SEGMENT_BYTES.to_string();
    for script in scripts("wrk", "lua") {
        let name = script.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let args: Vec<&str> = match name {
            "mix.lua" => vec!["/v/demo/1/720p", &segments, "5"],
            "random_ranges.lua" => vec!["/v/demo/1/720p/seg3.m4s", &size, "4096"],
            // No live stream here: the edge answers the VOD playlist at once, which still runs
            // the script's request/response cycle.
            "ll_hls_blocking.lua" => vec!["/v/demo/1/720p/index.m3u8", "0", "4"],
            other => panic!("wrk/{other} has no test arguments: add them here"),
        };
        let (requests, text) = run_wrk(&base, &script, &args);
        assert!(requests > 10, "{name}: {requests} requests\n{text}");
        for bad in ["Non-2xx", "Socket errors", "error", "PANIC"] {
            assert!(!text.contains(bad), "{name}: {bad}\n{text}");
        }
    }
}

/// `node --check FILE`: parse without running.
fn node_check(file: &Path) -> std::process::Output {
    Command::new("node")
        .arg("--check")
        .arg(file)
        .output()
        .expect("run node")
}

#[test]
fn k6_scripts_parse_as_es_modules() {
    let dir = tempfile::tempdir().expect("tempdir");
    for script in scripts("k6", "js") {
        // k6 scripts are ES modules; `.mjs` makes node parse them as such.
        let name = script.file_stem().and_then(|n| n.to_str()).unwrap_or("x");
        let copy = dir.path().join(format!("{name}.mjs"));
        std::fs::copy(&script, &copy).expect("copy");
        let out = node_check(&copy);
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check must be able to fail: a broken module is refused.
    let broken = dir.path().join("broken.mjs");
    std::fs::write(
        &broken,
        "import http from 'k6/http';\nexport default function ( {\n",
    )
    .expect("write");
    let out = node_check(&broken);
    assert!(
        !out.status.success(),
        "node --check accepted a syntax error"
    );
}
