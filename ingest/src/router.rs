//! Request routing: path + method → handler, CORS preflight, the operational endpoints
//! (`/healthz`, `/readyz`, `/metrics`), and the single place where handler errors become
//! responses (through [`IngestError::to_response`]).
//!
//! | path | methods |
//! |---|---|
//! | `/files/` | OPTIONS, POST (tus creation) |
//! | `/files/{id}` | OPTIONS, HEAD, PATCH (tus core) |
//! | `/v1/videos/{id}` | GET, HEAD |
//! | `/v1/videos/{id}/versions` | GET, HEAD ([`crate::api::versions`]) |
//! | `/v1/videos/{id}/rollback` | POST |
//! | `/v1/videos/{id}/events` | GET (server-sent events, [`crate::api::events`]) |
//! | `/live/{key}` | PUT, POST (live push, [`crate::live::push`]) |
//! | `/live/{key}/pull` | GET (live pull) |
//! | `/healthz`, `/readyz`, `/metrics` | GET, HEAD |
//!
//! Every `/files/` and `/v1/` request except a CORS preflight is authenticated first
//! ([`crate::auth::authenticate`]: 401 without a valid API key unless `auth.mode = "open"`);
//! the handlers get the [`Caller`] and check ownership and role themselves.

use std::time::Duration;

use ringcast_proto::auth::Caller;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::tus::TUS_VERSION;

use crate::api::{self, videos};
use crate::app::App;
use crate::auth::authenticate;
use crate::error::IngestError;
use crate::tus;
use ringcast_server::Response;
use ringcast_server::{Conn, MetricsAccess};

/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// Headers a browser (tus-js-client) may read from cross-origin responses.
pub const CORS_EXPOSE_HEADERS: &str = "Location, Upload-Offset, Upload-Length, Tus-Resumable, \
     Tus-Version, Tus-Extension, Tus-Max-Size, Ringcast-Video-Id, Ringcast-Job-Id, Ringcast-Duplicate";

/// Methods a preflight may ask for.
const CORS_ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, OPTIONS";
/// Request headers browsers may send cross-origin (the tus set plus the usual ones).
const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, Tus-Resumable, Upload-Length, \
     Upload-Offset, Upload-Metadata, Upload-Defer-Length, Upload-Concat, X-Requested-With, \
     X-HTTP-Method-Override";

/// Answer one request. `None` when the client vanished mid-request (nothing to send).
pub async fn route(app: &App, head: &RequestHead, conn: &mut Conn) -> Option<Response> {
    let method = effective_method(head);
    let path = head.path();
    let is_tus = path == "/files" || path.starts_with("/files/");
    let result = match path.strip_prefix("/live/") {
        // The progress stream writes its streamed response itself (`Ok(None)`).
        _ if method != Method::Options && api::events::path_id(path).is_some() => {
            let id = api::events::path_id(path).unwrap_or_default();
            match api::events::handle(app, head, &method, id, conn).await {
                Ok(Some(resp)) => Ok(resp),
                Ok(None) => return None,
                Err(e) => Err(e),
            }
        }
        // Live handlers may write a streamed response themselves (`Ok(None)`).
        Some(rest) if method != Method::Options => {
            match crate::live::push::handle(app, head, &method, rest, conn).await {
                Ok(Some(resp)) => Ok(resp),
                Ok(None) => return None,
                Err(e) => Err(e),
            }
        }
        _ => dispatch(app, head, &method, path, conn).await,
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(IngestError::ClientGone(e)) => {
            tracing::debug!(error = %e, "client gone mid-request");
            return None;
        }
        Err(e) => {
            if e.status() >= 500 {
                tracing::warn!(error = %e, status = e.status(), "request failed");
            } else {
                tracing::debug!(error = %e, status = e.status(), "request refused");
            }
            e.to_response()
        }
    };
    // tus: every response except to OPTIONS carries Tus-Resumable (discovery responses send it
    // too; clients ignore it there).
    if is_tus && resp.get_header("Tus-Resumable").is_none() {
        resp = resp.header("Tus-Resumable", TUS_VERSION);
    }
    Some(resp)
}

/// tus-js-client can tunnel PATCH through POST (`overridePatchMethod`) for proxies that drop
/// PATCH; honour `X-HTTP-Method-Override` on POST only.
fn effective_method(head: &RequestHead) -> Method {
    if head.method == Method::Post {
        match head.header("x-http-method-override") {
            Some(m) if m.eq_ignore_ascii_case("PATCH") => return Method::Patch,
            Some(m) if m.eq_ignore_ascii_case("HEAD") => return Method::Head,
            _ => {}
        }
    }
    head.method.clone()
}

async fn dispatch(
    app: &App,
    head: &RequestHead,
    method: &Method,
    path: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    if let Method::Other(m) = method {
        return Err(IngestError::NotImplemented(m.clone()));
    }
    let known = path == "/files"
        || path.starts_with("/files/")
        || path.starts_with("/v1/videos/")
        || path.starts_with("/live/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics");
    if !known {
        return Err(IngestError::NotFound(format!("resource {path}")));
    }
    if *method == Method::Options {
        return Ok(options(app, path));
    }
    match path {
        "/healthz" => {
            read_only(method)?;
            Ok(Response::text(200, "text/plain; charset=utf-8", "ok\n")
                .header("Cache-Control", "no-store"))
        }
        "/readyz" => {
            read_only(method)?;
            Ok(readyz(app).await)
        }
        "/metrics" => {
            read_only(method)?;
            MetricsAccess::new(&app.config.metrics_key)
                .check(head.header("authorization"), conn.peer_ip())?;
            Ok(Response::text(
                200,
                ringcast_proto::prometheus::CONTENT_TYPE,
                app.metrics.render(),
            )
            .header("Cache-Control", "no-store"))
        }
        _ => platform(app, head, method, path, conn).await,
    }
}

/// `/files/…` and `/v1/…`: authenticated first, then handled for that caller.
async fn platform(
    app: &App,
    head: &RequestHead,
    method: &Method,
    path: &str,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    let caller: Caller = authenticate(app, head).await?;
    if path == "/files" || path == "/files/" {
        tus::handler::collection(app, &caller, head, method).await
    } else if let Some(id) = path.strip_prefix("/files/") {
        tus::handler::upload(app, &caller, head, method, id, conn).await
    } else if let Some(id) = path.strip_prefix("/v1/videos/") {
        if let Some(r) = api::versions::route(app, &caller, method, id, conn).await {
            return r;
        }
        videos::get(app, &caller, method, id).await
    } else {
        Err(IngestError::NotFound(format!("resource {path}")))
    }
}

fn read_only(method: &Method) -> Result<(), IngestError> {
    match method {
        Method::Get | Method::Head => Ok(()),
        other => Err(IngestError::MethodNotAllowed {
            method: other.as_str().to_string(),
            allow: "GET, HEAD, OPTIONS",
        }),
    }
}

/// OPTIONS: CORS preflight answer for every known path, plus tus discovery under `/files`.
fn options(app: &App, path: &str) -> Response {
    let mut resp = Response::new(204)
        .header("Access-Control-Allow-Methods", CORS_ALLOW_METHODS)
        .header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
        .header("Access-Control-Max-Age", "86400");
    if path == "/files" || path.starts_with("/files/") {
        resp = tus::handler::discovery_headers(app, resp);
    }
    resp
}

/// Ready when Redis answers PING and the object store answers a HEAD.
async fn readyz(app: &App) -> Response {
    let redis = match monoio::time::timeout(READY_TIMEOUT, app.queue.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let store = match monoio::time::timeout(READY_TIMEOUT, app.store.head("readyz/probe")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let ready = redis.is_ok() && store.is_ok();
    if !ready {
        tracing::warn!(redis = %show(&redis), store = %show(&store), "not ready");
    }
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "redis": show(&redis),
        "store": show(&store),
        "store_backend": app.store.backend_name(),
    });
    Response::json(if ready { 200 } else { 503 }, &body).header("Cache-Control", "no-store")
}
