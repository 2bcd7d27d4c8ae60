//! Interop with the tus clients people use: tus-js-client 4.3.1 (Node, `scripts/js`) and tuspy
//! 1.1.0 (Python), both installed by `scripts/install-deps --test`, each run as a child process
//! (`scripts/js/tus_upload.mjs`, `scripts/py/tuspy_upload.py`) against a running ingest. They
//! reach it through a small TCP relay with a fixed port, so an ingest restarted on a new port
//! (crash, deploy) is still where the clients' upload URLs point — what a load balancer does.
//!
//! Covered: chunked upload with creation-with-upload, pause and resume after the ingest
//! restarted, checksum (tuspy's sha1), termination, parallel uploads (concatenation), and an
//! upload cut by a SIGKILL of the ingest that the client resumes to a byte-identical source.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use ringcast_proto::keys;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::Stack;
use serde_json::{json, Value};
use support::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Forwards every connection to the current target (changed after a restart).
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
}

impl Relay {
    fn new(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let target = Arc::new(Mutex::new(target));
        let t = Arc::clone(&target);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let to = *t.lock().expect("target");
                // Nothing listening (the ingest is restarting): the client sees the connection
                // close and retries, as it would at a load balancer.
                let Ok(upstream) = TcpStream::connect(to) else {
                    continue;
                };
                pump(client, upstream);
            }
        });
        Self { addr, target }
    }

    fn point_to(&self, target: SocketAddr) {
        *self.target.lock().expect("target") = target;
    }

    fn endpoint(&self) -> String {
        format!("http://{}/files/", self.addr)
    }
}

/// Copy both directions until either side closes, then close both.
fn pump(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [
        (a.try_clone().expect("clone"), b.try_clone().expect("clone")),
        (b, a),
    ] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// A clip of a few seconds (tens of KiB: several chunks of the sizes below).
fn clip(stack: &Stack) -> (PathBuf, Vec<u8>) {
    let path = Clip::new(320, 240)
        .fps(25)
        .seconds(4)
        .write(stack.dir(), "interop.mp4");
    let bytes = std::fs::read(&path).expect("clip");
    (path, bytes)
}

/// A running client: its JSON events as they come.
struct Client {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Client {
    fn node(opts: Value) -> Self {
        let root = workspace();
        let cmd = Command::new("node")
            .arg(root.join("scripts/js/tus_upload.mjs"))
            .arg(opts.to_string())
            .current_dir(root.join("scripts/js"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node (scripts/install-deps --test installs it and tus-js-client)");
        Self::of(cmd)
    }

    fn python(opts: Value) -> Self {
        let cmd = Command::new("python3")
            .arg(workspace().join("scripts/py/tuspy_upload.py"))
            .arg(opts.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3 (scripts/install-deps --test installs tuspy)");
        Self::of(cmd)
    }

    fn of(mut child: Child) -> Self {
        let stdout = child.stdout.take().expect("stdout");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next event (panics when the client ended first).
    fn next(&mut self) -> Value {
        let line = self
            .lines
            .next()
            .expect("the client ended early")
            .expect("read client output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Events until one named `event` (panics on an `error` event).
    fn until(&mut self, event: &str) -> Value {
        loop {
            let v = self.next();
            assert_ne!(v["event"], "error", "client failed: {v}");
            if v["event"] == event {
                return v;
            }
        }
    }

    /// Read to the end; the client must exit successfully.
    fn finish(mut self) -> Vec<Value> {
        let rest: Vec<Value> = self
            .lines
            .by_ref()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        let status = self.child.wait().expect("wait client");
        assert!(status.success(), "client exited with {status}: {rest:?}");
        rest
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_id(url: &str) -> String {
    url.rsplit('/').next().expect("id").to_string()
}

fn assert_stored(stack: &Stack, video: &str, bytes: &[u8]) {
    let stored = std::fs::read(stack.object_path(&keys::source(video, 1))).expect("stored source");
    assert_eq!(sha256(&stored), sha256(bytes), "stored source differs");
}

#[test]
fn tus_js_client_uploads_in_chunks_with_data_in_the_creation_request() {
    let stack = start(options());
    let relay = Relay::new(stack.ingest().addr);
    let (path, bytes) = clip(&stack);
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "chunkSize": 16 * 1024,
        "uploadDataDuringCreation": true,
    }));
    let url = c.until("url")["url"].as_str().expect("url").to_string();
    c.until("success");
    c.finish();
    assert_stored(&stack, &url_id(&url), &bytes);
}

#[test]
fn tus_js_client_pauses_and_resumes_after_the_ingest_restarted() {
    let mut stack = start(options());
    let relay = Relay::new(stack.ingest().addr);
    let (path, bytes) = clip(&stack);
    let chunk = 8 * 1024;
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "chunkSize": chunk, "abortAfter": 2 * chunk,
    }));
    let paused = c.until("aborted");
    c.finish();
    let url = paused["url"].as_str().expect("url").to_string();
    let kept = paused["offset"].as_u64().expect("offset");
    assert!(
        kept >= 2 * chunk as u64 && kept < bytes.len() as u64,
        "{paused}"
    );

    relay.point_to(stack.restart("ingest").addr);
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "chunkSize": chunk, "uploadUrl": url,
    }));
    // The first progress after resuming starts past what was kept: nothing was sent twice.
    let first = c.until("progress");
    assert!(first["offset"].as_u64().expect("offset") > kept, "{first}");
    c.until("success");
    c.finish();
    assert_stored(&stack, &url_id(&url), &bytes);
}

#[test]
fn tus_js_client_terminates_an_upload() {
    let stack = start(options());
    let ingest = stack.ingest();
    let relay = Relay::new(ingest.addr);
    let (path, _) = clip(&stack);
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "chunkSize": 8 * 1024,
        "abortAfter": 8 * 1024, "terminate": true,
    }));
    let aborted = c.until("aborted");
    c.finish();
    let id = url_id(aborted["url"].as_str().expect("url"));
    let r = ingest
        .conn()
        .request("HEAD", &format!("/files/{id}"), &[TUS], b"")
        .expect("HEAD");
    assert_eq!(r.status, 404, "terminated");
    assert!(!ingest.state_dir.join(format!("uploads/{id}.bin")).exists());
    assert_eq!(
        ingest.counter("ringcast_ingest_uploads_terminated_total"),
        1
    );
}

#[test]
fn tus_js_client_parallel_uploads_are_concatenated() {
    let stack = start(options());
    let relay = Relay::new(stack.ingest().addr);
    let (path, bytes) = clip(&stack);
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "parallelUploads": 3,
    }));
    let done = c.until("success");
    c.finish();
    let url = done["url"].as_str().expect("final url");
    assert_stored(&stack, &url_id(url), &bytes);
    // Three partials were made and used up.
    assert_eq!(
        stack
            .ingest()
            .counter("ringcast_ingest_uploads_created_total"),
        4,
        "three partial uploads and the final one"
    );
}

#[test]
fn tus_js_client_resumes_after_a_sigkill_of_the_ingest_to_identical_bytes() {
    let mut stack = start(options());
    let relay = Relay::new(stack.ingest().addr);
    let (path, bytes) = clip(&stack);
    let chunk = 8 * 1024;
    // Paced (a pause before every PATCH) so the kill lands in the middle of the upload.
    let mut c = Client::node(json!({
        "endpoint": relay.endpoint(), "file": path, "chunkSize": chunk, "delayMs": 150,
        "retryDelays": [0, 500, 1000, 2000, 3000, 5000, 8000],
    }));
    let url = c.until("url")["url"].as_str().expect("url").to_string();
    loop {
        let p = c.until("progress");
        if p["offset"].as_u64().expect("offset") >= 2 * chunk as u64 {
            break;
        }
    }
    // SIGKILL (the kit's restart kills the process, then starts it on the same spool).
    relay.point_to(stack.restart("ingest").addr);
    c.until("success");
    c.finish();
    assert_stored(&stack, &url_id(&url), &bytes);
}

#[test]
fn tuspy_uploads_with_checksums_and_resumes_after_a_restart() {
    let mut stack = start(options());
    let relay = Relay::new(stack.ingest().addr);
    let (path, bytes) = clip(&stack);
    // Every chunk carries `Upload-Checksum: sha1 …`, which the ingest verifies.
    let mut c = Client::python(json!({
        "endpoint": relay.endpoint(), "file": path, "chunk_size": 16 * 1024, "checksum": true,
    }));
    let url = c.until("success")["url"].as_str().expect("url").to_string();
    c.finish();
    assert_stored(&stack, &url_id(&url), &bytes);
    assert_eq!(
        stack
            .ingest()
            .counter("ringcast_ingest_upload_errors_total{kind=\"checksum\"}"),
        0
    );

    // Pause after two chunks, restart the ingest, resume from the URL.
    // Another clip: the same bytes again would finish as a duplicate of the first upload.
    let other = Clip::new(320, 240)
        .fps(25)
        .seconds(3)
        .write(stack.dir(), "other.mp4");
    let copy = std::fs::read(&other).expect("clip");
    let mut c = Client::python(json!({
        "endpoint": relay.endpoint(), "file": other, "chunk_size": 8 * 1024, "chunks": 2,
        "checksum": true,
    }));
    let paused = c.until("paused");
    c.finish();
    assert_eq!(paused["offset"], 16 * 1024);
    let url = paused["url"].as_str().expect("url").to_string();
    relay.point_to(stack.restart("ingest").addr);
    let mut c = Client::python(json!({
        "endpoint": relay.endpoint(), "file": other, "chunk_size": 8 * 1024, "url": url,
        "checksum": true,
    }));
    c.until("success");
    c.finish();
    assert_stored(&stack, &url_id(&url), &copy);
}
