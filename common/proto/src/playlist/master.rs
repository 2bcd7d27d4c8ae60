//! Multivariant ("master") playlist: one `EXT-X-STREAM-INF` per rendition of the ladder
//! (RFC 8216 §4.3.4.2, rfc8216bis §4.4.6.2). Audio is muxed into each rendition's CMAF track
//! set, so there are no `EXT-X-MEDIA` groups.

use std::fmt;

use super::render::{check_number, check_quoted, Attrs, COARSE_DECIMALS};
use super::PlaylistError;

/// A multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPlaylist {
    /// `EXT-X-VERSION`. [`MasterPlaylist::new`] uses 6, the version of the media playlists it
    /// points at (EXT-X-MAP needs 6); nothing in `EXT-X-STREAM-INF` needs more.
    pub version: u8,
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every segment starts with a keyframe (the ladder is cut
    /// on a fixed GOP), so players may switch renditions at any segment.
    pub independent_segments: bool,
    pub variants: Vec<Variant>,
}

/// One `EXT-X-STREAM-INF` and its URI line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 list, e.g. `avc1.64001f,mp4a.40.2`; omitted when empty.
    pub codecs: String,
    /// Width and height in pixels.
    pub resolution: Option<(u32, u32)>,
    /// Rendered with 3 decimals, e.g. `30.000`.
    pub frame_rate: Option<f64>,
    /// Rendered as `NAME="..."`. Not an RFC 8216 attribute (clients must ignore unknown
    /// attributes, §4.2) but hls.js shows it as the level name, which the demo player uses.
    pub name: Option<String>,
}

impl Default for MasterPlaylist {
    fn default() -> Self {
        Self::new()
    }
}

impl MasterPlaylist {
    /// Empty playlist: version 6, independent segments.
    pub fn new() -> Self {
        Self {
            version: 6,
            independent_segments: true,
            variants: Vec::new(),
        }
    }

    /// Checks that every value can be rendered and that there is at least one variant.
    pub fn validate(&self) -> Result<(), PlaylistError> {
        if self.variants.is_empty() {
            return Err(PlaylistError::NoVariants);
        }
        for v in &self.variants {
            check_quoted("variant URI", &v.uri)?;
            if !v.codecs.is_empty() {
                check_quoted("CODECS", &v.codecs)?;
            }
            if let Some(name) = &v.name {
                check_quoted("NAME", name)?;
            }
            if let Some(fps) = v.frame_rate {
                check_number("FRAME-RATE", fps)?;
            }
        }
        Ok(())
    }

    /// The video's current pointer (`v/{video}/master.m3u8`) made from version `version`'s own
    /// master (`v/{video}/{version}/master.m3u8`): the same variants with their URIs moved
    /// under `{version}/`, since the pointer sits one directory up. The transcoder writes it
    /// when a version is published; a rollback writes it again from the stored versioned master.
    pub fn pointer(&self, version: u32) -> MasterPlaylist {
        let mut p = self.clone();
        for v in &mut p.variants {
            v.uri = format!("{version}/{}", v.uri);
        }
        p
    }

    /// The playlist text. Does not validate; call [`MasterPlaylist::validate`] first for
    /// untrusted values.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MasterPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#EXTM3U\n")?;
        writeln!(f, "#EXT-X-VERSION:{}", self.version)?;
        if self.independent_segments {
            f.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for v in &self.variants {
            let mut a = Attrs::new(f, "#EXT-X-STREAM-INF")?;
            a.int("BANDWIDTH", v.bandwidth)?;
            if let Some(avg) = v.average_bandwidth {
                a.int("AVERAGE-BANDWIDTH", avg)?;
            }
            if !v.codecs.is_empty() {
                a.quoted("CODECS", &v.codecs)?;
            }
            if let Some(res) = v.resolution {
                a.resolution("RESOLUTION", res)?;
            }
            if let Some(fps) = v.frame_rate {
                a.decimal("FRAME-RATE", fps, COARSE_DECIMALS)?;
            }
            if let Some(name) = &v.name {
                a.quoted("NAME", name)?;
            }
            a.end()?;
            writeln!(f, "{}", v.uri)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> MasterPlaylist {
        let rung = |h: u32, w: u32, kbps: u64, level: &str| Variant {
            uri: format!("{h}p/index.m3u8"),
            bandwidth: kbps * 1100,
            average_bandwidth: Some(kbps * 1000),
            codecs: format!("avc1.6400{level},mp4a.40.2"),
            resolution: Some((w, h)),
            frame_rate: Some(30.0),
            name: Some(format!("{h}p")),
        };
        let mut m = MasterPlaylist::new();
        m.variants = vec![
            rung(1080, 1920, 5000, "28"),
            rung(720, 1280, 2800, "1f"),
            rung(480, 854, 1400, "1e"),
            rung(360, 640, 800, "1e"),
        ];
        m
    }

    #[test]
    fn pointer_moves_variant_uris_under_the_version() {
        let versioned = ladder();
        let pointer = versioned.pointer(7);
        let uris: Vec<&str> = pointer.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "7/1080p/index.m3u8",
                "7/720p/index.m3u8",
                "7/480p/index.m3u8",
                "7/360p/index.m3u8"
            ]
        );
        // Everything else is the versioned master's, and a parsed master round-trips.
        let reparsed = crate::playlist::parse_master(&versioned.render()).expect("parse");
        assert_eq!(reparsed.pointer(7).render(), pointer.render());
        assert_eq!(
            pointer.variants[0].bandwidth,
            versioned.variants[0].bandwidth
        );
    }

    #[test]
    fn four_rendition_master() {
        let m = ladder();
        m.validate().unwrap();
        insta::assert_snapshot!("master_four_renditions", m.render());
    }

    #[test]
    fn optional_attributes_are_omitted() {
        let mut m = MasterPlaylist::new();
        m.independent_segments = false;
        m.variants.push(Variant {
            uri: "a.m3u8".into(),
            bandwidth: 1,
            frame_rate: Some(29.97),
            ..Variant::default()
        });
        assert_eq!(
            m.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=29.970\na.m3u8\n"
        );
    }

    #[test]
    fn validate_errors() {
        assert_eq!(
            MasterPlaylist::new().validate(),
            Err(PlaylistError::NoVariants)
        );
        let mut m = ladder();
        m.variants[1].uri = "a\nb.m3u8".into();
        assert!(matches!(
            m.validate(),
            Err(PlaylistError::InvalidText {
                field: "variant URI",
                ..
            })
        ));
        let mut m = ladder();
        m.variants[0].codecs = "avc1\"".into();
        assert!(matches!(
            m.validate(),
            Err(PlaylistError::InvalidText {
                field: "CODECS",
                ..
            })
        ));
        let mut m = ladder();
        m.variants[0].name = Some(String::new());
        assert!(matches!(
            m.validate(),
            Err(PlaylistError::InvalidText { field: "NAME", .. })
        ));
        let mut m = ladder();
        m.variants[2].frame_rate = Some(f64::NAN);
        assert!(matches!(
            m.validate(),
            Err(PlaylistError::InvalidNumber { .. })
        ));
    }
}
