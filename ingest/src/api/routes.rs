//! The ingest's route table: every path it serves, the methods each answers (`Allow` of a
//! 405) and whether it needs an API key. The router matches requests against it
//! ([`find`]), answers 404/405 from it and dispatches on [`RouteId`]; the OpenAPI check
//! (`ingest/tests/openapi.rs`) compares `docs/openapi.yaml` with it, so the documentation
//! cannot drift from what is served.
//!
//! Patterns are written as in OpenAPI: literal segments and `{name}` segments that match one
//! non-empty path segment. Adding a route is one line here and one arm in
//! `crate::router::platform` (or `crate::router::dispatch` for one without a key).
//! `OPTIONS` (CORS preflight, tus discovery under `/files/`) is answered on every route.

/// What a request is for, once its path matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `/files/`: tus creation.
    Files,
    /// `/files/{id}`: tus core (offset, append).
    Upload,
    /// `/v1/videos`: the caller's listing.
    Videos,
    /// `/v1/videos/{id}`: one video (read, update, delete).
    Video,
    /// `/v1/videos/{id}/playback`: a signed playback URL.
    Playback,
    /// `/v1/videos/{id}/versions`: the video's versions.
    Versions,
    /// `/v1/videos/{id}/rollback`: make an older version current.
    Rollback,
    /// `/v1/videos/{id}/events`: the progress stream (server-sent events, written by its
    /// handler).
    Events,
    /// `/v1/live`: the live streams running now.
    LiveStreams,
    /// `/live/{key}`: a live push.
    LivePush,
    /// `/live/{key}/pull`: the transcoder's pull of a live push.
    LivePull,
    Healthz,
    Readyz,
    Metrics,
}

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub pattern: &'static str,
    pub id: RouteId,
    /// The methods served, as the `Allow` header of a 405 lists them.
    pub allow: &'static str,
    /// Needs `Authorization: Bearer <API key>` (unless `auth.mode = "open"`).
    pub api_key: bool,
}

impl Route {
    /// Whether `method` (its name, e.g. `GET`) is served here.
    pub fn allows(&self, method: &str) -> bool {
        self.methods().any(|m| m == method)
    }

    /// The methods served, one by one.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> {
        self.allow.split(", ")
    }
}

const fn route(pattern: &'static str, id: RouteId, allow: &'static str, api_key: bool) -> Route {
    Route {
        pattern,
        id,
        allow,
        api_key,
    }
}

/// Every route the ingest serves.
pub const ROUTES: &[Route] = &[
    route("/files/", RouteId::Files, "POST, OPTIONS", true),
    route(
        "/files/{id}",
        RouteId::Upload,
        "HEAD, PATCH, DELETE, OPTIONS",
        true,
    ),
    route("/v1/videos", RouteId::Videos, "GET, HEAD, OPTIONS", true),
    route(
        "/v1/videos/{id}",
        RouteId::Video,
        "GET, HEAD, PATCH, DELETE, OPTIONS",
        true,
    ),
    route(
        "/v1/videos/{id}/playback",
        RouteId::Playback,
        "POST, OPTIONS",
        true,
    ),
    route(
        "/v1/videos/{id}/versions",
        RouteId::Versions,
        "GET, HEAD, OPTIONS",
        true,
    ),
    route(
        "/v1/videos/{id}/rollback",
        RouteId::Rollback,
        "POST, OPTIONS",
        true,
    ),
    route(
        "/v1/videos/{id}/events",
        RouteId::Events,
        "GET, OPTIONS",
        true,
    ),
    route("/v1/live", RouteId::LiveStreams, "GET, HEAD, OPTIONS", true),
    route(
        "/live/{key}",
        RouteId::LivePush,
        "PUT, POST, OPTIONS",
        false,
    ),
    route("/live/{key}/pull", RouteId::LivePull, "GET, OPTIONS", false),
    route("/healthz", RouteId::Healthz, "GET, HEAD, OPTIONS", false),
    route("/readyz", RouteId::Readyz, "GET, HEAD, OPTIONS", false),
    route("/metrics", RouteId::Metrics, "GET, HEAD, OPTIONS", false),
];

/// The `{…}` segments of a matched path, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params<'a>(Vec<&'a str>);

impl<'a> Params<'a> {
    /// The first parameter (the id or key of every route that has one).
    pub fn first(&self) -> &'a str {
        self.0.first().copied().unwrap_or("")
    }
}

/// The route `path` names and its parameters; `None`: 404. `/files` is `/files/` (tus
/// clients are given either).
pub fn find(path: &str) -> Option<(&'static Route, Params<'_>)> {
    let path = if path == "/files" { "/files/" } else { path };
    ROUTES
        .iter()
        .find_map(|r| matches(r.pattern, path).map(|p| (r, p)))
}

fn matches<'a>(pattern: &str, path: &'a str) -> Option<Params<'a>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(Params(params)),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return None;
                }
                params.push(g);
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &str) -> Option<(RouteId, String)> {
        find(path).map(|(r, p)| (r.id, p.first().to_string()))
    }

    #[test]
    fn paths_find_their_routes() {
        assert_eq!(id("/files"), Some((RouteId::Files, String::new())));
        assert_eq!(id("/files/"), Some((RouteId::Files, String::new())));
        assert_eq!(id("/files/abc"), Some((RouteId::Upload, "abc".into())));
        assert_eq!(id("/v1/videos"), Some((RouteId::Videos, String::new())));
        assert_eq!(id("/v1/videos/x"), Some((RouteId::Video, "x".into())));
        assert_eq!(
            id("/v1/videos/x/playback"),
            Some((RouteId::Playback, "x".into()))
        );
        assert_eq!(
            id("/v1/videos/x/versions"),
            Some((RouteId::Versions, "x".into()))
        );
        assert_eq!(
            id("/v1/videos/x/rollback"),
            Some((RouteId::Rollback, "x".into()))
        );
        assert_eq!(
            id("/v1/videos/x/events"),
            Some((RouteId::Events, "x".into()))
        );
        assert_eq!(id("/v1/live"), Some((RouteId::LiveStreams, String::new())));
        assert_eq!(id("/live/k"), Some((RouteId::LivePush, "k".into())));
        assert_eq!(id("/live/k/pull"), Some((RouteId::LivePull, "k".into())));
        assert_eq!(id("/metrics"), Some((RouteId::Metrics, String::new())));
        for none in [
            "/",
            "/files/a/b",
            "/v1/videos/",
            "/v1/videos//playback",
            "/v1/videos/x/other",
            "/v1/video",
            "/live/",
            "/healthz/",
            "/metricsx",
        ] {
            assert_eq!(id(none), None, "{none}");
        }
    }

    #[test]
    fn every_route_answers_options_and_has_one_pattern() {
        for r in ROUTES {
            assert!(r.allows("OPTIONS"), "{}", r.pattern);
            assert!(!r.allows("TRACE"));
            assert_eq!(
                ROUTES.iter().filter(|o| o.pattern == r.pattern).count(),
                1,
                "{}",
                r.pattern
            );
            assert_eq!(find(r.pattern).map(|(f, _)| f.id), Some(r.id));
        }
    }
}
