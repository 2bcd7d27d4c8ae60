//! Content-Type and caching policy per object, as pure functions of the key (and, for playlists,
//! the body).
//!
//! Why these rules (DESIGN.md "Storage and keys", "LL-HLS rules"): everything under
//! `v/{video}/{version}/` is published once and never rewritten, except playlists that are still
//! growing (live or a VOD packaged while it transcodes); those lack `#EXT-X-ENDLIST` until the
//! stream ends. `v/{video}/master.m3u8` is the mutable pointer to the current version. So:
//!
//! - media (`.m4s`, `.mp4`) → immutable for a year;
//! - a versioned playlist with `#EXT-X-ENDLIST` → immutable;
//! - any other playlist (the top-level master, a growing playlist, a multivariant playlist,
//!   which never carries ENDLIST) → `max-age=1`, and the edge's memory copy expires after
//!   `playlist_ttl_ms`;
//! - other files under a version (e.g. `poster.jpg`) → immutable; outside a version → short.

use ringcast_proto::content_type::{self, extension};

/// `Cache-Control` for objects that never change.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for objects that may change at any moment.
pub const CACHE_SHORT: &str = "public, max-age=1";

/// [`CACHE_IMMUTABLE`] for a private video: the browser may keep it, shared caches may not.
pub const CACHE_IMMUTABLE_PRIVATE: &str = "private, max-age=31536000, immutable";
/// [`CACHE_SHORT`] for a private video.
pub const CACHE_SHORT_PRIVATE: &str = "private, max-age=1";

/// The `Cache-Control` of a private video's object: the same lifetime, but `private`, so no
/// shared cache downstream (a CDN, a corporate proxy) keeps it for other viewers. The edge's
/// own cache still keeps the bytes; it checks the signature before every answer.
pub fn private_cache_control(cache_control: &'static str) -> &'static str {
    match cache_control {
        CACHE_IMMUTABLE => CACHE_IMMUTABLE_PRIVATE,
        CACHE_SHORT => CACHE_SHORT_PRIVATE,
        "no-store" => "no-store",
        _ => "private, no-cache",
    }
}

/// A live playlist's `Cache-Control` (`public, max-age=N`) for a private video.
pub fn private_live_cache_control(cache_control: String) -> String {
    match cache_control.strip_prefix("public") {
        Some(rest) => format!("private{rest}"),
        None => format!("private, {cache_control}"),
    }
}

/// How long an object may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Never changes once published: cache until evicted.
    Immutable,
    /// May change: revalidate after the playlist TTL.
    Mutable,
}

impl Freshness {
    /// The `Cache-Control` value for clients.
    pub fn cache_control(self) -> &'static str {
        match self {
            Freshness::Immutable => CACHE_IMMUTABLE,
            Freshness::Mutable => CACHE_SHORT,
        }
    }
}

/// `Content-Type` by file extension.
pub fn content_type(key: &str) -> &'static str {
    content_type::for_key(key)
}

/// Freshness of the object at `key` whose content is `body`.
pub fn freshness(key: &str, body: &[u8]) -> Freshness {
    match extension(key) {
        Some("m4s" | "mp4") => Freshness::Immutable,
        Some("m3u8") if is_versioned(key) && has_endlist(body) => Freshness::Immutable,
        Some("m3u8") => Freshness::Mutable,
        _ if is_versioned(key) => Freshness::Immutable,
        _ => Freshness::Mutable,
    }
}

/// `v/{video}/{version}/{file...}` with a numeric version (see `ringcast_proto::keys`).
pub fn is_versioned(key: &str) -> bool {
    let mut parts = key.split('/');
    let (Some("v"), Some(video), Some(version), Some(_file)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !video.is_empty() && !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a playlist carries `#EXT-X-ENDLIST` as a tag line (RFC 8216 §4.3.3.4).
pub fn has_endlist(body: &[u8]) -> bool {
    body.split(|b| *b == b'\n')
        .any(|line| line.trim_ascii() == b"#EXT-X-ENDLIST")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOD: &[u8] =
        b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.m4s\n#EXT-X-ENDLIST\n";
    const LIVE: &[u8] = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.m4s\n";

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("v/a/master.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type("v/a/1/720p/init.mp4"), "video/mp4");
        assert_eq!(content_type("v/a/1/720p/seg3.m4s"), "video/iso.segment");
        assert_eq!(content_type("v/a/1/720p/part3.1.m4s"), "video/iso.segment");
        // A poster from a plain-directory origin goes out as an image a browser shows.
        assert_eq!(content_type("v/a/1/poster.jpg"), "image/jpeg");
        assert_eq!(content_type("v/a/1/noext"), "application/octet-stream");
        assert_eq!(content_type("v/a.m3u8/1/file"), "application/octet-stream");
    }

    #[test]
    fn media_is_immutable() {
        assert_eq!(freshness("v/a/1/720p/seg3.m4s", b""), Freshness::Immutable);
        assert_eq!(freshness("v/a/1/720p/init.mp4", b""), Freshness::Immutable);
        assert_eq!(
            Freshness::Immutable.cache_control(),
            "public, max-age=31536000, immutable"
        );
    }

    #[test]
    fn playlists_depend_on_version_and_endlist() {
        assert_eq!(
            freshness("v/a/1/720p/index.m3u8", VOD),
            Freshness::Immutable
        );
        assert_eq!(freshness("v/a/1/720p/index.m3u8", LIVE), Freshness::Mutable);
        // The top-level master is a pointer to the current version: always short.
        assert_eq!(freshness("v/a/master.m3u8", VOD), Freshness::Mutable);
        assert_eq!(freshness("v/a/master.m3u8", LIVE), Freshness::Mutable);
        // A non-numeric "version" is not a version.
        assert_eq!(freshness("v/a/latest/index.m3u8", VOD), Freshness::Mutable);
        // ENDLIST must be a tag line, not a substring of a URI or a comment.
        let tricky = b"#EXTM3U\n#EXTINF:2,\nseg#EXT-X-ENDLIST.m4s\n";
        assert_eq!(
            freshness("v/a/1/720p/index.m3u8", tricky),
            Freshness::Mutable
        );
        let crlf = b"#EXTM3U\r\n#EXT-X-ENDLIST\r\n";
        assert_eq!(
            freshness("v/a/1/720p/index.m3u8", crlf),
            Freshness::Immutable
        );
        assert_eq!(Freshness::Mutable.cache_control(), "public, max-age=1");
        for f in [Freshness::Immutable, Freshness::Mutable] {
            let private = private_cache_control(f.cache_control());
            assert_eq!(
                private.strip_prefix("private"),
                f.cache_control().strip_prefix("public")
            );
        }
        assert_eq!(private_cache_control("no-store"), "no-store");
        assert_eq!(
            private_live_cache_control("public, max-age=12".into()),
            "private, max-age=12"
        );
    }

    #[test]
    fn other_files_follow_the_version() {
        assert_eq!(freshness("v/a/1/poster.jpg", b""), Freshness::Immutable);
        assert_eq!(freshness("v/a/poster.jpg", b""), Freshness::Mutable);
    }

    #[test]
    fn versioned_keys() {
        assert!(is_versioned("v/a/1/master.m3u8"));
        assert!(is_versioned("v/a/12/720p/seg1.m4s"));
        assert!(!is_versioned("v/a/master.m3u8"));
        assert!(!is_versioned("v/a/x1/master.m3u8"));
        assert!(!is_versioned("w/a/1/master.m3u8"));
    }
}
