//! `ringcast-transcoder --print-ffmpeg-args SRC DIR` prints the exact ladder command of a job,
//! and that command, run as is, writes every rendition (what `scripts/bench` compares against).

use std::path::Path;
use std::process::Command;

use ringcast_testkit::cargo_bin;
use ringcast_testkit::clips::Clip;

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn height(file: &Path) -> String {
    let o = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=height",
            "-of",
            "csv=p=0",
        ])
        .arg(file));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn printed_args_are_the_ladder_and_run_as_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Clip::new(854, 480).fps(25).write(dir.path(), "src.mp4");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");

    let o = run(Command::new(cargo_bin("ringcast-transcoder"))
        .arg("--print-ffmpeg-args")
        .arg(&src)
        .arg(&out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let i = args.iter().position(|a| a == "-i").expect("-i");
    assert_eq!(args[i + 1], format!("file:{}", src.display()));
    // Read as the container its bytes show, never probed by content.
    assert_eq!(
        args[..i],
        [
            "-hide_banner",
            "-y",
            "-f",
            "mov",
            "-protocol_whitelist",
            "file",
            "-enable_drefs",
            "0"
        ]
    );
    // A 480p source: 480p and 360p, no upscale, no audio map for a silent source.
    let outputs: Vec<&String> = args.iter().filter(|a| a.ends_with(".mp4")).collect();
    assert_eq!(outputs.len(), 3, "{args:?}"); // the source and two renditions
    assert!(!args.iter().any(|a| a == "0:a:0?"), "{args:?}");

    let o = run(Command::new("ffmpeg").arg("-nostdin").args(&args));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(height(&out.join("480p.mp4")), "480");
    assert_eq!(height(&out.join("360p.mp4")), "360");
}
