//! Request → response: the edge's routes.
//!
//! - `GET|HEAD /v/{path}` → object `v/{path}` through the memory cache, with ranges,
//!   conditionals and gzip ([`crate::representation`]); with signed URLs on, the query must carry
//!   a valid signature ([`crate::routes::access_control`]);
//! - `GET|HEAD /s/{exp}/{len}/{sig}/v/{path}` → the same object through a path-token signature
//!   (when a signing secret is configured);
//! - both check the video's visibility first ([`crate::routes::playback`]): a private video's
//!   objects need a signature, and are answered `Cache-Control: private`;
//! - `POST /purge[?fleet=1]`, `DELETE /v/{key}`, `DELETE /v/{prefix}*` → purge
//!   ([`crate::routes::purge`]; `fleet=1` publishes to every edge), when an admin key is
//!   configured (without one, DELETE stays 405 and `POST /purge` is 403);
//! - live LL-HLS playlists and held preload-hinted parts of followed renditions are answered
//!   by `live::handler` before the object path (under either URL form);
//! - an object request with a CMCD next-object hint warms that object ([`crate::prefetch`]);
//! - `GET|HEAD /_peer/v/{path}` → the object for another edge of the tier ([`crate::peers`]),
//!   with the tier's secret, never forwarded again;
//! - `GET|HEAD /healthz` → `ok`; `GET|HEAD /metrics` → Prometheus text; `GET|HEAD /readyz`
//!   is answered by the handler before the routes ([`crate::readiness`]: it needs the
//!   connection's draining state);
//! - the browser page: `GET|HEAD /`, `/watch/{id}`, `/live`, `/web/…` ([`crate::web`]);
//! - `OPTIONS` anything → 204 CORS preflight;
//! - a known method the route does not support → 405 with `Allow`; an unknown method → 501.
//!
//! Errors come back as [`EdgeError`] and become responses in one place ([`Response::error`]).

pub mod access_control;
pub mod path;
pub mod playback;
pub mod purge;

use bytes::Bytes;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::prometheus::Writer;

use crate::error::EdgeError;
use crate::live::handler::Live;
use crate::live::hot_parts;
use crate::peers;
use crate::representation;
use crate::representation::BodySource;
use crate::response::{Response, ALLOWED_METHODS};
use crate::routes::access_control::Proof;
use crate::routes::path::{object_key, object_key_of};
use crate::shared::Shared;
use crate::tiers;
use crate::tiers::memory::EntryKind;

/// Whether the connection should read the request body and pass it to [`handle_with_body`]
/// (only the purge API takes one; every other body is left unread).
pub fn wants_body(req: &RequestHead) -> bool {
    req.method == Method::Post && req.path() == "/purge"
}

/// Answer one request. Never fails: errors become their JSON responses.
pub async fn handle(req: &RequestHead, shared: &Shared) -> Response {
    handle_with_body(req, &[], shared, false).await
}

/// [`handle`] for a request whose body was read (see [`wants_body`]). `zero_copy_files`: the
/// connection sends file bodies with `sendfile` (`Conn::sends_files_zero_copy`), so a hot
/// live part is worth answering from a shared in-memory file.
pub async fn handle_with_body(
    req: &RequestHead,
    body: &[u8],
    shared: &Shared,
    zero_copy_files: bool,
) -> Response {
    let mut resp = match route(req, body, shared, zero_copy_files).await {
        Ok(r) => r,
        Err(e) => {
            // Only the edge's own failures are worth a warning; client mistakes are not.
            if matches!(e.status(), 500 | 502 | 503 | 504) {
                tracing::warn!(target = %req.target, error = %e, "request failed");
            }
            Response::error(&e)
        }
    };
    resp.head_only = req.method == Method::Head;
    resp
}

async fn route(
    req: &RequestHead,
    body: &[u8],
    shared: &Shared,
    zero_copy_files: bool,
) -> Result<Response, EdgeError> {
    if let Method::Other(m) = &req.method {
        return Err(EdgeError::NotImplemented(m.clone()));
    }
    if req.method == Method::Options {
        return Ok(preflight());
    }
    let path = req.path();
    let readable = matches!(req.method, Method::Get | Method::Head);
    match path {
        "/healthz" if readable => Ok(Response::new(200)
            .header("Cache-Control", "no-store")
            .body("text/plain; charset=utf-8", Bytes::from_static(b"ok"))),
        "/metrics" if readable => {
            let mut w = Writer::from_string(shared.metrics.render(shared.gauges()));
            shared.live.render_metrics(&mut w);
            shared.platform.render_metrics(&mut w);
            if let Some(front_door) = &shared.front_door {
                front_door.render_metrics(&mut w);
            }
            if let Some(peers) = &shared.peers {
                peers.render_metrics(&mut w);
            }
            shared.prefetch.render_metrics(&mut w);
            let text = w.finish();
            Ok(Response::new(200).header("Cache-Control", "no-store").body(
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(text),
            ))
        }
        "/healthz" | "/metrics" | "/readyz" => Err(EdgeError::MethodNotAllowed),
        "/purge" if req.method == Method::Post => purge::post(req, body, shared).await,
        "/purge" => Err(EdgeError::MethodNotAllowed),
        _ if path.starts_with("/v/") => {
            if req.method == Method::Delete && shared.access.purge_enabled() {
                return purge::delete(req, path, shared);
            }
            if !readable {
                return Err(EdgeError::MethodNotAllowed);
            }
            let proof = shared.access.query_proof(req)?;
            object(req, path, proof, shared, zero_copy_files).await
        }
        _ if path.starts_with(peers::PATH_PREFIX) => {
            if !readable {
                return Err(EdgeError::MethodNotAllowed);
            }
            peer_object(req, path, shared).await
        }
        _ if path.starts_with(ringcast_proto::signed_url::PATH_TOKEN_PREFIX) => {
            let inner = shared.access.strip_path_token(path)?;
            if !readable {
                return Err(EdgeError::MethodNotAllowed);
            }
            if !inner.starts_with("/v/") {
                return Err(EdgeError::NotFound);
            }
            object(req, inner, Proof::Signed, shared, zero_copy_files).await
        }
        _ => shared
            .web
            .serve(req, path)
            .unwrap_or(Err(EdgeError::NotFound)),
    }
}

/// `GET|HEAD /v/{path}`, once the request proved `proof`.
async fn object(
    req: &RequestHead,
    path: &str,
    proof: Proof,
    shared: &Shared,
    zero_copy_files: bool,
) -> Result<Response, EdgeError> {
    let key = object_key_of(path)?;
    let admission = playback::admit(shared, &key, proof).await?;
    let query = req.query();
    let live = crate::live::handler::serve(&key, path, query, admission.private, shared).await?;
    let hot = match live {
        Live::Answered(resp) => return Ok(resp),
        Live::Part => zero_copy_files,
        Live::NotLive => false,
    };
    let resp = from_tiers(req, &shared.tiers(), &key, admission.private, hot).await?;
    crate::prefetch::follow_hint(req, path, shared);
    Ok(resp)
}

/// Look `key` up in `tiers` and answer `req` with it (404 when it does not exist). `hot`: a
/// followed rendition's part on a connection that sends files zero-copy; from the memory tier
/// it goes out from a shared in-memory file once several viewers asked for it.
async fn from_tiers(
    req: &RequestHead,
    tiers: &tiers::TierSet<'_>,
    key: &str,
    private: bool,
    hot: bool,
) -> Result<Response, EdgeError> {
    let found = tiers::lookup(tiers, key).await?;
    if found.entry.kind == EntryKind::NotFound {
        return Err(EdgeError::NotFound);
    }
    let source = match found.disk {
        Some(obj) => BodySource::Disk(obj.file, obj.len),
        None if hot => {
            hot_parts::file_for(&found.entry.body).map_or(BodySource::Memory, BodySource::MemFile)
        }
        None => BodySource::Memory,
    };
    Ok(representation::respond_from_as(
        req,
        &found.entry,
        source,
        found.status,
        found.age,
        private,
    ))
}

/// `GET|HEAD /_peer/v/{path}` from another edge of the tier ([`crate::peers`]): the object
/// from this edge's tiers or the origin, never from another edge (no loops). The asking edge
/// checked visibility already; the tier's secret proves the request comes from one.
async fn peer_object(
    req: &RequestHead,
    path: &str,
    shared: &Shared,
) -> Result<Response, EdgeError> {
    let Some(peers) = &shared.peers else {
        return Err(EdgeError::NotFound);
    };
    if !peers.authenticate(req.header(peers::SECRET_HEADER)) {
        return Err(EdgeError::Forbidden);
    }
    let inner = &path[peers::PATH_PREFIX.len() - 1..];
    if !inner.starts_with("/v/") {
        return Err(EdgeError::NotFound);
    }
    let key = object_key(inner)?;
    from_tiers(req, &shared.tiers_for_peer(), &key, false, false).await
}

/// CORS preflight (Fetch standard §3.2.3): players send `Range` and conditional headers.
fn preflight() -> Response {
    Response::new(204)
        .header("Allow", ALLOWED_METHODS)
        .header("Access-Control-Allow-Methods", ALLOWED_METHODS)
        .header(
            "Access-Control-Allow-Headers",
            "Range, If-None-Match, If-Modified-Since, If-Range, If-Match, Cache-Control",
        )
        .header("Access-Control-Max-Age", "86400")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::hub::LiveHub;
    use crate::origin::Origin;
    use crate::platform::Platform;
    use crate::routes::access_control::Access;
    use crate::tiers::memory::MemoryCache;
    use crate::tiers::policy::StaleWindows;
    use crate::tiers::Tiering;
    use ringcast_infra::config::StoreConfig;
    use ringcast_infra::store::ObjectStore;
    use ringcast_proto::http::{parse_request, Limits};
    use std::sync::Arc;
    use std::time::Duration;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn shared(dir: &std::path::Path) -> Shared {
        let cfg = StoreConfig {
            root: dir.to_path_buf(),
            ..StoreConfig::default()
        };
        let store = run(ObjectStore::open(&cfg)).expect("open store");
        let d = Duration::from_secs(60);
        Shared {
            origin: Arc::new(Origin::Store(store)),
            cache: Arc::new(MemoryCache::new(1 << 20, d, d, d)),
            disk: None,
            tiering: Tiering {
                disk_min_object_bytes: 1,
                stale: StaleWindows {
                    while_revalidate: d,
                    if_error: d,
                },
            },
            metrics: Arc::default(),
            access: Access::default(),
            live: LiveHub::disabled(),
            platform: Platform::disabled(),
            front_door: None,
            web: crate::web::Web::disabled(),
            peers: None,
            prefetch: Arc::default(),
        }
    }

    fn request(shared: &Shared, raw: &str) -> Response {
        let (head, _) = parse_request(raw.as_bytes(), &Limits::default())
            .expect("valid")
            .expect("complete");
        run(handle(&head, shared))
    }

    #[test]
    fn routes_by_method_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("v/a/1")).expect("mkdir");
        std::fs::write(dir.path().join("v/a/1/seg1.m4s"), b"media").expect("write");
        let s = shared(dir.path());
        let cases = [
            ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
            ("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
            ("POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (
                "GET /v/a/1/seg1.m4s?token=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                200,
            ),
            ("GET /v/a/1/seg2.m4s HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("GET /v/a/../x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("DELETE /v/a/1/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            ("BREW /v/a/1/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            ("OPTIONS /v/a/1/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n", 204),
            ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 204),
            ("GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("GET /v HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ];
        for (raw, status) in cases {
            assert_eq!(request(&s, raw).status, status, "{raw:?}");
        }
        let r = request(&s, "HEAD /v/a/1/seg1.m4s HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.head_only);
        assert_eq!(&r.body[..], b"media");
        assert!(r.wire_body().is_empty());
    }
}
