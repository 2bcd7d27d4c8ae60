//! Common Media Client Data (CTA-5004): the one key the edge acts on, `nor` ("next object
//! request"), a player's hint of the object it will ask for next, so the edge can warm it.
//!
//! CMCD travels either as headers (`CMCD-Request: bl=21300,nor="seg5.m4s"`) or as one query
//! parameter holding the same list URL-encoded (`?CMCD=bl%3D21300%2Cnor%3D%22seg5.m4s%22`).
//! The list is `key[=value]` pairs separated by commas; string values are quoted (with `\"` and
//! `\\` escapes); `nor` is a URL-encoded path relative to the current request.
//!
//! Everything here is bounded: lists over [`MAX_LEN`] bytes are ignored, and a resolved `nor`
//! must stay inside the current request's video (`/v/{id}/…`), so a hint cannot make the edge
//! fetch arbitrary objects.

use crate::signed_url::percent_decode;

/// Longest CMCD list looked at, in bytes (players send well under 1 KiB).
pub const MAX_LEN: usize = 4096;

/// The `nor` value of a request's CMCD data (header first, then the `CMCD` query parameter),
/// unquoted and URL-decoded; `None` when absent or malformed.
pub fn next_object(request_header: Option<&str>, query: Option<&str>) -> Option<String> {
    if let Some(list) = request_header {
        if let Some(nor) = nor_in_list(list) {
            return Some(nor);
        }
    }
    let raw = query?.split('&').find_map(|p| p.strip_prefix("CMCD="))?;
    if raw.len() > 3 * MAX_LEN {
        return None;
    }
    // `+` is a space in a query; CMCD lists carry none outside strings, where it is kept.
    nor_in_list(&percent_decode(raw)?)
}

/// `nor` in one CMCD list.
fn nor_in_list(list: &str) -> Option<String> {
    if list.len() > MAX_LEN {
        return None;
    }
    let mut rest = list;
    loop {
        let rest_trimmed = rest.trim_start_matches([' ', '\t']);
        let (key, after_key) = match rest_trimmed.find(['=', ',']) {
            Some(i) => (&rest_trimmed[..i], &rest_trimmed[i..]),
            None => (rest_trimmed, ""),
        };
        let key = key.trim();
        let (value, after_value) = match after_key.strip_prefix('=') {
            Some(v) if v.starts_with('"') => {
                let (s, used) = quoted(v)?;
                (Some(s), &v[used..])
            }
            Some(v) => {
                let end = v.find(',').unwrap_or(v.len());
                (None, &v[end..])
            }
            None => (None, after_key),
        };
        if key == "nor" {
            // A bare or unquoted `nor` is malformed: a string must be quoted.
            return percent_decode(&value?).filter(|p| !p.is_empty());
        }
        let after_value = after_value.trim_start_matches([' ', '\t']);
        match after_value.strip_prefix(',') {
            Some(next) => rest = next,
            None if after_value.is_empty() => return None,
            // Garbage after a value: the list is malformed.
            None => return None,
        }
    }
}

/// A quoted string at the start of `s`: its content and the bytes used (quotes included).
fn quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// Resolve a `nor` path against the current request's path (RFC 3986 §5.2, paths only; any
/// query or fragment of the hint is dropped). `None` unless the result stays inside the current
/// video's directory `/v/{id}/` and differs from the current path.
pub fn resolve(current: &str, nor: &str) -> Option<String> {
    let nor = nor.split(['?', '#']).next().unwrap_or_default();
    if nor.is_empty() || nor.contains("//") {
        return None;
    }
    let joined = if nor.starts_with('/') {
        nor.to_string()
    } else {
        let dir = &current[..current.rfind('/')? + 1];
        format!("{dir}{nor}")
    };
    let mut segments: Vec<&str> = Vec::new();
    for seg in joined.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let path = format!("/{}", segments.join("/"));
    let video = video_dir(current)?;
    (path.starts_with(video) && path.len() > video.len() && path != current).then_some(path)
}

/// `/v/{id}/` of a path under it.
fn video_dir(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v/")?;
    let id_len = rest.find('/')?;
    (id_len > 0).then(|| &path[..3 + id_len + 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nor_from_the_header_and_the_query() {
        let h = |s| next_object(Some(s), None);
        assert_eq!(h(r#"bl=21300,nor="seg5.m4s""#).as_deref(), Some("seg5.m4s"));
        assert_eq!(
            h(r#"nor="..%2F360p%2Fseg5.m4s",nrr="12323-48763""#).as_deref(),
            Some("../360p/seg5.m4s")
        );
        assert_eq!(h(r#"bs,nor="a\"b.m4s", su"#).as_deref(), Some("a\"b.m4s"));
        assert_eq!(
            h(r#"sid="x,nor=\"no\"",bl=1"#),
            None,
            "inside another string"
        );
        for bad in [
            "nor=seg5.m4s",
            "nor",
            r#"nor="unterminated"#,
            r#"nor="""#,
            r#"nor="%ZZ""#,
            "bl=1",
            "",
        ] {
            assert_eq!(h(bad), None, "{bad}");
        }
        let q = "t=1&CMCD=bl%3D21300%2Cnor%3D%22seg5.m4s%22";
        assert_eq!(next_object(None, Some(q)).as_deref(), Some("seg5.m4s"));
        // Double-encoded, as CTA-5004's examples write it: decoded twice.
        let q = "CMCD=nor%3D%22..%252Fseg5.m4s%22";
        assert_eq!(next_object(None, Some(q)).as_deref(), Some("../seg5.m4s"));
        assert_eq!(next_object(None, Some("CMCD=%ZZ")), None);
        assert_eq!(
            next_object(Some("bl=1"), Some(q)).as_deref(),
            Some("../seg5.m4s")
        );
        let long = format!(r#"sid="{}",nor="a.m4s""#, "x".repeat(MAX_LEN));
        assert_eq!(h(&long), None, "over the bound");
    }

    #[test]
    fn resolution_stays_in_the_video() {
        let cur = "/v/vid/1/720p/seg4.m4s";
        let r = |n| resolve(cur, n);
        assert_eq!(r("seg5.m4s").as_deref(), Some("/v/vid/1/720p/seg5.m4s"));
        assert_eq!(
            r("../360p/seg5.m4s").as_deref(),
            Some("/v/vid/1/360p/seg5.m4s")
        );
        assert_eq!(
            r("./seg5.m4s?x=1#f").as_deref(),
            Some("/v/vid/1/720p/seg5.m4s")
        );
        assert_eq!(r("/v/vid/2/a.m4s").as_deref(), Some("/v/vid/2/a.m4s"));
        for outside in [
            "../../../other/1/seg.m4s",
            "/v/other/1/seg.m4s",
            "../../../../../etc/passwd",
            "seg4.m4s",
            "../../..",
            "//evil/x",
            "",
            "?q",
        ] {
            assert_eq!(r(outside), None, "{outside}");
        }
        assert_eq!(resolve("/healthz", "a"), None);
        assert_eq!(resolve("/v//x", "a"), None);
    }

    proptest! {
        #[test]
        fn any_input_is_bounded_and_stays_inside(header in ".{0,300}", nor in "[a-z./%0-9]{0,40}") {
            let _ = next_object(Some(&header), Some(&header));
            if let Some(p) = resolve("/v/vid/1/720p/seg4.m4s", &nor) {
                prop_assert!(p.starts_with("/v/vid/"));
                prop_assert!(!p.split('/').any(|s| s == ".." || s == "."));
            }
        }
    }
}
