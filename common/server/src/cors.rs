//! The CORS fields the shell adds to every response on the wire (ADR 0012).
//!
//! A service either puts the pair (`Access-Control-Allow-Origin: *` and its expose list) on
//! every response ([`CorsPolicy::Always`]), or only on answers to requests that carry `Origin`
//! ([`CorsPolicy::WithOrigin`]): browsers send `Origin` with every CORS request (fetch/XHR
//! across origins, `crossorigin` media), and an answer to anything else has no use for the
//! pair, which is a third of a small hit's head. Answers then differ by `Origin`, so every one
//! of them says `Vary: Origin`: a cache in front (or the browser's own) never hands a stored
//! answer without the pair to a CORS request.

use ringcast_proto::http::RequestHead;

/// Whether a service's responses carry the CORS pair always or only when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorsPolicy {
    /// The pair on every response, whatever the request; no `Vary`.
    Always,
    /// The pair only for requests with `Origin`; `Vary: Origin` on every response.
    WithOrigin,
}

impl CorsPolicy {
    /// The fields for the answer to `head` (no field is looked up under [`CorsPolicy::Always`]).
    pub fn for_head(self, head: &RequestHead) -> Cors {
        match self {
            CorsPolicy::Always => Cors::Always,
            CorsPolicy::WithOrigin => self.for_request(head.header("origin").is_some()),
        }
    }

    /// The fields for an answer to a request that was not parsed (a refusal): the pair, so a
    /// page that did send `Origin` can read why.
    pub fn for_unparsed(self) -> Cors {
        self.for_request(true)
    }

    /// The fields for one request (`has_origin`: it carries an `Origin` field).
    pub fn for_request(self, has_origin: bool) -> Cors {
        match (self, has_origin) {
            (CorsPolicy::Always, _) => Cors::Always,
            (CorsPolicy::WithOrigin, true) => Cors::Origin,
            (CorsPolicy::WithOrigin, false) => Cors::NoOrigin,
        }
    }
}

/// The CORS fields of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors {
    /// The pair ([`CorsPolicy::Always`]).
    Always,
    /// A request with `Origin`: the pair and `Vary: Origin`.
    Origin,
    /// A request without `Origin`: `Vary: Origin` only.
    NoOrigin,
}

impl Cors {
    /// How many kinds there are (one cached head per kind, [`Cors::index`]).
    pub(crate) const KINDS: usize = 3;

    pub(crate) fn index(self) -> usize {
        match self {
            Cors::Always => 0,
            Cors::Origin => 1,
            Cors::NoOrigin => 2,
        }
    }

    /// The fields, after the response's own (`expose`: the headers a cross-origin page may
    /// read); the first `n` of the array are used.
    pub(crate) fn fields(self, expose: &str) -> ([(&'static str, &str); 3], usize) {
        const ALLOW: (&str, &str) = ("Access-Control-Allow-Origin", "*");
        const VARY: (&str, &str) = ("Vary", "Origin");
        let exposed = ("Access-Control-Expose-Headers", expose);
        match self {
            Cors::Always => ([ALLOW, exposed, VARY], 2),
            Cors::Origin => ([ALLOW, exposed, VARY], 3),
            Cors::NoOrigin => ([VARY, ALLOW, exposed], 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: Cors) -> Vec<(&'static str, String)> {
        let (f, n) = c.fields("ETag");
        f[..n].iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn the_pair_only_for_origin_requests_under_with_origin() {
        let with = CorsPolicy::WithOrigin;
        assert_eq!(with.for_request(true), Cors::Origin);
        assert_eq!(with.for_request(false), Cors::NoOrigin);
        assert_eq!(CorsPolicy::Always.for_request(false), Cors::Always);
        assert_eq!(CorsPolicy::Always.for_request(true), Cors::Always);
        let pair = [
            ("Access-Control-Allow-Origin", "*".to_string()),
            ("Access-Control-Expose-Headers", "ETag".to_string()),
        ];
        assert_eq!(names(Cors::Always), pair);
        let mut origin = pair.to_vec();
        origin.push(("Vary", "Origin".to_string()));
        assert_eq!(names(Cors::Origin), origin);
        assert_eq!(names(Cors::NoOrigin), [("Vary", "Origin".to_string())]);
    }

    #[test]
    fn each_kind_has_its_own_index() {
        let mut seen = [false; Cors::KINDS];
        for c in [Cors::Always, Cors::Origin, Cors::NoOrigin] {
            assert!(!std::mem::replace(&mut seen[c.index()], true));
        }
    }
}
