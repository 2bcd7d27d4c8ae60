//! Protocol refusals against the real binary: every one leaves the upload intact, and the server
//! keeps answering.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringcast_testkit::wait_until;
use support::*;

fn error_code(r: &ringcast_testkit::http::Response) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn refusals_follow_the_protocol() {
    let stack = start(options().max_upload_bytes(1000));
    let ingest = stack.ingest();
    let loc = ingest.create(100, None);
    assert_eq!(ingest.patch(&loc, 0, &[7u8; 40]).status, 204);

    // 409: wrong offset.
    let r = ingest.patch(&loc, 10, &[1u8; 10]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(error_code(&r), "offset_mismatch");
    // The upload exists and is unfinished: the refusal says until when it may be resumed.
    let expires = r
        .header("upload-expires")
        .expect("Upload-Expires on the 409");
    assert!(
        ringcast_proto::http::date::parse(expires).is_some(),
        "{expires}"
    );
    // No such upload: nothing expires.
    let r = ingest.patch("/files/nosuchupload", 0, b"x");
    assert_eq!(r.status, 404);
    assert!(r.header("upload-expires").is_none());

    // 412: no Tus-Resumable (with Tus-Version in the answer), on POST, HEAD and PATCH.
    let mut c = ingest.conn();
    let r = c
        .request(
            "PATCH",
            &loc,
            &[OCTETS, ("Upload-Offset", "40")],
            &[1u8; 10],
        )
        .expect("PATCH");
    assert_eq!(r.status, 412);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    let r = c.request("HEAD", &loc, &[], b"").expect("HEAD");
    assert_eq!(r.status, 412);
    let r = c
        .request("POST", "/files/", &[("Upload-Length", "10")], b"")
        .expect("POST");
    assert_eq!(r.status, 412);
    let r = c
        .request("HEAD", &loc, &[("Tus-Resumable", "0.2.2")], b"")
        .expect("HEAD");
    assert_eq!(r.status, 412, "unsupported version");

    // 415: wrong content type.
    let r = c
        .request(
            "PATCH",
            &loc,
            &[
                TUS,
                ("Content-Type", "application/octet-stream"),
                ("Upload-Offset", "40"),
            ],
            &[1u8; 10],
        )
        .expect("PATCH");
    assert_eq!(r.status, 415);
    assert_eq!(error_code(&r), "bad_content_type");

    // 413: Upload-Length over the maximum; a PATCH body longer than what is left.
    let r = c
        .request("POST", "/files/", &[TUS, ("Upload-Length", "1001")], b"")
        .expect("POST");
    assert_eq!(r.status, 413);
    let r = ingest.patch(&loc, 40, &[9u8; 61]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        ingest.offset(&loc),
        40,
        "nothing written by the refused PATCH"
    );

    // 400: malformed creation requests.
    for (name, value) in [
        ("Upload-Length", "abc"),
        ("Upload-Length", "0"),
        ("Upload-Length", "-1"),
    ] {
        let r = c
            .request("POST", "/files/", &[TUS, (name, value)], b"")
            .expect("POST");
        assert_eq!(r.status, 400, "{name}: {value}");
    }
    let r = c.request("POST", "/files/", &[TUS], b"").expect("POST");
    assert_eq!(r.status, 400, "missing Upload-Length");
    let r = c
        .request(
            "POST",
            "/files/",
            &[
                TUS,
                ("Upload-Length", "10"),
                ("Upload-Metadata", "priority dXJnZW50"),
            ],
            b"",
        )
        .expect("POST");
    assert_eq!(r.status, 400, "priority 'urgent' is not a queue");
    let r = c
        .request("PATCH", &loc, &[TUS, OCTETS, ("Upload-Offset", "x")], b"")
        .expect("PATCH");
    assert_eq!(r.status, 400, "bad Upload-Offset");

    // 404: unknown uploads; ids that are not ids.
    for target in [
        "/files/AAAAAAAAAAAAAAAAAAAAAA",
        "/files/..%2F..%2Fetc",
        "/files/a/b",
    ] {
        let r = c.request("HEAD", target, &[TUS], b"").expect("HEAD");
        assert_eq!(r.status, 404, "{target}");
        let r = c
            .request(
                "PATCH",
                target,
                &[TUS, OCTETS, ("Upload-Offset", "0")],
                b"x",
            )
            .expect("PATCH");
        assert_eq!(r.status, 404, "{target}");
    }
    let r = c.request("GET", "/nope", &[], b"").expect("GET");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Video API: invalid and unknown ids.
    let r = c
        .request("GET", "/v1/videos/bad.id", &[], b"")
        .expect("GET");
    assert_eq!(r.status, 400);
    let r = c
        .request("GET", "/v1/videos/unknown", &[], b"")
        .expect("GET");
    assert_eq!(r.status, 404);

    // 405 / 501.
    let r = c.request("PUT", &loc, &[TUS], b"").expect("PUT");
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some_and(|a| a.contains("PATCH")));
    let r = c.request("PUT", "/healthz", &[], b"").expect("PUT");
    assert_eq!(r.status, 405);
    let r = c.request("BREW", "/files/", &[], b"").expect("BREW");
    assert_eq!(r.status, 501);

    // After all those refusals the upload is intact at offset 40 and can be completed; its
    // content (all 0x07) is then refused as a non-video.
    let r = ingest.patch(&loc, 40, &[7u8; 60]);
    assert_eq!(r.status, 415, "100 bytes of 0x07 are no video");
    assert_eq!(
        ingest.counter("ringcast_ingest_upload_errors_total{kind=\"rejected\"}"),
        1
    );
}

#[test]
fn cors_preflight_and_exposed_headers() {
    let stack = start(options());
    let ingest = stack.ingest();
    let mut c = ingest.conn();
    let r = c
        .request(
            "OPTIONS",
            "/files/",
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "PATCH"),
                (
                    "Access-Control-Request-Headers",
                    "tus-resumable, upload-offset, content-type",
                ),
            ],
            b"",
        )
        .expect("preflight");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.header("access-control-allow-methods").unwrap_or_default();
    for m in ["POST", "PATCH", "HEAD"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in [
        "tus-resumable",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "content-type",
    ] {
        assert!(headers.contains(h), "{headers}");
    }
    let loc = ingest.create(10, None);
    let r = c.request("HEAD", &loc, &[TUS], b"").expect("HEAD");
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default();
    for h in [
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Tus-Resumable",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    let r = c.request("GET", "/healthz", &[], b"").expect("GET");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn request_head_limits() {
    let stack = start(options());
    let ingest = stack.ingest();
    let long = format!("/files/{}", "a".repeat(5000));
    let r = ingest
        .conn()
        .request("HEAD", &long, &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 414);
    let big = "b".repeat(20_000);
    let r = ingest
        .conn()
        .request("GET", "/healthz", &[("X-Big", big.as_str())], b"")
        .expect("GET");
    assert_eq!(r.status, 431);
    let mut raw = ingest.conn();
    raw.send_raw(b"GARBAGE\r\n\r\n").expect("send");
    assert_eq!(raw.read_response(false).expect("response").status, 400);
    // Still serving.
    assert_eq!(
        ingest
            .conn()
            .request("GET", "/healthz", &[], b"")
            .expect("GET")
            .status,
        200
    );
}

#[test]
fn a_second_concurrent_patch_is_locked_out() {
    let stack = start(options());
    let ingest = stack.ingest();
    let video = small_mp4(stack.dir());
    let loc = ingest.create(video.len() as u64, None);

    // First PATCH: head and a third of the body, then the rest trickles in (a PATCH that keeps
    // sending keeps its lock; one whose client goes silent is taken over: tus_extensions.rs).
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: {}\r\n\r\n",
        video.len()
    );
    let third = video.len() / 3;
    let start_first = || {
        let mut s = TcpStream::connect(ingest.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(&video[..third]).expect("body part");
        s
    };
    let mut first = start_first();
    let mut sender: Option<std::thread::JoinHandle<TcpStream>> = None;

    let trickle = |mut s: TcpStream| {
        let rest = video[third..].to_vec();
        std::thread::spawn(move || {
            // Over about 6 s, whatever the clip's size: long enough for a probe to wait out
            // its 2 s, never 1 s without a byte.
            let pieces = rest.chunks(16).count().max(1) as u64;
            let pause = Duration::from_millis((6000 / pieces).clamp(2, 200));
            for piece in rest.chunks(16) {
                s.write_all(piece).expect("trickle");
                std::thread::sleep(pause);
            }
            s
        })
    };
    // A second PATCH (workers share the lock, whichever core takes it) is refused with 423 once
    // the first one holds the upload and keeps writing; before that an empty PATCH at offset 0
    // is a no-op 204.
    // The probe itself holds the lock for a moment: if the first PATCH's head arrives just then,
    // the *first* one is refused with 423 instead — start it again and keep probing.
    wait_until(
        Duration::from_secs(20),
        "423 for a concurrent PATCH",
        || {
            if let Some(status) = early_status(&first) {
                assert_eq!(status, 423, "the first PATCH was answered early");
                first = start_first();
                return false;
            }
            if sender.is_none() {
                sender = Some(trickle(first.try_clone().expect("clone")));
            }
            let r = ingest.patch(&loc, 0, b"");
            assert!(matches!(r.status, 204 | 423), "{} {}", r.status, r.text());
            r.status == 423
        },
    );

    // The first PATCH completes normally and finishes the upload.
    sender.expect("trickling").join().expect("trickle thread");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = first.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed early");
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    assert!(text.contains("Ringcast-Job-Id:"), "{text}");
}

/// The status line of a response already waiting on `s`, without blocking.
fn early_status(s: &TcpStream) -> Option<u16> {
    let mut buf = [0u8; 12];
    s.set_nonblocking(true).expect("nonblocking");
    let peeked = s.peek(&mut buf);
    s.set_nonblocking(false).expect("blocking");
    match peeked {
        Ok(n) if n >= 12 => std::str::from_utf8(&buf[9..12]).ok()?.parse().ok(),
        _ => None,
    }
}

#[test]
fn slow_request_heads_time_out() {
    let stack = start(options().toml("header_timeout_secs = 1"));
    let ingest = stack.ingest();
    let mut slow = ingest.conn();
    // Half a head, never finished: the server answers 408 once the header timeout passes.
    slow.send_raw(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .expect("send");
    let r = slow.read_response(false).expect("408 response");
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        ingest
            .conn()
            .request("GET", "/healthz", &[], b"")
            .expect("GET")
            .status,
        200
    );
}
