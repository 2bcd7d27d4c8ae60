//! The pure part of the videos API (`/v1/videos…` on the ingest): the listing cursor, the page
//! size, what a `PATCH` may change and the bounds it is held to, and the lifetime of a playback
//! URL. Sans-IO: the ingest reads Redis and the request body, this decides.
//!
//! **Listing order and cursor.** An owner's videos are the sorted set `rc:owner:{owner}:videos`
//! (score `created_ms`, member the id), listed newest first: by score descending, then by id
//! descending (Redis orders equal scores by member, so `ZREVRANGEBYSCORE` already returns that
//! order). A page ends at some item `(score, id)`; the cursor names exactly that item, and the
//! next page is every item strictly after it in that order ([`Cursor::is_after`]). Because it
//! names a position, not an offset, a video added or deleted between two pages shifts nothing:
//! no item is seen twice and none is skipped (a video added after the first page is newer than
//! it and appears on a fresh first page, not in the middle).
//!
//! The cursor is opaque to clients: `base64url("1:{score}:{id}")` (version `1`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::keys::is_valid_id;
use crate::visibility::Visibility;

/// Items per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 20;
/// Most items per page.
pub const MAX_LIMIT: usize = 100;
/// Longest title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
/// Largest JSON body the videos API reads (`PATCH`, `POST …/playback`): a description at its
/// limit written entirely as `\uXXXX` escapes (6 bytes each, 12 for a surrogate pair) fits.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A position in an owner's listing: the last item of the page before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub score: u64,
    pub id: String,
}

impl Cursor {
    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("1:{}:{}", self.score, self.id))
    }

    /// `None` for anything [`encode`](Self::encode) did not make (a client's edit, garbage).
    pub fn decode(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 128 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        let rest = text.strip_prefix("1:")?;
        let (score, id) = rest.split_once(':')?;
        if score.is_empty() || score.len() > 20 || !score.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !is_valid_id(id) {
            return None;
        }
        Some(Self {
            score: score.parse().ok()?,
            id: id.to_string(),
        })
    }

    /// Whether the item `(score, id)` comes after this position (newest first: a lower
    /// score, or the same score and a lower id).
    pub fn is_after(&self, score: u64, id: &str) -> bool {
        score < self.score || (score == self.score && id < self.id.as_str())
    }
}

/// Why a listing request was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}")]
    BadLimit,
    #[error("cursor is not one this API handed out")]
    BadCursor,
    #[error("owner must be 1-64 characters of [A-Za-z0-9_-]")]
    BadOwner,
    #[error("unknown query parameter {0:?} (known: limit, cursor, owner)")]
    UnknownParameter(String),
    #[error("query parameter {0:?} is given twice")]
    Repeated(String),
}

/// A parsed `GET /v1/videos` query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<Cursor>,
    pub owner: Option<String>,
}

impl ListQuery {
    /// Parse `limit`, `cursor` and `owner` (none needs percent-decoding: their valid values
    /// are plain ASCII); anything else is refused so a typo is not silently ignored.
    pub fn parse(query: Option<&str>) -> Result<Self, ListError> {
        let mut q = ListQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let repeated = || ListError::Repeated(name.chars().take(40).collect());
            match name {
                "limit" => {
                    if q.limit.is_some() {
                        return Err(repeated());
                    }
                    q.limit = Some(parse_limit(value)?);
                }
                "cursor" => {
                    if q.cursor.is_some() {
                        return Err(repeated());
                    }
                    q.cursor = Some(Cursor::decode(value).ok_or(ListError::BadCursor)?);
                }
                "owner" => {
                    if q.owner.is_some() {
                        return Err(repeated());
                    }
                    if !is_valid_id(value) {
                        return Err(ListError::BadOwner);
                    }
                    q.owner = Some(value.to_string());
                }
                other => {
                    return Err(ListError::UnknownParameter(
                        other.chars().take(40).collect(),
                    ))
                }
            }
        }
        Ok(q)
    }

    /// The page size in force.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

fn parse_limit(s: &str) -> Result<usize, ListError> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ListError::BadLimit);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ListError::BadLimit),
    }
}

/// Why a `PATCH` body was refused (400, the message says which rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the body must be a JSON object with any of title, description, visibility: {0}")]
    Malformed(String),
    #[error("the body names nothing to change (give title, description or visibility)")]
    Empty,
    #[error("title is {0} characters; at most {MAX_TITLE_CHARS} are allowed")]
    TitleTooLong(usize),
    #[error("title contains a control character (U+{0:04X}); titles are one line of text")]
    TitleControl(u32),
    #[error("description is {0} characters; at most {MAX_DESCRIPTION_CHARS} are allowed")]
    DescriptionTooLong(usize),
    #[error(
        "description contains a control character (U+{0:04X}); only newline (U+000A) is allowed"
    )]
    DescriptionControl(u32),
    #[error("visibility must be one of public, unlisted, private")]
    BadVisibility,
}

/// What a `PATCH /v1/videos/{id}` changes, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchJson {
    title: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
}

impl VideoPatch {
    /// Parse and check a JSON body: an object with at least one of `title` (≤
    /// [`MAX_TITLE_CHARS`], no control character), `description` (≤ [`MAX_DESCRIPTION_CHARS`],
    /// no control character but newline) and `visibility` (`public` | `unlisted` |
    /// `private`); no other member, no `null`. An empty string clears a title or description.
    pub fn parse(body: &[u8]) -> Result<Self, PatchError> {
        let raw: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| PatchError::Malformed(short(&e)))?;
        let Some(obj) = raw.as_object() else {
            return Err(PatchError::Malformed("not an object".into()));
        };
        if let Some((name, _)) = obj.iter().find(|(_, v)| v.is_null()) {
            return Err(PatchError::Malformed(format!(
                "{name} is null (use \"\" to clear a text field)"
            )));
        }
        let json: PatchJson =
            serde_json::from_value(raw).map_err(|e| PatchError::Malformed(short(&e)))?;
        let patch = VideoPatch {
            title: json.title.map(check_title).transpose()?,
            description: json.description.map(check_description).transpose()?,
            visibility: json
                .visibility
                .map(|v| Visibility::parse(&v).ok_or(PatchError::BadVisibility))
                .transpose()?,
        };
        if patch == VideoPatch::default() {
            return Err(PatchError::Empty);
        }
        Ok(patch)
    }

    /// The video hash fields to write (`title`, `description`, `visibility`).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(t) = &self.title {
            out.push(("title", t.clone()));
        }
        if let Some(d) = &self.description {
            out.push(("description", d.clone()));
        }
        if let Some(v) = self.visibility {
            out.push((crate::visibility::FIELD, v.as_str().to_string()));
        }
        out
    }
}

fn check_title(t: String) -> Result<String, PatchError> {
    let n = t.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(PatchError::TitleTooLong(n));
    }
    if let Some(c) = t.chars().find(|c| is_forbidden(*c)) {
        return Err(PatchError::TitleControl(c as u32));
    }
    Ok(t)
}

/// A title from elsewhere (an upload's `title` metadata) made to fit the `PATCH` rules: the
/// forbidden characters dropped, at most [`MAX_TITLE_CHARS`] characters kept.
pub fn sanitize_title(t: &str) -> String {
    t.chars()
        .filter(|c| !is_forbidden(*c))
        .take(MAX_TITLE_CHARS)
        .collect()
}

fn check_description(d: String) -> Result<String, PatchError> {
    let n = d.chars().count();
    if n > MAX_DESCRIPTION_CHARS {
        return Err(PatchError::DescriptionTooLong(n));
    }
    if let Some(c) = d.chars().find(|c| *c != '\n' && is_forbidden(*c)) {
        return Err(PatchError::DescriptionControl(c as u32));
    }
    Ok(d)
}

/// C0 and C1 controls and DEL (`char::is_control`), plus the bidirectional overrides and
/// isolates that make displayed text read differently from what is stored (the "Trojan
/// Source" characters).
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn short(e: &serde_json::Error) -> String {
    e.to_string().chars().take(160).collect()
}

/// Why a playback request's `ttl_secs` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybackError {
    #[error("the body must be a JSON object with an optional ttl_secs: {0}")]
    Malformed(String),
    #[error("ttl_secs must be from 1 to {0} (the configured playback.ttl_secs)")]
    BadTtl(u64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybackJson {
    ttl_secs: Option<u64>,
}

/// The lifetime of a playback URL: the body's `ttl_secs` (an empty body: `max_secs`), never
/// more than `max_secs`.
pub fn playback_ttl(body: &[u8], max_secs: u64) -> Result<u64, PlaybackError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(max_secs);
    }
    let json: PlaybackJson =
        serde_json::from_slice(body).map_err(|e| PlaybackError::Malformed(short(&e)))?;
    match json.ttl_secs {
        None => Ok(max_secs),
        Some(t) if (1..=max_secs).contains(&t) => Ok(t),
        Some(_) => Err(PlaybackError::BadTtl(max_secs)),
    }
}

/// The path prefix a playback URL of `video` signs: `/v/{id}/`, ending in `/` so it never
/// covers another video whose id starts with this one.
pub fn playback_prefix(video: &str) -> String {
    format!("/v/{video}/")
}

/// `true` for a `Content-Type` that is JSON (`application/json`, any parameters).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursors_round_trip_and_refuse_edits() {
        let c = Cursor {
            score: 1_700_000_000_123,
            id: "Ab-9_x".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert!(!c.encode().contains(['+', '/', '=']), "URL-safe");
        for bad in ["", "x", "!!!", &URL_SAFE_NO_PAD.encode("2:1:a")] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        for raw in [
            "1::a",
            "1:x:a",
            "1:1:",
            "1:1:../x",
            "1:-1:a",
            "1:99999999999999999999:a",
        ] {
            assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(raw)), None, "{raw}");
        }
    }

    #[test]
    fn order_is_newest_first_then_id_descending() {
        let c = Cursor {
            score: 10,
            id: "m".into(),
        };
        assert!(c.is_after(9, "z"));
        assert!(c.is_after(10, "l"));
        assert!(
            !c.is_after(10, "m"),
            "the cursor's own item is on the page before"
        );
        assert!(!c.is_after(10, "n"));
        assert!(!c.is_after(11, "a"));
    }

    #[test]
    fn list_queries() {
        assert_eq!(ListQuery::parse(None).map(|q| q.limit()), Ok(DEFAULT_LIMIT));
        let q = ListQuery::parse(Some("limit=5&owner=bob")).expect("ok");
        assert_eq!((q.limit(), q.owner.as_deref()), (5, Some("bob")));
        for (query, err) in [
            ("limit=0", ListError::BadLimit),
            ("limit=101", ListError::BadLimit),
            ("limit=-1", ListError::BadLimit),
            ("limit=", ListError::BadLimit),
            ("limit=1e2", ListError::BadLimit),
            ("cursor=zzz", ListError::BadCursor),
            ("owner=a%2Fb", ListError::BadOwner),
            ("page=2", ListError::UnknownParameter("page".into())),
            ("limit=1&limit=2", ListError::Repeated("limit".into())),
        ] {
            assert_eq!(ListQuery::parse(Some(query)), Err(err), "{query}");
        }
        assert_eq!(
            ListQuery::parse(Some("limit=100")).map(|q| q.limit()),
            Ok(100)
        );
    }

    #[test]
    fn patches_are_bounded() {
        let p = VideoPatch::parse(br#"{"title":"Hi","visibility":"private"}"#).expect("ok");
        assert_eq!(p.title.as_deref(), Some("Hi"));
        assert_eq!(p.visibility, Some(Visibility::Private));
        assert_eq!(
            p.fields(),
            vec![("title", "Hi".into()), ("visibility", "private".into())]
        );
        let ok_desc = format!("line one\nline two {}", "é".repeat(4980));
        let body = serde_json::json!({ "description": ok_desc }).to_string();
        assert!(VideoPatch::parse(body.as_bytes()).is_ok());
        let at_limit = serde_json::json!({ "title": "ü".repeat(200) }).to_string();
        assert!(
            VideoPatch::parse(at_limit.as_bytes()).is_ok(),
            "chars, not bytes"
        );

        let cases: Vec<(String, PatchError)> = vec![
            ("{}".into(), PatchError::Empty),
            (
                serde_json::json!({ "title": "x".repeat(201) }).to_string(),
                PatchError::TitleTooLong(201),
            ),
            (r#"{"title":"a\nb"}"#.into(), PatchError::TitleControl(0x0A)),
            (r#"{"title":"a\u0000"}"#.into(), PatchError::TitleControl(0)),
            (
                r#"{"title":"a\u202Eb"}"#.into(),
                PatchError::TitleControl(0x202E),
            ),
            (
                serde_json::json!({ "description": "d".repeat(5001) }).to_string(),
                PatchError::DescriptionTooLong(5001),
            ),
            (
                r#"{"description":"a\r\nb"}"#.into(),
                PatchError::DescriptionControl(0x0D),
            ),
            (
                r#"{"description":"tab\there"}"#.into(),
                PatchError::DescriptionControl(0x09),
            ),
            (
                r#"{"description":"\u009b"}"#.into(),
                PatchError::DescriptionControl(0x9B),
            ),
            (
                r#"{"visibility":"secret"}"#.into(),
                PatchError::BadVisibility,
            ),
            (
                r#"{"visibility":"Public"}"#.into(),
                PatchError::BadVisibility,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(VideoPatch::parse(body.as_bytes()), Err(want), "{body}");
        }
        for body in [
            "",
            "[]",
            "\"title\"",
            r#"{"title":1}"#,
            r#"{"title":null}"#,
            r#"{"owner":"me"}"#,
            r#"{"title":"a","title2":"b"}"#,
            "{\"title\":\"\u{ff}",
        ] {
            assert!(
                matches!(
                    VideoPatch::parse(body.as_bytes()),
                    Err(PatchError::Malformed(_))
                ),
                "{body}"
            );
        }
        assert!(matches!(
            VideoPatch::parse(&[0xff, 0xfe]),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn titles_from_uploads_are_made_to_fit() {
        assert_eq!(sanitize_title("a\nb\u{202E}c"), "abc");
        let long = "é".repeat(300);
        let t = sanitize_title(&long);
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        assert!(check_title(t).is_ok());
    }

    #[test]
    fn playback_ttls() {
        assert_eq!(playback_ttl(b"", 3600), Ok(3600));
        assert_eq!(playback_ttl(b" \n", 3600), Ok(3600));
        assert_eq!(playback_ttl(b"{}", 3600), Ok(3600));
        assert_eq!(playback_ttl(br#"{"ttl_secs":60}"#, 3600), Ok(60));
        assert_eq!(playback_ttl(br#"{"ttl_secs":3600}"#, 3600), Ok(3600));
        assert_eq!(
            playback_ttl(br#"{"ttl_secs":3601}"#, 3600),
            Err(PlaybackError::BadTtl(3600))
        );
        assert_eq!(
            playback_ttl(br#"{"ttl_secs":0}"#, 3600),
            Err(PlaybackError::BadTtl(3600))
        );
        for bad in [&br#"{"ttl_secs":-1}"#[..], br#"{"ttl":1}"#, b"[]", b"x"] {
            assert!(matches!(
                playback_ttl(bad, 3600),
                Err(PlaybackError::Malformed(_))
            ));
        }
        assert_eq!(playback_prefix("abc"), "/v/abc/");
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/JSON"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/jsonx"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}", b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Cursor::decode(&s);
            let _ = ListQuery::parse(Some(&s));
            let _ = VideoPatch::parse(&b);
            let _ = playback_ttl(&b, 10);
        }

        #[test]
        fn any_valid_cursor_round_trips(score in any::<u64>(), id in "[A-Za-z0-9_-]{1,64}") {
            let c = Cursor { score, id };
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
    }
}
