//! Shared pieces of the ingest integration tests: the ingest they start (through the kit's
//! [`Stack`]), tus spoken to it, and readers for what it produced. Readiness is always polled
//! (the testkit's `wait_until`), never slept for.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::time::Duration;

use ringcast_infra::queue::{Delivery, Queue};
use ringcast_infra::side_runtime;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::http::{Conn, Response};
use ringcast_testkit::{wait_until, IngestOptions, Service, Stack};
use sha2::{Digest, Sha256};

pub const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
pub const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// The ingest these tests run unless they say otherwise: the kit's defaults (2 workers, a
/// filesystem store, a private Redis) and a 64 MiB upload limit.
pub fn options() -> IngestOptions {
    IngestOptions::new().max_upload_bytes(64 * 1024 * 1024)
}

/// A stack of Redis, a filesystem store and one ingest started with `opts`.
pub fn start(opts: IngestOptions) -> Stack {
    Stack::builder().ingest(opts).start()
}

/// An ingest spoken to with an API key (`Authorization: Bearer …` on every request).
pub struct WithKey<'a> {
    pub service: &'a Service,
    pub authorization: String,
}

impl<'a> WithKey<'a> {
    pub fn new(service: &'a Service, token: &str) -> Self {
        Self {
            service,
            authorization: format!("Bearer {token}"),
        }
    }
}

/// Where tus requests go: a service, and the credentials they carry.
pub trait Client {
    fn conn(&self) -> Conn;
    /// The `Authorization` value, if any.
    fn authorization(&self) -> Option<&str>;
    /// `headers` plus the credentials.
    fn with_auth<'h>(&'h self, headers: &[(&'h str, &'h str)]) -> Vec<(&'h str, &'h str)> {
        let mut all = headers.to_vec();
        if let Some(a) = self.authorization() {
            all.push(("Authorization", a));
        }
        all
    }
}

impl Client for Service {
    fn conn(&self) -> Conn {
        Service::conn(self)
    }
    fn authorization(&self) -> Option<&str> {
        None
    }
}

impl Client for WithKey<'_> {
    fn conn(&self) -> Conn {
        self.service.conn()
    }
    fn authorization(&self) -> Option<&str> {
        Some(&self.authorization)
    }
}

/// The tus requests the tests make, on the kit's running ingest.
pub trait Tus {
    /// POST /files/ → the Location path.
    fn create(&self, length: u64, metadata: Option<&str>) -> String;
    /// HEAD → the upload's offset.
    fn offset(&self, loc: &str) -> u64;
    fn patch(&self, loc: &str, offset: u64, body: &[u8]) -> Response;
}

impl<C: Client> Tus for C {
    fn create(&self, length: u64, metadata: Option<&str>) -> String {
        let len = length.to_string();
        let mut headers = vec![TUS, ("Upload-Length", len.as_str())];
        if let Some(m) = metadata {
            headers.push(("Upload-Metadata", m));
        }
        let r = self
            .conn()
            .request("POST", "/files/", &self.with_auth(&headers), b"")
            .expect("POST");
        assert_eq!(r.status, 201, "{}", r.text());
        let loc = r.header("location").expect("Location").to_string();
        assert!(loc.starts_with("/files/"), "{loc}");
        loc
    }

    fn offset(&self, loc: &str) -> u64 {
        let r = self
            .conn()
            .request("HEAD", loc, &self.with_auth(&[TUS]), b"")
            .expect("HEAD");
        assert_eq!(r.status, 200, "HEAD {loc}");
        r.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("Upload-Offset")
    }

    fn patch(&self, loc: &str, offset: u64, body: &[u8]) -> Response {
        let off = offset.to_string();
        self.conn()
            .request(
                "PATCH",
                loc,
                &self.with_auth(&[TUS, OCTETS, ("Upload-Offset", off.as_str())]),
                body,
            )
            .expect("PATCH")
    }
}

/// The upload id of a Location path.
pub fn upload_id(loc: &str) -> String {
    loc.trim_start_matches("/files/").to_string()
}

/// A 1-second 320x240 H.264 MP4 (made by the kit's clips in `dir`).
pub fn small_mp4(dir: &Path) -> Vec<u8> {
    let path = Clip::new(320, 240).fps(25).seconds(1).write(dir, "out.mp4");
    let bytes = std::fs::read(path).expect("read mp4");
    assert!(
        bytes.len() > 3000,
        "suspiciously small mp4: {} bytes",
        bytes.len()
    );
    bytes
}

/// [`small_mp4`] grown by `extra` bytes: a trailing `free` box of pseudo-random bytes (unique
/// per `seed`), still a valid MP4 — for uploads past several 1 MiB spool buffers.
pub fn padded_mp4(dir: &Path, extra: usize, seed: u64) -> Vec<u8> {
    let mut v = small_mp4(dir);
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

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Await a side-runtime future from the test thread.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    side_runtime::handle().block_on(fut)
}

pub fn queue(url: &str) -> Queue {
    block_on(Queue::connect(url)).expect("connect to redis")
}

/// The next job in any job stream (live or VOD), waiting up to `wait`.
pub fn next_job(queue: &Queue, wait: Duration) -> Option<Delivery> {
    block_on(async {
        let mut consumer = queue
            .consumer("test", ringcast_infra::queue::all_streams())
            .await
            .expect("consumer");
        consumer.next(wait).await.expect("read jobs")
    })
}

/// Wait until no request holds the upload any more (an interrupted PATCH has saved its state):
/// a body-less PATCH at the current offset is then accepted (204) instead of refused (423).
pub fn wait_until_unlocked(ingest: &Service, loc: &str) {
    wait_until(
        Duration::from_secs(20),
        "the upload lock to be released",
        || {
            let offset = ingest.offset(loc);
            let r = ingest.patch(loc, offset, b"");
            assert!(
                matches!(r.status, 204 | 423 | 409),
                "unexpected {}: {}",
                r.status,
                r.text()
            );
            r.status == 204
        },
    );
}

/// Ids of every job enqueued so far, in every job stream.
pub fn enqueued_job_ids(redis_url: &str) -> Vec<String> {
    let mut conn = redis::Client::open(redis_url)
        .expect("client")
        .get_connection()
        .expect("connect");
    let mut ids = Vec::new();
    for stream in ringcast_infra::queue::all_streams() {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .expect("XRANGE");
        for entry in reply.ids {
            let job: String = entry.get("job").expect("job field");
            let job: serde_json::Value = serde_json::from_str(&job).expect("job JSON");
            ids.push(job["job_id"].as_str().expect("job_id").to_string());
        }
    }
    ids
}

/// The `error.code` of a JSON error response.
pub fn json_error_code(r: &Response) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("JSON error body: {}", r.text()));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}
