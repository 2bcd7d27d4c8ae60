//! The browser page (repository `web/`): upload, library, player and live list, served by the
//! edge at `/` so the page and everything it talks to (`/v1/`, `/files/`, `/v/`, `/s/`) share
//! one origin, and its Content-Security-Policy can allow that origin only.
//!
//! - [`assets`]: the built-in files and the URL space (`/`, `/watch/{id}`, `/live`, `/web/…`);
//! - [`config`]: `[web]` (`enabled`, `dir` to serve from a directory instead).
//!
//! Every file is answered like a cached object ([`crate::representation`]): a strong ETag of
//! the body, `If-None-Match` → 304, ranges, and gzip for text (compressed once at start for the
//! built-in copy). `Cache-Control: no-cache`: the browser keeps the bytes but asks again each
//! time (a 304 costs a round trip and no body), so a new edge binary's page is picked up at
//! once and its files never mix with an older version's.

pub mod assets;
pub mod config;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringcast_proto::http::conditional::EntityTag;
use ringcast_proto::http::{Method, RequestHead};

use crate::error::EdgeError;
use crate::representation;
use crate::response::Response;
use crate::tiers::memory::{unix_now, CacheStatus, Entry, EntryKind};

use self::config::WebConfig;

/// `Cache-Control` of the page's files (see the module docs).
pub const CACHE_CONTROL: &str = "no-cache";

/// What the page may load: its own origin only. `blob:` for media is how Media Source
/// Extensions hand hls.js's buffers to the `<video>` element (an object URL of this page, not
/// another origin); `data:` images are the CSS's inline icons.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; media-src 'self' blob:; worker-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Where the files come from.
enum Source {
    /// The copy built into the binary, prepared at start.
    Embedded(HashMap<&'static str, Entry>),
    /// Read from a directory on every request.
    Dir(PathBuf),
}

/// The page, shared by every worker (cheap to clone).
#[derive(Clone)]
pub struct Web {
    source: Option<Arc<Source>>,
}

impl Web {
    /// The page as configured (`None` inside when `[web] enabled = false`).
    pub fn new(cfg: &WebConfig) -> Self {
        let source = match (cfg.enabled, cfg.dir.is_empty()) {
            (false, _) => None,
            (true, false) => Some(Arc::new(Source::Dir(PathBuf::from(&cfg.dir)))),
            (true, true) => Some(Arc::new(Source::Embedded(
                assets::EMBEDDED
                    .iter()
                    .map(|(name, body)| (*name, entry(name, Bytes::from_static(body))))
                    .collect(),
            ))),
        };
        Self { source }
    }

    /// No page (`[web] enabled = false`, and unit tests).
    pub fn disabled() -> Self {
        Self { source: None }
    }

    /// The answer to `req` when its path is the page's; `None` for every other path.
    pub fn serve(&self, req: &RequestHead, path: &str) -> Option<Result<Response, EdgeError>> {
        let source = self.source.as_ref()?;
        let name = assets::file_for(path)?;
        if !matches!(req.method, Method::Get | Method::Head) {
            return Some(Err(EdgeError::MethodNotAllowed));
        }
        let found = match source.as_ref() {
            Source::Embedded(files) => files.get(name).cloned(),
            Source::Dir(dir) => read_from(dir, name),
        };
        let Some(found) = found else {
            return Some(Err(EdgeError::NotFound));
        };
        let resp = representation::respond_from_as(
            req,
            &found,
            representation::BodySource::Memory,
            CacheStatus::Hit,
            0,
            false,
        );
        Some(Ok(with_page_headers(resp)))
    }
}

/// A file of the configured directory (blocking read: the directory is for working on the
/// page, not for serving traffic).
fn read_from(dir: &std::path::Path, name: &str) -> Option<Entry> {
    if !assets::is_safe_name(name) {
        return None;
    }
    let body = std::fs::read(dir.join(name)).ok()?;
    Some(entry(name, Bytes::from(body)))
}

/// The entry one file is answered from: validators of its body, its gzip when that helps.
fn entry(name: &str, body: Bytes) -> Entry {
    let content_type = assets::content_type(name);
    Entry {
        kind: EntryKind::Object,
        content_type,
        cache_control: CACHE_CONTROL,
        fetched_at: Instant::now(),
        expires: None,
        refresh: None,
        etag: EntityTag::of(&body),
        last_modified: unix_now(),
        gzip: assets::compressible(content_type)
            .then(|| gzip(&body))
            .flatten(),
        body,
    }
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

/// The security headers of every page answer.
fn with_page_headers(resp: Response) -> Response {
    resp.header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("X-Frame-Options", "DENY")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::http::{parse_request, Limits};

    fn get(web: &Web, raw: &str) -> Option<Response> {
        let (head, _) = parse_request(raw.as_bytes(), &Limits::default())
            .expect("valid")
            .expect("complete");
        let path = head.path().to_string();
        web.serve(&head, &path).map(|r| match r {
            Ok(r) => r,
            Err(e) => Response::error(&e),
        })
    }

    #[test]
    fn the_page_its_files_and_deep_links() {
        let web = Web::new(&WebConfig::default());
        let r = get(&web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("page");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            r.get_header("Content-Security-Policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert!(String::from_utf8_lossy(&r.body).contains("<!doctype html>"));
        let deep = get(&web, "GET /watch/abc HTTP/1.1\r\nHost: x\r\n\r\n").expect("deep");
        assert_eq!(deep.body, r.body);
        let js = get(&web, "GET /web/js/app.js HTTP/1.1\r\nHost: x\r\n\r\n").expect("js");
        assert_eq!(
            js.get_header("Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(js.get_header("Cache-Control"), Some(CACHE_CONTROL));
        let missing = get(&web, "GET /web/nope.js HTTP/1.1\r\nHost: x\r\n\r\n").expect("404");
        assert_eq!(missing.status, 404);
        let post = get(&web, "POST / HTTP/1.1\r\nHost: x\r\n\r\n").expect("405");
        assert_eq!(post.status, 405);
        assert!(get(&web, "GET /v/a/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n").is_none());
        assert!(get(&Web::disabled(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_none());
    }

    #[test]
    fn gzip_and_revalidation() {
        let web = Web::new(&WebConfig::default());
        let raw = "GET /web/vendor/hls.min.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n";
        let r = get(&web, raw).expect("js");
        assert_eq!(r.get_header("Content-Encoding"), Some("gzip"));
        let plain = assets::EMBEDDED
            .iter()
            .find(|(n, _)| *n == "vendor/hls.min.js")
            .expect("hls.js")
            .1;
        assert!(r.body.len() < plain.len() / 2, "{}", r.body.len());
        let etag = r.get_header("ETag").expect("etag").to_string();
        let again = format!(
            "GET /web/vendor/hls.min.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}\r\n\r\n"
        );
        assert_eq!(get(&web, &again).expect("304").status, 304);
    }

    #[test]
    fn a_directory_is_read_on_every_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<!doctype html>one").expect("write");
        let web = Web::new(&WebConfig {
            enabled: true,
            dir: dir.path().to_string_lossy().into(),
        });
        let r = get(&web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("page");
        assert_eq!(&r.body[..], b"<!doctype html>one");
        std::fs::write(dir.path().join("index.html"), "<!doctype html>two").expect("write");
        let r = get(&web, "GET /watch/x HTTP/1.1\r\nHost: x\r\n\r\n").expect("page");
        assert_eq!(&r.body[..], b"<!doctype html>two");
        let r = get(&web, "GET /web/app.css HTTP/1.1\r\nHost: x\r\n\r\n").expect("404");
        assert_eq!(r.status, 404);
    }
}
