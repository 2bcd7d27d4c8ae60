//! What a published version offers besides its playlists and media: its poster and seek
//! thumbnails. The transcoder records this in the video hash (`rc:video:{video}` field
//! [`field`]`(version)`, JSON) after uploading the files and before the version's master pointer
//! is written and the job is marked done; the ingest's `GET /v1/videos/{id}` lists the current
//! version's. A version without a record (a live stream, a version from before posters) has
//! none to list.

use serde::{Deserialize, Serialize};

/// File name of a version's poster frame (`v/{video}/{version}/poster.jpg`).
pub const POSTER: &str = "poster.jpg";
/// File name of a version's thumbnail track (`v/{video}/{version}/thumbnails.vtt`); its cues
/// point at the sprite sheets `thumbs-{i}.jpg` next to it.
pub const THUMBNAILS_VTT: &str = "thumbnails.vtt";

/// Field of the video hash that holds version `version`'s [`VersionAssets`].
pub fn field(version: u32) -> String {
    format!("assets:{version}")
}

/// The files of one version, each relative to the version prefix `v/{video}/{version}/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionAssets {
    /// The poster frame (`poster.jpg`).
    pub poster: Option<String>,
    /// The WebVTT thumbnail track (`thumbnails.vtt`).
    pub thumbnails: Option<String>,
    /// The sprite sheets the track points at, in order.
    #[serde(default)]
    pub sheets: Vec<String>,
}

impl VersionAssets {
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for anything that is not a record of this shape.
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_field() {
        let a = VersionAssets {
            poster: Some(POSTER.into()),
            thumbnails: Some(THUMBNAILS_VTT.into()),
            sheets: vec!["thumbs-0.jpg".into()],
        };
        assert_eq!(
            a.to_json(),
            r#"{"poster":"poster.jpg","thumbnails":"thumbnails.vtt","sheets":["thumbs-0.jpg"]}"#
        );
        assert_eq!(VersionAssets::from_json(&a.to_json()), Some(a));
        assert_eq!(
            VersionAssets::from_json(r#"{"poster":null,"thumbnails":null}"#),
            Some(VersionAssets {
                poster: None,
                thumbnails: None,
                sheets: vec![]
            })
        );
        assert_eq!(VersionAssets::from_json("nope"), None);
        assert_eq!(field(3), "assets:3");
    }
}
