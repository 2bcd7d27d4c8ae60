//! Which requests the live LL-HLS path handles, as pure functions of the object key: a
//! rendition's media playlist (`v/{video}/{version}/{rendition}/index.m3u8`) and its parts
//! (`part{msn}.{i}.m4s`), the Redis stream that describes the rendition, the sibling renditions
//! named by the versioned master, and the `Cache-Control` of live playlist responses.
//!
//! Why a key must match exactly (`is_valid_id` names, a decimal version): the key becomes a Redis
//! key, and anything the live path does not recognise goes to the ordinary object path, which
//! keeps VOD working unchanged.

use ringcast_proto::keys::is_valid_id;
use ringcast_proto::live::events_stream_key;
use ringcast_proto::playlist::parse_master;

/// File name of a rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

/// One rendition of one version of a video.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenditionId {
    pub video: String,
    pub version: u32,
    pub rendition: String,
}

impl RenditionId {
    /// `rc:events:{video}:{version}:{rendition}`.
    pub fn stream_key(&self) -> String {
        events_stream_key(&self.video, self.version, &self.rendition)
    }

    /// Masters that may list the sibling renditions, in the order to try them: the versioned
    /// master (variant URIs `{rendition}/index.m3u8`), then the video's current master
    /// (`{version}/{rendition}/index.m3u8`, ADR 0001), with the variant prefix of each.
    pub fn master_keys(&self) -> [(String, String); 2] {
        [
            (
                ringcast_proto::keys::version_master(&self.video, self.version),
                String::new(),
            ),
            (
                ringcast_proto::keys::current_master(&self.video),
                format!("{}/", self.version),
            ),
        ]
    }

    /// The same video and version, another rendition.
    pub fn sibling(&self, rendition: &str) -> Self {
        Self {
            video: self.video.clone(),
            version: self.version,
            rendition: rendition.to_owned(),
        }
    }

    /// `v/{video}/{version}/{rendition}`: the folder of the rendition's objects, and the key of
    /// a core's index of renditions ([`RenditionRef::dir`]).
    pub fn dir(&self) -> String {
        format!("v/{}/{}/{}", self.video, self.version, self.rendition)
    }
}

/// A rendition as named by an object key, borrowed from it: the request path classifies and
/// finds its rendition without allocating (every player of a herd asks twice per part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenditionRef<'a> {
    /// `v/{video}/{version}/{rendition}` (the key without its file name).
    pub dir: &'a str,
    pub video: &'a str,
    pub version: u32,
    pub rendition: &'a str,
}

impl RenditionRef<'_> {
    /// The owned id (for a follower, when the core does not know the rendition yet).
    pub fn to_id(&self) -> RenditionId {
        RenditionId {
            video: self.video.to_owned(),
            version: self.version,
            rendition: self.rendition.to_owned(),
        }
    }
}

/// A request the live path may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveTarget<'a> {
    /// `.../{rendition}/index.m3u8`.
    Playlist(RenditionRef<'a>),
    /// `.../{rendition}/part{msn}.{part}.m4s`.
    Part {
        id: RenditionRef<'a>,
        msn: u64,
        part: u32,
    },
}

/// Classifies an (already validated) object key; `None` for everything else.
pub fn live_target(key: &str) -> Option<LiveTarget<'_>> {
    let mut it = key.split('/');
    let (Some("v"), Some(video), Some(version), Some(rendition), Some(file), None) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return None;
    };
    // The file first: segments and init segments (most requests) leave at once.
    let part = if file == MEDIA_PLAYLIST {
        None
    } else {
        Some(parse_part_name(file)?)
    };
    if !is_valid_id(video) || !is_valid_id(rendition) || !is_decimal(version) {
        return None;
    }
    let id = RenditionRef {
        dir: &key[..key.len() - file.len() - 1],
        video,
        version: version.parse().ok()?,
        rendition,
    };
    Some(match part {
        None => LiveTarget::Playlist(id),
        Some((msn, part)) => LiveTarget::Part { id, msn, part },
    })
}

/// `part{msn}.{i}.m4s` → `(msn, i)` (the inverse of `keys::part_name`, canonical digits only so
/// one part has one name).
pub fn parse_part_name(file: &str) -> Option<(u64, u32)> {
    let rest = file.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (msn, part) = rest.split_once('.')?;
    if !is_canonical(msn) || !is_canonical(part) {
        return None;
    }
    Some((msn.parse().ok()?, part.parse().ok()?))
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Decimal digits without leading zeros ("0" itself is fine).
/// (Overflow is left to `parse`.)
fn is_canonical(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Rendition names listed by a master whose variant URIs are `{prefix}{rendition}/index.m3u8`
/// (the layout the packagers write); other URIs are ignored. `None` when the text is not a
/// master or lists no such rendition.
pub fn renditions_in_master(text: &str, prefix: &str) -> Option<Vec<String>> {
    let master = parse_master(text).ok()?;
    let mut out: Vec<String> = master
        .variants
        .iter()
        .filter_map(|v| {
            let (rendition, file) = v.uri.strip_prefix(prefix)?.split_once('/')?;
            (file == MEDIA_PLAYLIST && is_valid_id(rendition)).then(|| rendition.to_owned())
        })
        .collect();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

/// URI of a sibling's media playlist relative to this rendition's playlist
/// (`EXT-X-RENDITION-REPORT:URI`).
pub fn report_uri(sibling: &str) -> String {
    format!("../{sibling}/{MEDIA_PLAYLIST}")
}

/// `Cache-Control` of a live playlist response (DESIGN.md "LL-HLS rules", rfc8216bis §6.2.5.2
/// and Apple's LL-HLS CDN guidance):
/// - a blocking response (`_HLS_msn` given) is the answer for that exact query and stays correct,
///   so it may be cached ~6 target durations (keyed by the full query);
/// - an ended playlist does not change any more: the same;
/// - a plain live playlist changes every part: at most half a part target, in whole seconds
///   (0 for parts under 2 s).
pub fn live_cache_control(
    blocking: bool,
    ended: bool,
    target_duration: u64,
    part_target: f64,
) -> String {
    let secs = live_max_age(blocking, ended, target_duration, part_target);
    format!("public, max-age={secs}")
}

/// The `max-age` of [`live_cache_control`], in seconds.
pub fn live_max_age(blocking: bool, ended: bool, target_duration: u64, part_target: f64) -> u64 {
    if blocking || ended {
        target_duration.saturating_mul(6)
    } else {
        let half = (part_target / 2.0).floor();
        if half.is_finite() && half > 0.0 {
            half as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: &str, ver: u32, r: &str) -> RenditionId {
        RenditionId {
            video: v.into(),
            version: ver,
            rendition: r.into(),
        }
    }

    #[test]
    fn classifies_playlists_and_parts() {
        let named = RenditionRef {
            dir: "v/abc/2/720p",
            video: "abc",
            version: 2,
            rendition: "720p",
        };
        assert_eq!(
            live_target("v/abc/2/720p/index.m3u8"),
            Some(LiveTarget::Playlist(named))
        );
        assert_eq!(
            live_target("v/abc/2/720p/part12.3.m4s"),
            Some(LiveTarget::Part {
                id: named,
                msn: 12,
                part: 3
            })
        );
        assert_eq!(named.to_id(), id("abc", 2, "720p"));
        assert_eq!(id("abc", 2, "720p").dir(), named.dir);
        assert_eq!(id("abc", 2, "720p").stream_key(), "rc:events:abc:2:720p");
        let [(versioned, none), (current, prefix)] = id("abc", 2, "720p").master_keys();
        assert_eq!(
            (versioned.as_str(), none.as_str()),
            ("v/abc/2/master.m3u8", "")
        );
        assert_eq!(
            (current.as_str(), prefix.as_str()),
            ("v/abc/master.m3u8", "2/")
        );
    }

    #[test]
    fn everything_else_is_not_live() {
        for key in [
            "v/abc/master.m3u8",
            "v/abc/2/master.m3u8",
            "v/abc/2/720p/seg3.m4s",
            "v/abc/2/720p/init.mp4",
            "v/abc/x2/720p/index.m3u8",
            "v/abc/2/720p/sub/index.m3u8",
            "v/a:b/2/720p/index.m3u8",
            "v/abc/2/7 0/index.m3u8",
            "v/abc/99999999999/720p/index.m3u8",
            "w/abc/2/720p/index.m3u8",
            "v/abc/2/720p/part1.m4s",
            "v/abc/2/720p/part01.0.m4s",
            "v/abc/2/720p/part1.00.m4s",
            "v/abc/2/720p/part1.-1.m4s",
            "v/abc/2/720p/part1.4294967296.m4s",
            "v/abc/2/720p/partx.0.m4s",
        ] {
            assert_eq!(live_target(key), None, "{key}");
        }
        assert_eq!(parse_part_name("part0.0.m4s"), Some((0, 0)));
        assert_eq!(parse_part_name("part10.12.m4s"), Some((10, 12)));
    }

    #[test]
    fn siblings_from_the_versioned_master() {
        let master = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=100000\nhttp://elsewhere/x.m3u8\n";
        assert_eq!(
            renditions_in_master(master, ""),
            Some(vec!["720p".to_owned(), "360p".to_owned()])
        );
        assert_eq!(
            renditions_in_master("#EXTM3U\n#EXTINF:2,\nseg0.m4s\n", ""),
            None
        );
        // The current master points into a version.
        let current = master
            .replace("720p/", "2/720p/")
            .replace("360p/", "3/360p/");
        assert_eq!(
            renditions_in_master(&current, "2/"),
            Some(vec!["720p".to_owned()])
        );
        assert_eq!(renditions_in_master(&current, "4/"), None);
        assert_eq!(report_uri("360p"), "../360p/index.m3u8");
    }

    #[test]
    fn cache_control_follows_the_design() {
        assert_eq!(
            live_cache_control(true, false, 2, 0.5),
            "public, max-age=12"
        );
        assert_eq!(
            live_cache_control(false, true, 2, 0.5),
            "public, max-age=12"
        );
        assert_eq!(
            live_cache_control(false, false, 2, 0.5),
            "public, max-age=0"
        );
        assert_eq!(
            live_cache_control(false, false, 6, 4.0),
            "public, max-age=2"
        );
        assert_eq!(
            live_cache_control(false, false, 6, f64::NAN),
            "public, max-age=0"
        );
    }
}
