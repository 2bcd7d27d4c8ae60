//! Signed playback URLs: HMAC-SHA256 over a path prefix and an expiry (like nginx secure_link or
//! CloudFront signed URLs), sans-IO — the caller passes `now`.
//!
//! One signature covers every path that starts with its prefix, so a player given a signed
//! master playlist can fetch the media playlists and segments it references. Two carriers:
//!
//! - **Path token** (what players should get): `/s/{exp}/{prefix_len}/{sig}{path}`, e.g.
//!   `/s/1767225600/7/Qm…/v/vid/master.m3u8` signs the prefix `/v/vid/` (the first 7 bytes of
//!   the path after the token). Relative URIs in playlists resolve against the directory of the
//!   playlist's URL, so `1/720p/index.m3u8` becomes `/s/1767225600/7/Qm…/v/vid/1/720p/…` and
//!   carries the token along — this is why it lives in the path.
//! - **Query**: `{path}?exp={exp}&prefix={urlenc prefix}&sig={sig}`, handy for single objects
//!   and tools; query strings do not survive relative URI resolution, so playlists served this
//!   way only work with players that copy the query themselves.
//!
//! A prefix ending in `/` covers the paths under it; a prefix without the trailing slash covers
//! exactly that one path ([`covers`]).
//!
//! `sig` = base64url (no padding) of HMAC-SHA256(secret, `"ringcast-url-v1\n{exp}\n{prefix}"`).
//! The comparison is constant-time (`Mac::verify_slice`). A URL is valid while `now < exp`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// First path segment of the path-token form.
pub const PATH_TOKEN_PREFIX: &str = "/s/";

/// Why a URL was refused (every variant answers 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the URL is not signed")]
    Missing,
    #[error("the URL signature is malformed")]
    Malformed,
    #[error("the signed URL has expired")]
    Expired,
    #[error("the path is outside the signed prefix")]
    OutsidePrefix,
    #[error("the URL signature is invalid")]
    BadSignature,
}

impl SignError {
    /// Stable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            SignError::Missing => "signature_missing",
            SignError::Malformed => "signature_malformed",
            SignError::Expired => "signature_expired",
            SignError::OutsidePrefix => "signature_prefix",
            SignError::BadSignature => "signature_invalid",
        }
    }
}

fn mac(secret: &[u8], prefix: &str, exp: u64) -> Hmac<Sha256> {
    // new_from_slice accepts any key length for HMAC; the Err arm cannot happen.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    m.update(b"ringcast-url-v1\n");
    m.update(exp.to_string().as_bytes());
    m.update(b"\n");
    m.update(prefix.as_bytes());
    m
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC accepts keys of any length")
}

/// The signature (base64url, no padding) of `prefix` valid until `exp` (Unix seconds).
pub fn sign(secret: &[u8], prefix: &str, exp: u64) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, prefix, exp).finalize().into_bytes())
}

/// The path-token URL path for `path` under a signature of `prefix` (which `path` must start
/// with): `/s/{exp}/{prefix.len()}/{sig}{path}`.
pub fn signed_path(secret: &[u8], prefix: &str, exp: u64, path: &str) -> String {
    format!(
        "{PATH_TOKEN_PREFIX}{exp}/{}/{}{path}",
        prefix.len(),
        sign(secret, prefix, exp)
    )
}

/// The query form: `exp=…&prefix=…&sig=…` (without the `?`).
pub fn signed_query(secret: &[u8], prefix: &str, exp: u64) -> String {
    format!(
        "exp={exp}&prefix={}&sig={}",
        percent_encode(prefix),
        sign(secret, prefix, exp)
    )
}

/// Check that `path` is covered by the signature `sig` of `prefix` valid until `exp`.
pub fn verify(
    secret: &[u8],
    path: &str,
    prefix: &str,
    exp: u64,
    sig: &str,
    now: u64,
) -> Result<(), SignError> {
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| SignError::Malformed)?;
    // Check the signature first so an attacker learns nothing from the other answers.
    mac(secret, prefix, exp)
        .verify_slice(&sig)
        .map_err(|_| SignError::BadSignature)?;
    if now >= exp {
        return Err(SignError::Expired);
    }
    if !covers(prefix, path) {
        return Err(SignError::OutsidePrefix);
    }
    Ok(())
}

/// Whether a signature of `prefix` covers `path`: a prefix ending in `/` covers everything under
/// that directory; any other prefix covers exactly one path. A plain string prefix would let a
/// signature of `/v/a` also cover `/v/ab/…`, another video.
pub fn covers(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        !prefix.is_empty() && path == prefix
    }
}

/// Verify the query form for a request of `path` with query `query`.
pub fn verify_query(
    secret: &[u8],
    path: &str,
    query: Option<&str>,
    now: u64,
) -> Result<(), SignError> {
    let (mut exp, mut prefix, mut sig) = (None, None, None);
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("exp", v)) => exp = Some(v),
            Some(("prefix", v)) => prefix = Some(v),
            Some(("sig", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (Some(exp), Some(prefix), Some(sig)) = (exp, prefix, sig) else {
        return Err(if exp.is_none() && prefix.is_none() && sig.is_none() {
            SignError::Missing
        } else {
            SignError::Malformed
        });
    };
    let exp = parse_exp(exp)?;
    let prefix = percent_decode(prefix).ok_or(SignError::Malformed)?;
    verify(secret, path, &prefix, exp, sig, now)
}

/// Verify a path-token URL path (`/s/{exp}/{len}/{sig}{path}`) and return the inner `{path}`.
pub fn verify_path<'a>(secret: &[u8], full: &'a str, now: u64) -> Result<&'a str, SignError> {
    let rest = full
        .strip_prefix(PATH_TOKEN_PREFIX)
        .ok_or(SignError::Missing)?;
    let mut parts = rest.splitn(3, '/');
    let (Some(exp), Some(len), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SignError::Malformed);
    };
    let exp = parse_exp(exp)?;
    let len: usize = parse_exp(len)?
        .try_into()
        .map_err(|_| SignError::Malformed)?;
    let slash = tail.find('/').ok_or(SignError::Malformed)?;
    let (sig, path) = tail.split_at(slash);
    let prefix = path.get(..len).ok_or(SignError::OutsidePrefix)?;
    verify(secret, path, prefix, exp, sig, now)?;
    Ok(path)
}

fn parse_exp(s: &str) -> Result<u64, SignError> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignError::Malformed);
    }
    s.parse().map_err(|_| SignError::Malformed)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"secret-key";
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn path_token_round_trip_covers_relative_uris() {
        let p = signed_path(K, "/v/vid/", NOW + 60, "/v/vid/master.m3u8");
        assert!(p.starts_with(&format!("/s/{}/7/", NOW + 60)), "{p}");
        assert_eq!(verify_path(K, &p, NOW), Ok("/v/vid/master.m3u8"));
        // What a player resolves `1/720p/seg1.m4s` against the master's URL to:
        let dir = &p[..p.rfind('/').expect("slash") + 1];
        let rel = format!("{dir}1/720p/seg1.m4s");
        assert_eq!(verify_path(K, &rel, NOW), Ok("/v/vid/1/720p/seg1.m4s"));
    }

    #[test]
    fn path_token_rejections() {
        let p = signed_path(K, "/v/vid/", NOW + 60, "/v/vid/master.m3u8");
        assert_eq!(verify_path(K, &p, NOW + 60), Err(SignError::Expired));
        assert_eq!(verify_path(b"other", &p, NOW), Err(SignError::BadSignature));
        // Moving the token onto another video keeps the prefix length but not the prefix.
        let moved = p.replace("/v/vid/", "/v/vie/");
        assert_eq!(verify_path(K, &moved, NOW), Err(SignError::BadSignature));
        let longer = p.replacen("/7/", "/8/", 1);
        assert_eq!(verify_path(K, &longer, NOW), Err(SignError::BadSignature));
        let later = p.replacen(&(NOW + 60).to_string(), &(NOW + 6000).to_string(), 1);
        assert_eq!(verify_path(K, &later, NOW), Err(SignError::BadSignature));
        assert_eq!(verify_path(K, "/v/vid/x", NOW), Err(SignError::Missing));
        for bad in [
            "/s/",
            "/s/1/2",
            "/s/x/7/abc/v/",
            "/s/1/7/abc",
            "/s/1/99/abc/v/",
        ] {
            assert!(verify_path(K, bad, NOW).is_err(), "{bad}");
        }
        assert_eq!(
            verify_path(K, "/s/1/7/!!!/v/vid/x", NOW),
            Err(SignError::Malformed)
        );
        // A prefix longer than the path.
        let short = signed_path(K, "/v/vid/master.m3u8", NOW + 60, "/v/vid/master.m3u8");
        let cut = short.replace("master.m3u8", "m");
        assert_eq!(verify_path(K, &cut, NOW), Err(SignError::OutsidePrefix));
    }

    #[test]
    fn a_prefix_without_slash_covers_one_path_only() {
        // Signing `/v/a` must not cover another video `/v/ab/...`.
        let p = signed_path(K, "/v/a", NOW + 60, "/v/a");
        let other = p.replacen("/v/a", "/v/ab/master.m3u8", 1);
        assert_eq!(verify_path(K, &other, NOW), Err(SignError::OutsidePrefix));
        let q = signed_query(K, "/v/a", NOW + 60);
        assert_eq!(
            verify_query(K, "/v/ab/master.m3u8", Some(&q), NOW),
            Err(SignError::OutsidePrefix)
        );
        assert_eq!(
            verify_query(K, "/v/a/master.m3u8", Some(&q), NOW),
            Err(SignError::OutsidePrefix)
        );
        // Exactly the signed path is fine, and a directory prefix covers its subtree.
        assert_eq!(verify_query(K, "/v/a", Some(&q), NOW), Ok(()));
        assert!(covers("/v/a/", "/v/a/1/720p/seg1.m4s"));
        assert!(!covers("/v/a/", "/v/ab/seg1.m4s"));
        assert!(!covers("", "/v/a"));
    }

    #[test]
    fn query_round_trip_and_rejections() {
        let q = signed_query(K, "/v/vid/", NOW + 60);
        assert!(q.contains("prefix=%2Fv%2Fvid%2F"), "{q}");
        assert_eq!(verify_query(K, "/v/vid/1/seg.m4s", Some(&q), NOW), Ok(()));
        assert_eq!(
            verify_query(K, "/v/other/seg.m4s", Some(&q), NOW),
            Err(SignError::OutsidePrefix)
        );
        assert_eq!(
            verify_query(K, "/v/vid/x", Some(&q), NOW + 61),
            Err(SignError::Expired)
        );
        assert_eq!(
            verify_query(K, "/v/vid/x", None, NOW),
            Err(SignError::Missing)
        );
        assert_eq!(
            verify_query(K, "/v/vid/x", Some("a=b"), NOW),
            Err(SignError::Missing)
        );
        assert_eq!(
            verify_query(K, "/v/vid/x", Some("exp=1&sig=x"), NOW),
            Err(SignError::Malformed)
        );
        let tampered = q.replace("vid", "viz");
        assert_eq!(
            verify_query(K, "/v/viz/x", Some(&tampered), NOW),
            Err(SignError::BadSignature)
        );
        // Extra parameters are allowed (players add their own).
        let extra = format!("_HLS_msn=3&{q}");
        assert_eq!(verify_query(K, "/v/vid/i.m3u8", Some(&extra), NOW), Ok(()));
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_encode("/v/a b"), "%2Fv%2Fa%20b");
        assert_eq!(percent_decode("%2Fv%2fa%20b").as_deref(), Some("/v/a b"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}", q in "\\PC{0,60}") {
            let _ = verify_path(K, &s, NOW);
            let _ = verify_query(K, &s, Some(&q), NOW);
        }
    }
}
