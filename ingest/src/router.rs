//! Request routing: path + method → handler through the route table
//! ([`crate::api::routes::ROUTES`]: 404 for a path it does not have, 405 with its `Allow` for a
//! method it does not list), CORS preflight, the operational endpoints (`/healthz`,
//! `/readyz`, `/metrics`), and the single place where handler errors become responses
//! (through [`IngestError::to_response`]). `/readyz` is [`crate::readiness`].
//!
//! Every route marked `api_key` in the table is authenticated first
//! ([`crate::auth::authenticate`]: 401 without a valid API key unless `auth.mode = "open"`),
//! except a CORS preflight; the handlers get the [`Caller`] and check ownership and role
//! themselves.

use ringcast_proto::auth::Caller;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::tus::TUS_VERSION;

use crate::api::routes::{self, Params, Route, RouteId};
use crate::api::{self, delete, list, live_list, playback, update, versions, videos};
use crate::app::App;
use crate::auth::authenticate;
use crate::error::IngestError;
use crate::tus;
use ringcast_server::Response;
use ringcast_server::{Conn, MetricsAccess};

/// Headers a browser (tus-js-client) may read from cross-origin responses.
pub const CORS_EXPOSE_HEADERS: &str = "Location, Upload-Offset, Upload-Length, Tus-Resumable, \
     Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Expires, \
     Upload-Defer-Length, Upload-Concat, Upload-Metadata, Ringcast-Video-Id, Ringcast-Job-Id, \
     Ringcast-Duplicate";

/// Methods a preflight may ask for.
const CORS_ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers browsers may send cross-origin (the tus set plus the usual ones).
const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, Tus-Resumable, Upload-Length, \
     Upload-Offset, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, \
     X-Requested-With, X-HTTP-Method-Override";

/// Whether `path` is the tus collection or one of its uploads.
fn is_tus_path(path: &str) -> bool {
    path == "/files" || path.starts_with("/files/")
}

/// Whether `head` streams a body through the handler, which HTTP/2 here cannot carry: tus
/// requests with a body (PATCH, POST with creation-with-upload), the progress stream and the
/// live push and pull. The rest of the API (small JSON both ways) is fine on HTTP/2.
pub fn needs_http1(head: &RequestHead) -> bool {
    let path = head.path();
    let is_tus = is_tus_path(path);
    match routes::find(path) {
        Some((route, _))
            if matches!(
                route.id,
                RouteId::Events | RouteId::LivePush | RouteId::LivePull
            ) =>
        {
            true
        }
        _ => is_tus && matches!(effective_method(head), Method::Patch | Method::Post),
    }
}

/// Answer one request. `None` when the client vanished mid-request (nothing to send).
pub async fn route(app: &App, head: &RequestHead, conn: &mut Conn) -> Option<Response> {
    let method = effective_method(head);
    let path = head.path();
    let is_tus = is_tus_path(path);
    let result = match routes::find(path) {
        None => Err(IngestError::NotFound(format!("resource {path}"))),
        Some((route, params)) => match allowed(route, &method) {
            Err(e) => Err(e),
            Ok(()) if method == Method::Options => Ok(options(app, path)),
            // The progress stream writes its streamed response itself (`Ok(None)`); it
            // authenticates the caller itself too.
            Ok(()) if route.id == RouteId::Events => {
                match api::events::handle(app, head, &method, params.first(), conn).await {
                    Ok(Some(resp)) => Ok(resp),
                    Ok(None) => return None,
                    Err(e) => Err(e),
                }
            }
            // Live handlers may write a streamed response themselves (`Ok(None)`).
            Ok(()) if matches!(route.id, RouteId::LivePush | RouteId::LivePull) => {
                let rest = path.strip_prefix("/live/").unwrap_or(path);
                match crate::live::push::handle(app, head, &method, rest, conn).await {
                    Ok(Some(resp)) => Ok(resp),
                    Ok(None) => return None,
                    Err(e) => Err(e),
                }
            }
            Ok(()) => dispatch(app, head, &method, route, &params, conn).await,
        },
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

/// 501 for a method nobody implements, 405 (with the route's `Allow`) for one this route does
/// not serve.
fn allowed(route: &Route, method: &Method) -> Result<(), IngestError> {
    if let Method::Other(m) = method {
        return Err(IngestError::NotImplemented(m.clone()));
    }
    if route.allows(method.as_str()) {
        Ok(())
    } else {
        Err(IngestError::MethodNotAllowed {
            method: method.as_str().to_string(),
            allow: route.allow,
        })
    }
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
    route: &Route,
    params: &Params<'_>,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    match route.id {
        RouteId::Healthz => Ok(Response::text(
            200,
            "text/plain; charset=utf-8",
            ringcast_proto::health::ALIVE_BODY,
        )
        .header("Cache-Control", "no-store")),
        RouteId::Readyz => Ok(crate::readiness::respond(app, conn.readiness_draining()).await),
        RouteId::Metrics => {
            MetricsAccess::new(&app.config.metrics_key)
                .check(head.header("authorization"), conn.peer_ip())?;
            Ok(Response::text(
                200,
                ringcast_proto::prometheus::CONTENT_TYPE,
                app.metrics.render(),
            )
            .header("Cache-Control", "no-store"))
        }
        _ => platform(app, head, method, route.id, params, conn).await,
    }
}

/// The routes that need an API key: authenticated first, then handled for that caller.
async fn platform(
    app: &App,
    head: &RequestHead,
    method: &Method,
    route: RouteId,
    params: &Params<'_>,
    conn: &mut Conn,
) -> Result<Response, IngestError> {
    let caller: Caller = authenticate(app, head).await?;
    let id = params.first();
    match route {
        RouteId::Files => tus::handler::collection(app, &caller, head, method, conn).await,
        RouteId::Upload => tus::handler::upload(app, &caller, head, method, id, conn).await,
        RouteId::Videos => list::list(app, &caller, head).await,
        RouteId::Video => match method {
            Method::Patch => update::patch(app, &caller, head, id, conn).await,
            Method::Delete => delete::delete(app, &caller, id).await,
            _ => videos::get(app, &caller, method, id).await,
        },
        RouteId::Playback => playback::create(app, &caller, head, id, conn).await,
        RouteId::Versions => versions::list(app, &caller, id).await,
        RouteId::Rollback => versions::rollback(app, &caller, id, conn).await,
        RouteId::LiveStreams => live_list::list(app, &caller, method).await,
        RouteId::Events
        | RouteId::LivePush
        | RouteId::LivePull
        | RouteId::Healthz
        | RouteId::Readyz
        | RouteId::Metrics => Err(IngestError::NotFound(format!("resource {}", head.path()))),
    }
}

/// OPTIONS: CORS preflight answer for every known path, plus tus discovery under `/files`.
fn options(app: &App, path: &str) -> Response {
    let mut resp = Response::new(204)
        .header("Access-Control-Allow-Methods", CORS_ALLOW_METHODS)
        .header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
        .header("Access-Control-Max-Age", "86400");
    if is_tus_path(path) {
        resp = tus::handler::discovery_headers(app, resp);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: Method, target: &str) -> RequestHead {
        RequestHead {
            method,
            target: target.into(),
            version_minor: 1,
            headers: Vec::new(),
            keep_alive: true,
            content_length: Some(0),
            chunked: false,
        }
    }

    #[test]
    fn streamed_bodies_need_http1_and_the_json_api_does_not() {
        for (method, target) in [
            (Method::Patch, "/files/a-x"),
            (Method::Post, "/files/"),
            (Method::Post, "/files"),
            (Method::Put, "/live/cam1-key"),
            (Method::Get, "/live/cam1-key/pull?token=t"),
            (Method::Get, "/v1/videos/v1/events"),
        ] {
            assert!(
                needs_http1(&head(method.clone(), target)),
                "{method:?} {target}"
            );
        }
        for (method, target) in [
            (Method::Head, "/files/a-x"),
            (Method::Delete, "/files/a-x"),
            (Method::Options, "/files/"),
            (Method::Get, "/v1/videos"),
            (Method::Get, "/v1/videos/v1"),
            (Method::Get, "/v1/live"),
            (Method::Get, "/healthz"),
        ] {
            assert!(
                !needs_http1(&head(method.clone(), target)),
                "{method:?} {target}"
            );
        }
    }
}
