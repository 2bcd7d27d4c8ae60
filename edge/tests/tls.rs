//! HTTPS on the edge with real clients and real certificate checks: curl trusting the test CA
//! gets the objects (memory tier and disk tier, the latter read and encrypted in user space
//! where the kernel has no kTLS) and a client trusting another CA is refused; TLS 1.2 and 1.3
//! forced; ALPN; session resumption (tickets in 1.3, session IDs/tickets in 1.2) seen by
//! `openssl s_client` as `Reused`; SIGHUP swaps the certificate for new handshakes while an
//! open connection keeps working; plain HTTP stays on its own listener. Both drivers for the
//! serving paths.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringcast_testkit::tls::{TestCa, TlsFiles};
use ringcast_testkit::wait_until;
use support::{options, pattern, Edge};

const MODES: &str = "ringcast_edge_tls_connections_total";
const HANDSHAKES: &str = "ringcast_edge_tls_handshakes_total";

/// Whether this kernel offers the `tls` ULP (then connections go to kTLS instead of rustls).
fn kernel_has_tls() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .is_ok_and(|l| l.split_whitespace().any(|u| u == "tls"))
}

/// `curl` on `url` trusting `ca`, the body saved to `out`; (exit code, `-w` output, stderr).
fn curl(ca: &Path, url: &str, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .arg("-o")
        .arg(out)
        .args(["-w", "%{http_code} %{http_version} %{ssl_verify_result}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn certs(dir: &Path) -> (TestCa, TlsFiles) {
    let ca = TestCa::new(dir, "main");
    let files = ca.issue(dir, "edge");
    (ca, files)
}

fn https_serves_with_certificate_checks(legacy: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (_ca, files) = certs(dir.path());
    let edge = Edge::start_with(
        options(legacy)
            .disk_cache(cache.path(), 64 << 20, 64 * 1024)
            .tls(&files),
    );
    let small = pattern(1000, 3);
    let big = pattern(3 * 1024 * 1024 + 17, 4);
    edge.put("v/t/1/720p/init.mp4", &small);
    edge.put("v/t/1/720p/seg1.m4s", &big);
    let out = dir.path().join("out");
    for (path, body) in [("init.mp4", &small), ("seg1.m4s", &big), ("seg1.m4s", &big)] {
        let url = format!("{}/v/t/1/720p/{path}", edge.https_url());
        let (code, w, err) = curl(&files.ca, &url, &out, &[]);
        assert_eq!((code, w.as_str()), (0, "200 1.1 0"), "{url}: {err}");
        assert!(
            std::fs::read(&out).expect("body") == *body,
            "{url}: body differs"
        );
    }
    // The third request was a disk hit: a file body on a TLS connection.
    assert!(edge.counter("ringcast_edge_disk_hits_total") >= 1);

    // A client that trusts another CA refuses the certificate (curl: 60).
    let other = TestCa::new(dir.path(), "other");
    let url = format!("{}/v/t/1/720p/init.mp4", edge.https_url());
    let (code, _, err) = curl(&other.ca_file, &url, &out, &[]);
    assert_eq!(code, 60, "wrong CA must fail verification: {err}");

    // Plain HTTP stays on its own listener; TLS bytes are not HTTP there and vice versa.
    let r = edge.get("/v/t/1/720p/init.mp4");
    assert!(r.status == 200 && r.body == small);
    let plain_as_tls = format!("https://localhost:{}/healthz", edge.addr.port());
    assert_ne!(curl(&files.ca, &plain_as_tls, &out, &[]).0, 0);

    // Every HTTPS connection is counted where its encryption ran; the client that distrusted
    // the certificate aborted before its Finished, so the server counts a failed handshake.
    let (kernel, user) = (
        edge.counter(&format!("{MODES}{{mode=\"kernel\"}}")),
        edge.counter(&format!("{MODES}{{mode=\"user_space\"}}")),
    );
    if kernel_has_tls() {
        assert!(kernel >= 3, "kernel {kernel}, user space {user}");
    } else {
        assert_eq!(
            (kernel, user),
            (0, 3),
            "no tls ULP here: rustls in user space"
        );
        assert_eq!(
            edge.counter(&format!("{MODES}{{mode=\"kernel_failed\"}}")),
            0
        );
    }
    assert!(edge.counter(&format!("{HANDSHAKES}{{result=\"failed\"}}")) >= 1);
    assert!(edge.process.log_text().contains("kernel TLS unavailable") != kernel_has_tls());
}

#[test]
fn https_serves_with_certificate_checks_io_uring() {
    https_serves_with_certificate_checks(false);
}

#[test]
fn https_serves_with_certificate_checks_legacy() {
    https_serves_with_certificate_checks(true);
}

/// `openssl s_client` with a request on stdin; its whole output.
fn s_client(port: u16, ca: &Path, args: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(args)
        .arg("-ign_eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let o = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn tls_versions_alpn_and_resumption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, files) = certs(dir.path());
    let edge = Edge::start_with(options(false).tls(&files));
    let out = dir.path().join("out");
    let url = format!("{}/healthz", edge.https_url());
    for (flags, version) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3", "--tls-max", "1.3"][..], "TLSv1.3"),
    ] {
        let mut args = flags.to_vec();
        args.push("-v");
        let (code, w, err) = curl(&files.ca, &url, &out, &args);
        assert_eq!((code, w.as_str()), (0, "200 1.1 0"), "{version}: {err}");
        assert!(
            err.contains(&format!("SSL connection using {version}")),
            "{version}: {err}"
        );
        // curl offers h2 and http/1.1; the shell picks what it speaks.
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    }
    // A client that offers only protocols the server does not speak is refused (RFC 7301).
    let refused = s_client(
        edge.tls_addr.unwrap().port(),
        &files.ca,
        &["-alpn", "spdy/1"],
    );
    assert!(!refused.contains("200 OK"), "{refused}");

    let port = edge.tls_addr.expect("tls").port();
    for (version, flag) in [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")] {
        let sess = dir.path().join(format!("{version}.sess"));
        let sess = sess.to_str().expect("utf-8 path");
        let first = s_client(port, &files.ca, &[flag, "-sess_out", sess]);
        assert!(first.contains(&format!("New, {version}")), "{first}");
        assert!(first.contains("200 OK"), "{first}");
        let again = s_client(port, &files.ca, &[flag, "-sess_in", sess]);
        assert!(again.contains(&format!("Reused, {version}")), "{again}");
        assert!(again.contains("200 OK"), "{again}");
    }
    assert_eq!(
        edge.counter(&format!("{HANDSHAKES}{{result=\"resumed\"}}")),
        2
    );
}

/// A keep-alive HTTPS connection held by `openssl s_client` (stdin open), its output collected.
struct OpenConnection {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl OpenConnection {
    fn open(port: u16, ca: &Path) -> Self {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                "-servername",
                "localhost",
                "-verify_return_error",
                "-quiet",
                "-CAfile",
            ])
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run openssl s_client");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Self { child, output }
    }

    /// Send a GET for `path` and wait for the `n`-th `200 OK` on this connection.
    fn get(&mut self, path: &str, n: usize) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(req.as_bytes()).expect("send request");
        stdin.flush().expect("flush");
        let output = Arc::clone(&self.output);
        let text = move || String::from_utf8_lossy(&output.lock().expect("lock")).into_owned();
        let t = text.clone();
        wait_until(
            Duration::from_secs(10),
            "a response on the open connection",
            || t().matches("HTTP/1.1 200 OK").count() >= n,
        );
        text()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_ca, files) = certs(dir.path());
    let mut edge = Edge::start_with(options(false).tls(&files));
    edge.put("v/r/1/a.txt", b"still here");
    let port = edge.tls_addr.expect("tls").port();
    let out = dir.path().join("out");
    let url = format!("{}/v/r/1/a.txt", edge.https_url());

    let mut open = OpenConnection::open(port, &old_ca.ca_file);
    assert!(open.get("/v/r/1/a.txt", 1).contains("still here"));

    // Renewal by another CA: new files, SIGHUP.
    let new_ca = TestCa::new(dir.path(), "renewed");
    files.replace_with(&new_ca.issue(dir.path(), "renewed"));
    edge.process.signal(libc::SIGHUP);
    let process = &edge.process;
    wait_until(Duration::from_secs(10), "the reload", || {
        process.log_text().contains("TLS certificate reloaded")
    });
    let (code, _, err) = curl(&new_ca.ca_file, &url, &out, &[]);
    assert_eq!(code, 0, "new handshakes present the new certificate: {err}");
    assert_eq!(std::fs::read(&out).expect("body"), b"still here");
    let (code, _, err) = curl(&old_ca.ca_file, &url, &out, &[]);
    assert_eq!(
        code, 60,
        "the old CA no longer verifies new handshakes: {err}"
    );

    // The connection made before the reload keeps its session and keeps serving.
    let text = open.get("/v/r/1/a.txt", 2);
    assert_eq!(text.matches("still here").count(), 2, "{text}");

    // A broken file: the reload fails loudly and the current certificate stays.
    std::fs::write(&files.key, "not a key").expect("write");
    edge.process.signal(libc::SIGHUP);
    let process = &edge.process;
    wait_until(Duration::from_secs(10), "the failed reload", || {
        process.log_text().contains("TLS reload failed")
    });
    let (code, _, err) = curl(&new_ca.ca_file, &url, &out, &[]);
    assert_eq!(code, 0, "still serving the renewed certificate: {err}");
    edge.process.assert_running();
}

/// A TLS connection that never completes its handshake (nothing sent, or a ClientHello cut
/// short) is closed after `header_timeout` and counted as a failed handshake; the edge serves
/// meanwhile.
#[test]
fn stalled_handshakes_are_cut_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, files) = certs(dir.path());
    let edge = Edge::start_with(options(false).toml("header_timeout_ms = 500").tls(&files));
    let addr = edge.tls_addr.expect("tls");
    let silent = std::net::TcpStream::connect(addr).expect("connect");
    let mut partial = std::net::TcpStream::connect(addr).expect("connect");
    // A TLS record header announcing a 512-byte ClientHello, then nothing.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("write");
    let started = std::time::Instant::now();
    for mut s in [silent, partial] {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the server closes without answering");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(
        edge.counter(&format!("{HANDSHAKES}{{result=\"failed\"}}")),
        2
    );
    let out = dir.path().join("out");
    let (code, w, err) = curl(
        &files.ca,
        &format!("{}/healthz", edge.https_url()),
        &out,
        &[],
    );
    assert_eq!((code, w.as_str()), (0, "200 1.1 0"), "{err}");
}
