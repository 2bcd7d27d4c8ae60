//! The `Content-Type` of every object ringcast publishes, in one place: the transcoder stores
//! objects with these types and the edge answers with them (by key, for origins that carry no
//! type, such as a plain directory).

/// HLS playlists (RFC 8216 §4).
pub const PLAYLIST: &str = "application/vnd.apple.mpegurl";
/// CMAF init segments (`init.mp4`).
pub const INIT: &str = "video/mp4";
/// CMAF media segments and LL-HLS parts (`.m4s`).
pub const SEGMENT: &str = "video/iso.segment";
/// Poster frames and thumbnail sprites.
pub const JPEG: &str = "image/jpeg";
/// WebVTT tracks (thumbnail previews).
pub const WEBVTT: &str = "text/vtt";
/// Anything else.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// `Content-Type` by the key's file extension.
pub fn for_key(key: &str) -> &'static str {
    match extension(key) {
        Some("m3u8") => PLAYLIST,
        Some("mp4") => INIT,
        Some("m4s") => SEGMENT,
        Some("jpg" | "jpeg") => JPEG,
        Some("vtt") => WEBVTT,
        _ => OCTET_STREAM,
    }
}

/// The extension of the key's last path segment, if any.
pub fn extension(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.rsplit_once('.').map(|(_, ext)| ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension() {
        assert_eq!(for_key("v/a/master.m3u8"), PLAYLIST);
        assert_eq!(for_key("v/a/1/720p/init.mp4"), INIT);
        assert_eq!(for_key("v/a/1/720p/seg3.m4s"), SEGMENT);
        assert_eq!(for_key("v/a/1/720p/part3.1.m4s"), SEGMENT);
        assert_eq!(for_key("v/a/1/poster.jpg"), JPEG);
        assert_eq!(for_key("v/a/1/thumbnails.vtt"), WEBVTT);
        assert_eq!(for_key("v/a.m3u8/1/source"), OCTET_STREAM);
        assert_eq!(for_key("noext"), OCTET_STREAM);
    }
}
