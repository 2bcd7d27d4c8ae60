//! Validators and conditional requests (RFC 9110 §8.8, §13), sans-IO.
//!
//! - [`EntityTag`]: a strong ETag derived from the bytes of a representation (xxh3-64, computed
//!   once when an object enters a cache), so every edge of a tier derives the same tag for the
//!   same object without asking the origin. The gzip variant of a playlist is a different
//!   representation and gets its own tag (`-gz` suffix), as RFC 9110 §8.8.3 requires.
//! - [`evaluate`]: the precedence of §13.2.2 for GET/HEAD: `If-Match` → `If-Unmodified-Since`
//!   (412), then `If-None-Match`, which when present makes `If-Modified-Since` ignored (304).
//! - [`if_range_allows`]: whether a `Range` request may be honoured under `If-Range` (§13.1.5).

use crate::http::date;

/// A strong entity tag computed from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityTag {
    hash: u64,
    gzip: bool,
}

impl EntityTag {
    /// The tag of the representation whose bytes are `body`.
    pub fn of(body: &[u8]) -> Self {
        Self {
            hash: xxhash_rust::xxh3::xxh3_64(body),
            gzip: false,
        }
    }

    /// The tag of the gzip-encoded variant of the same content.
    pub fn gzip(self) -> Self {
        Self { gzip: true, ..self }
    }

    /// The header form, with quotes: `"0123456789abcdef"` or `"0123456789abcdef-gz"`.
    pub fn header(&self) -> String {
        // Hex digits by hand: built for every response, and `format!` showed in profiles.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(21);
        out.push('"');
        for shift in (0..16).rev() {
            out.push(char::from(HEX[(self.hash >> (shift * 4)) as usize & 0xf]));
        }
        if self.gzip {
            out.push_str("-gz");
        }
        out.push('"');
        out
    }
}

/// What the server knows about the selected representation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The ETag header value (quoted, strong).
    pub etag: &'a str,
    /// Last-Modified, seconds since the epoch.
    pub last_modified: Option<u64>,
}

/// The conditional headers of a request (raw values; `None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// The outcome of evaluating preconditions for a GET or HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Send the representation (possibly a range of it).
    Proceed,
    /// 304 Not Modified, no body.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluate the preconditions of a GET/HEAD in the order of RFC 9110 §13.2.2.
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>) -> Precondition {
    // Step 1/2: If-Match (strong comparison), else If-Unmodified-Since.
    if let Some(im) = c.if_match {
        if !list_matches(im, v.etag, false) {
            return Precondition::Failed;
        }
    } else if let (Some(ius), Some(lm)) =
        (c.if_unmodified_since.and_then(date::parse), v.last_modified)
    {
        if lm > ius {
            return Precondition::Failed;
        }
    }
    // Step 3: If-None-Match (weak comparison); when present, If-Modified-Since is ignored.
    if let Some(inm) = c.if_none_match {
        return if list_matches(inm, v.etag, true) {
            Precondition::NotModified
        } else {
            Precondition::Proceed
        };
    }
    // Step 4: If-Modified-Since; an invalid date is ignored.
    if let (Some(ims), Some(lm)) = (c.if_modified_since.and_then(date::parse), v.last_modified) {
        if lm <= ims {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// `If-Range` (§13.1.5): the Range may be applied only if the validator matches — an entity
/// tag by strong comparison, or a date equal to Last-Modified. Anything else (weak tag, garbage)
/// means "send the whole representation".
pub fn if_range_allows(if_range: Option<&str>, v: &Validators<'_>) -> bool {
    let Some(value) = if_range.map(str::trim) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return !value.starts_with("W/") && opaque(value) == opaque(v.etag) && is_tag(value);
    }
    match (date::parse(value), v.last_modified) {
        (Some(d), Some(lm)) => d == lm,
        _ => false,
    }
}

/// Whether a comma-separated entity-tag list (or `*`) matches `etag`. Weak comparison ignores
/// the `W/` prefix on either side; strong comparison fails on any weak tag.
fn list_matches(list: &str, etag: &str, weak: bool) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    let ours = opaque(etag);
    split_tags(list).any(|tag| {
        let is_weak = tag.starts_with("W/");
        (weak || !is_weak) && opaque(tag) == ours
    })
}

/// Entity tags of a list; tags are quoted strings that never contain `"` but may contain `,`.
fn split_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let start = if rest.starts_with("W/") { 2 } else { 0 };
        if !rest[start..].starts_with('"') {
            // Not a tag: skip to the next comma.
            let next = rest.find(',').unwrap_or(rest.len());
            rest = &rest[next..];
            continue;
        }
        let close = rest[start + 1..].find('"').map(|i| start + 1 + i);
        let Some(close) = close else {
            rest = "";
            return None;
        };
        let tag = &rest[..=close];
        rest = &rest[close + 1..];
        return Some(tag);
    })
}

fn is_tag(s: &str) -> bool {
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"')
}

/// The opaque part of a tag: without `W/`.
fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Precondition::{Failed, NotModified, Proceed};

    const TAG: &str = "\"abc\"";
    const LM: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT

    fn v() -> Validators<'static> {
        Validators {
            etag: TAG,
            last_modified: Some(LM),
        }
    }

    fn inm(h: &str) -> Precondition {
        evaluate(
            &Conditions {
                if_none_match: Some(h),
                ..Default::default()
            },
            &v(),
        )
    }

    #[test]
    fn etags_are_stable_and_distinct() {
        let a = EntityTag::of(b"hello");
        assert_eq!(a, EntityTag::of(b"hello"));
        assert_ne!(a, EntityTag::of(b"hellp"));
        let h = a.header();
        assert!(
            h.len() == 18 && h.starts_with('"') && h.ends_with('"'),
            "{h}"
        );
        assert!(a.gzip().header().ends_with("-gz\""));
        assert_ne!(a.header(), a.gzip().header());
        for hash in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let t = EntityTag { hash, gzip: false };
            assert_eq!(t.header(), format!("\"{hash:016x}\""));
            assert_eq!(t.gzip().header(), format!("\"{hash:016x}-gz\""));
        }
    }

    #[test]
    fn if_none_match_lists_weak_and_star() {
        assert_eq!(inm("\"abc\""), NotModified);
        assert_eq!(inm("W/\"abc\""), NotModified, "weak comparison");
        assert_eq!(inm("\"x\", \"abc\""), NotModified);
        assert_eq!(inm("\"x\",W/\"abc\""), NotModified);
        assert_eq!(inm("\"a,b\", \"abc\""), NotModified, "comma inside a tag");
        assert_eq!(inm("*"), NotModified);
        assert_eq!(inm("\"abcd\""), Proceed);
        assert_eq!(inm("abc"), Proceed, "unquoted is not a tag");
        assert_eq!(inm("\"x\", garbage, \"abc\""), NotModified);
        assert_eq!(inm("\"unterminated"), Proceed);
        assert_eq!(inm(""), Proceed);
    }

    #[test]
    fn if_none_match_beats_if_modified_since() {
        let later = date::format(LM + 10);
        let c = Conditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some(&later),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Proceed);
    }

    #[test]
    fn if_modified_since() {
        let ims = |s: &str| {
            evaluate(
                &Conditions {
                    if_modified_since: Some(s),
                    ..Default::default()
                },
                &v(),
            )
        };
        assert_eq!(ims(&date::format(LM)), NotModified);
        assert_eq!(ims(&date::format(LM + 1)), NotModified);
        assert_eq!(ims(&date::format(LM - 1)), Proceed);
        assert_eq!(ims("not a date"), Proceed);
        let no_lm = Validators {
            etag: TAG,
            last_modified: None,
        };
        let c = Conditions {
            if_modified_since: Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &no_lm), Proceed);
    }

    #[test]
    fn if_match_and_if_unmodified_since() {
        let im = |s: &str| {
            evaluate(
                &Conditions {
                    if_match: Some(s),
                    ..Default::default()
                },
                &v(),
            )
        };
        assert_eq!(im("\"abc\""), Proceed);
        assert_eq!(im("*"), Proceed);
        assert_eq!(im("W/\"abc\""), Failed, "strong comparison");
        assert_eq!(im("\"x\""), Failed);
        let before = date::format(LM - 1);
        let c = Conditions {
            if_unmodified_since: Some(&before),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Failed);
    }

    #[test]
    fn if_range() {
        assert!(if_range_allows(None, &v()));
        assert!(if_range_allows(Some("\"abc\""), &v()));
        assert!(!if_range_allows(Some("W/\"abc\""), &v()));
        assert!(!if_range_allows(Some("\"abd\""), &v()));
        assert!(if_range_allows(Some(&date::format(LM)), &v()));
        assert!(!if_range_allows(Some(&date::format(LM + 1)), &v()));
        assert!(!if_range_allows(Some("garbage"), &v()));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,30}", b in "\\PC{0,30}") {
            let c = Conditions { if_match: None, if_none_match: Some(&a), if_modified_since: Some(&b), if_unmodified_since: Some(&b) };
            let _ = evaluate(&c, &v());
            let _ = if_range_allows(Some(&a), &v());
        }
    }
}
