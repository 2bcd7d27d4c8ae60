//! Blocking tus 1.0 client (core + creation): POST to create, PATCH chunks with the current
//! `Upload-Offset`, and on a transport error or 5xx ask the server with HEAD where it stands and
//! resume from there. The server's answer is the truth; the client never assumes bytes landed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The finished upload as the ingest reported it.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// `/files/{id}` URL of the upload.
    pub location: String,
    /// `Ringcast-Video-Id` of the final response.
    pub video_id: String,
    /// `Ringcast-Job-Id` of the final response.
    pub job_id: String,
}

/// Options for [`upload_file`].
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Bytes per PATCH.
    pub chunk_size: usize,
    /// Retries of one chunk after transport errors or 5xx answers.
    pub max_retries: u32,
    /// `Upload-Metadata` pairs (values are raw bytes, base64-encoded on the wire).
    pub metadata: Vec<(String, Vec<u8>)>,
    /// API key sent as `Authorization: Bearer …` on every request (`None`: an open ingest).
    pub api_key: Option<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            chunk_size: 4 * 1024 * 1024,
            max_retries: 5,
            metadata: Vec::new(),
            api_key: None,
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout_read(Duration::from_secs(120))
        .build()
}

/// Resolve a `Location` header against the endpoint (it may be relative).
fn absolute(endpoint: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    // endpoint is like http://host:port/files/ ; keep scheme://host:port.
    let origin_end = endpoint
        .find("://")
        .and_then(|i| endpoint[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(endpoint.len());
    format!("{}{}", &endpoint[..origin_end], location)
}

/// Which tus request a [`Tap::request`] call reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TusRequest {
    Create,
    Patch,
    Head,
}

/// Observer of an upload: confirmed progress and every request with its latency and status
/// (`None` = transport error). The upload swarm measures through it; the default does nothing.
pub trait Tap {
    fn progress(&mut self, _confirmed: u64, _total: u64) {}
    fn request(&mut self, _kind: TusRequest, _took: Duration, _status: Option<u16>) {}
}

/// A [`Tap`] that only reports progress.
struct ProgressTap<F>(F);

impl<F: FnMut(u64, u64)> Tap for ProgressTap<F> {
    fn progress(&mut self, confirmed: u64, total: u64) {
        (self.0)(confirmed, total)
    }
}

/// The status of a ureq result, `None` for transport errors.
fn status_of(res: &Result<ureq::Response, ureq::Error>) -> Option<u16> {
    match res {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(*code),
        Err(_) => None,
    }
}

/// Upload `path` to the tus endpoint (e.g. `http://127.0.0.1:8081/files/`). `progress` is
/// called with (bytes the server confirmed, total).
pub fn upload_file(
    endpoint: &str,
    path: &Path,
    opts: &UploadOptions,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Uploaded> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let total = file.metadata()?.len();
    upload_from(endpoint, file, total, opts, &mut ProgressTap(progress))
}

/// Upload `total` bytes read from `src` (a file, or an in-memory `Cursor`), reporting to `tap`.
pub fn upload_from<R: Read + Seek>(
    endpoint: &str,
    mut src: R,
    total: u64,
    opts: &UploadOptions,
    tap: &mut impl Tap,
) -> anyhow::Result<Uploaded> {
    let agent = agent();
    let pairs: Vec<(&str, &[u8])> = opts
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let mut create = authorized(agent.post(endpoint), opts.api_key.as_deref())
        .set("Tus-Resumable", "1.0.0")
        .set("Upload-Length", &total.to_string());
    if !pairs.is_empty() {
        create = create.set(
            "Upload-Metadata",
            &ringcast_proto::tus::encode_metadata(&pairs),
        );
    }
    let t0 = Instant::now();
    let res = create.call();
    tap.request(TusRequest::Create, t0.elapsed(), status_of(&res));
    let resp = res.map_err(describe).context("create upload")?;
    let location = absolute(
        endpoint,
        resp.header("Location")
            .context("server sent no Location for the new upload")?,
    );
    let mut offset = 0u64;
    let mut buf = vec![0u8; opts.chunk_size.max(1)];
    let mut failures = 0;
    loop {
        // The last PATCH of a zero-length upload still has to be sent once to finish it.
        let n = if offset < total {
            src.seek(SeekFrom::Start(offset))?;
            let want = ((total - offset) as usize).min(buf.len());
            src.read_exact(&mut buf[..want])?;
            want
        } else {
            0
        };
        let t0 = Instant::now();
        let res = authorized(agent.request("PATCH", &location), opts.api_key.as_deref())
            .set("Tus-Resumable", "1.0.0")
            .set("Upload-Offset", &offset.to_string())
            .set("Content-Type", "application/offset+octet-stream")
            .send_bytes(&buf[..n]);
        tap.request(TusRequest::Patch, t0.elapsed(), status_of(&res));
        match res {
            Ok(resp) => {
                failures = 0;
                offset = header_u64(&resp, "Upload-Offset")?;
                tap.progress(offset, total);
                if offset == total {
                    return Ok(Uploaded {
                        video_id: resp
                            .header("Ringcast-Video-Id")
                            .unwrap_or_default()
                            .to_string(),
                        job_id: resp
                            .header("Ringcast-Job-Id")
                            .unwrap_or_default()
                            .to_string(),
                        location,
                    });
                }
            }
            Err(ureq::Error::Status(code, resp)) if code < 500 && code != 409 => {
                bail!("PATCH at offset {offset} rejected: {code} {}", body(resp));
            }
            Err(e) => {
                failures += 1;
                if failures > opts.max_retries {
                    return Err(describe(e)).context("upload failed after retries");
                }
                std::thread::sleep(Duration::from_millis(200 * u64::from(failures)));
                let t0 = Instant::now();
                let head = current_offset(&agent, &location, opts.api_key.as_deref());
                tap.request(
                    TusRequest::Head,
                    t0.elapsed(),
                    head.as_ref().ok().map(|_| 200),
                );
                offset = head?;
                tap.progress(offset, total);
            }
        }
    }
}

/// `req` with `Authorization: Bearer {api_key}`, or unchanged without a key (an empty header
/// would be refused as a malformed credential).
pub fn authorized(req: ureq::Request, api_key: Option<&str>) -> ureq::Request {
    match api_key {
        Some(key) => req.set("Authorization", &format!("Bearer {key}")),
        None => req,
    }
}

/// Ask the server where the upload stands (HEAD).
pub fn current_offset(
    agent: &ureq::Agent,
    location: &str,
    api_key: Option<&str>,
) -> anyhow::Result<u64> {
    let resp = authorized(agent.head(location), api_key)
        .set("Tus-Resumable", "1.0.0")
        .call()
        .map_err(describe)
        .context("HEAD upload")?;
    header_u64(&resp, "Upload-Offset")
}

fn header_u64(resp: &ureq::Response, name: &str) -> anyhow::Result<u64> {
    resp.header(name)
        .with_context(|| format!("response has no {name}"))?
        .parse()
        .with_context(|| format!("bad {name}"))
}

fn body(resp: ureq::Response) -> String {
    resp.into_string().unwrap_or_default()
}

fn describe(e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, resp) => anyhow::anyhow!("HTTP {code}: {}", body(resp)),
        other => anyhow::anyhow!(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_locations() {
        assert_eq!(
            absolute("http://127.0.0.1:8081/files/", "/files/abc"),
            "http://127.0.0.1:8081/files/abc"
        );
        assert_eq!(
            absolute("http://h:1/files/", "http://other:2/files/x"),
            "http://other:2/files/x"
        );
    }
}
