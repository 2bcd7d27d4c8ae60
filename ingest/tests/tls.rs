//! HTTPS on the ingest (the server shell's TLS listener): a tus upload over TLS with curl
//! trusting the test CA — creation, then a PATCH whose body is read through rustls — and the
//! upload's offset checked on the plain listener; a client trusting another CA is refused.

mod support;

use std::process::Command;

use ringcast_testkit::tls::TestCa;
use support::*;

fn curl(ca: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("run curl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn tus_upload_over_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "ingest");
    let files = ca.issue(dir.path(), "ingest");
    let stack = start(options().tls(&files));
    let ingest = stack.ingest();
    let base = ingest.https_url();
    let video = small_mp4(stack.dir());
    let body = dir.path().join("video.mp4");
    std::fs::write(&body, &video).expect("write");

    let len = format!("Upload-Length: {}", video.len());
    let (code, head) = curl(
        &files.ca,
        &[
            "-X",
            "POST",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            &len,
            &format!("{base}/files/"),
        ],
    );
    assert_eq!(code, 0, "{head}");
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    let loc = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or(l.strip_prefix("Location: "))
        })
        .expect("Location")
        .trim()
        .to_string();

    let data = format!("@{}", body.display());
    let (code, head) = curl(
        &files.ca,
        &[
            "-X",
            "PATCH",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Offset: 0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            "--data-binary",
            &data,
            &format!("{base}{loc}"),
        ],
    );
    assert_eq!(code, 0, "{head}");
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    let offset = format!("upload-offset: {}", video.len());
    assert!(head.to_ascii_lowercase().contains(&offset), "{head}");

    // The same upload seen on the plain listener.
    let r = ingest
        .conn()
        .request("HEAD", &loc, &[("Tus-Resumable", "1.0.0")], b"")
        .expect("HEAD");
    assert_eq!(
        r.header("upload-offset"),
        Some(video.len().to_string().as_str())
    );

    let other = TestCa::new(dir.path(), "other");
    let (code, out) = curl(&other.ca_file, &[&format!("{base}/healthz")]);
    assert_eq!(code, 60, "{out}");
    assert!(ingest.counter("ringcast_ingest_tls_connections_total{mode=\"user_space\"}") >= 2);
}
