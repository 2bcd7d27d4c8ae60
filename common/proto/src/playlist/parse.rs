//! Playlist parser for the client side (the loadtest's players, tests): reads the tags this
//! project renders plus what other servers commonly send, into the same model
//! ([`MediaPlaylist`], [`MasterPlaylist`]). Lenient where RFC 8216 §4.1 tells clients to be:
//! unknown tags and attributes are ignored; structural errors (no `#EXTM3U`, an `EXTINF`
//! without a URI line, bad numbers) are [`ParseError`]s.
//!
//! A parsed delta update (`EXT-X-SKIP`) holds only the segments present in the text;
//! `skipped_segments` says how many came before them (`media_sequence` is the first skipped).

use super::master::{MasterPlaylist, Variant};
use super::media::{
    MediaPlaylist, Part, PlaylistType, PreloadHint, RenditionReport, Segment, ServerControl,
};

/// Why a playlist could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("playlist line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Attribute list of a tag (`KEY=VALUE,KEY="quoted, value"`), RFC 8216 §4.2.
struct AttrList<'a>(Vec<(&'a str, &'a str)>);

impl<'a> AttrList<'a> {
    fn parse(s: &'a str, line: usize) -> Result<Self, ParseError> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or_else(|| err(line, format!("attribute without '=' in {s:?}")))?;
            let key = rest[..eq].trim();
            rest = &rest[eq + 1..];
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let end = q
                    .find('"')
                    .ok_or_else(|| err(line, "unterminated quoted string"))?;
                value = &q[..end];
                rest = &q[end + 1..];
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim();
                // Unquoted values are numbers and enumerated strings, which never hold a quote
                // (§4.2); accepting one would render as an unterminated quoted string.
                if value.contains('"') {
                    return Err(err(line, format!("stray '\"' in attribute {key}")));
                }
                rest = &rest[end..];
            }
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
            out.push((key, value));
        }
        Ok(Self(out))
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn yes(&self, key: &str) -> bool {
        self.get(key) == Some("YES")
    }

    fn f64(&self, key: &str, line: usize) -> Result<Option<f64>, ParseError> {
        self.get(key).map(|v| number(v, line)).transpose()
    }

    fn u64(&self, key: &str, line: usize) -> Result<Option<u64>, ParseError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| err(line, format!("{key}={v} is not an integer")))
            })
            .transpose()
    }
}

fn number(v: &str, line: usize) -> Result<f64, ParseError> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(err(line, format!("{v:?} is not a non-negative number"))),
    }
}

fn int(v: &str, line: usize) -> Result<u64, ParseError> {
    v.trim()
        .parse()
        .map_err(|_| err(line, format!("{v:?} is not an integer")))
}

/// Lines with their 1-based numbers, after checking the `#EXTM3U` header.
fn lines(text: &str) -> Result<impl Iterator<Item = (usize, &str)>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut it = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    match it.next() {
        Some((_, "#EXTM3U")) => Ok(it.filter(|(_, l)| !l.is_empty())),
        _ => Err(err(1, "playlist does not start with #EXTM3U")),
    }
}

/// True when the text is a multivariant playlist (has `EXT-X-STREAM-INF`).
pub fn is_master(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("#EXT-X-STREAM-INF"))
}

/// Parse a multivariant playlist.
pub fn parse_master(text: &str) -> Result<MasterPlaylist, ParseError> {
    let mut pl = MasterPlaylist {
        version: 1,
        independent_segments: false,
        variants: Vec::new(),
    };
    let mut pending: Option<Variant> = None;
    for (n, line) in lines(text)? {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            pl.version = int(v, n)?.min(u8::MAX as u64) as u8;
        } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
            pl.independent_segments = true;
        } else if let Some(a) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let a = AttrList::parse(a, n)?;
            let resolution = match a.get("RESOLUTION") {
                Some(r) => {
                    let (w, h) = r
                        .split_once('x')
                        .ok_or_else(|| err(n, format!("bad RESOLUTION {r}")))?;
                    Some((int(w, n)? as u32, int(h, n)? as u32))
                }
                None => None,
            };
            pending = Some(Variant {
                uri: String::new(),
                bandwidth: a
                    .u64("BANDWIDTH", n)?
                    .ok_or_else(|| err(n, "EXT-X-STREAM-INF without BANDWIDTH"))?,
                average_bandwidth: a.u64("AVERAGE-BANDWIDTH", n)?,
                codecs: a.get("CODECS").unwrap_or_default().to_string(),
                resolution,
                frame_rate: a.f64("FRAME-RATE", n)?,
                name: a.get("NAME").map(str::to_string),
            });
        } else if !line.starts_with('#') {
            let mut v = pending
                .take()
                .ok_or_else(|| err(n, "URI line without EXT-X-STREAM-INF"))?;
            v.uri = line.to_string();
            pl.variants.push(v);
        }
    }
    if pending.is_some() {
        return Err(err(0, "EXT-X-STREAM-INF without a URI line"));
    }
    Ok(pl)
}

/// Parse a media playlist.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, ParseError> {
    let mut pl = MediaPlaylist {
        version: 1,
        target_duration: 0,
        playlist_type: None,
        independent_segments: false,
        map_uri: None,
        end_list: false,
        ..MediaPlaylist::vod(0, "")
    };
    let mut have_target = false;
    // Tags that apply to the next segment.
    let mut next = Segment::default();
    let mut extinf: Option<(f64, String)> = None;
    for (n, line) in lines(text)? {
        let Some(tag) = line.strip_prefix('#') else {
            let (duration, title) = extinf
                .take()
                .ok_or_else(|| err(n, format!("URI {line:?} without EXTINF")))?;
            let mut seg = std::mem::take(&mut next);
            seg.uri = line.to_string();
            seg.duration = duration;
            seg.title = title;
            // Parts listed before this EXTINF belong to this segment.
            seg.parts = std::mem::take(&mut pl.pending_parts);
            pl.segments.push(seg);
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-VERSION" => pl.version = int(value, n)?.min(u8::MAX as u64) as u8,
            "EXT-X-TARGETDURATION" => {
                pl.target_duration = int(value, n)?;
                have_target = true;
            }
            "EXT-X-MEDIA-SEQUENCE" => pl.media_sequence = int(value, n)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => pl.discontinuity_sequence = int(value, n)?,
            "EXT-X-PLAYLIST-TYPE" => {
                pl.playlist_type = match value {
                    "VOD" => Some(PlaylistType::Vod),
                    "EVENT" => Some(PlaylistType::Event),
                    other => return Err(err(n, format!("unknown PLAYLIST-TYPE {other}"))),
                }
            }
            "EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
            "EXT-X-ENDLIST" => pl.end_list = true,
            "EXT-X-MAP" => {
                let a = AttrList::parse(value, n)?;
                pl.map_uri = Some(
                    a.get("URI")
                        .ok_or_else(|| err(n, "EXT-X-MAP without URI"))?
                        .to_string(),
                );
            }
            "EXT-X-PART-INF" => {
                let a = AttrList::parse(value, n)?;
                pl.part_target = a.f64("PART-TARGET", n)?;
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = AttrList::parse(value, n)?;
                pl.server_control = Some(ServerControl {
                    can_block_reload: a.yes("CAN-BLOCK-RELOAD"),
                    part_hold_back: a.f64("PART-HOLD-BACK", n)?,
                    hold_back: a.f64("HOLD-BACK", n)?,
                    can_skip_until: a.f64("CAN-SKIP-UNTIL", n)?,
                });
            }
            "EXTINF" => {
                let (d, title) = value.split_once(',').unwrap_or((value, ""));
                extinf = Some((number(d, n)?, title.to_string()));
            }
            "EXT-X-PROGRAM-DATE-TIME" => next.program_date_time = Some(value.to_string()),
            "EXT-X-DISCONTINUITY" => next.discontinuity = true,
            "EXT-X-PART" => {
                let a = AttrList::parse(value, n)?;
                pl.pending_parts.push(Part {
                    uri: a
                        .get("URI")
                        .ok_or_else(|| err(n, "EXT-X-PART without URI"))?
                        .to_string(),
                    duration: a
                        .f64("DURATION", n)?
                        .ok_or_else(|| err(n, "EXT-X-PART without DURATION"))?,
                    independent: a.yes("INDEPENDENT"),
                    gap: a.yes("GAP"),
                });
            }
            "EXT-X-PRELOAD-HINT" => {
                let a = AttrList::parse(value, n)?;
                if a.get("TYPE") == Some("PART") {
                    if let Some(uri) = a.get("URI") {
                        pl.preload_hint = Some(PreloadHint {
                            uri: uri.to_string(),
                        });
                    }
                }
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = AttrList::parse(value, n)?;
                pl.rendition_reports.push(RenditionReport {
                    uri: a.get("URI").unwrap_or_default().to_string(),
                    last_msn: a.u64("LAST-MSN", n)?.unwrap_or(0),
                    last_part: a.u64("LAST-PART", n)?,
                });
            }
            "EXT-X-SKIP" => {
                let a = AttrList::parse(value, n)?;
                pl.skipped_segments = a
                    .u64("SKIPPED-SEGMENTS", n)?
                    .ok_or_else(|| err(n, "EXT-X-SKIP without SKIPPED-SEGMENTS"))?;
            }
            _ => {} // unknown tags and comments are ignored (RFC 8216 §4.1)
        }
    }
    if extinf.is_some() {
        return Err(err(0, "EXTINF without a URI line"));
    }
    if !have_target {
        return Err(err(0, "media playlist without EXT-X-TARGETDURATION"));
    }
    Ok(pl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_an_ll_hls_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000,CAN-SKIP-UNTIL=12.000\n\
            #EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-27T08:00:00.000Z\n\
            #EXT-X-PART:DURATION=0.33334,URI=\"part10.0.m4s\",INDEPENDENT=YES\n\
            #EXTINF:2.00000,\nseg10.m4s\n\
            #EXT-X-PART:DURATION=0.33334,URI=\"part11.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part11.1.m4s\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=11,LAST-PART=0\n";
        let pl = parse_media(text).expect("parse");
        assert_eq!(pl.media_sequence, 10);
        assert_eq!(pl.segments.len(), 1);
        assert_eq!(pl.segments[0].parts.len(), 1);
        assert_eq!(pl.pending_parts.len(), 1);
        assert_eq!(
            pl.preload_hint.as_ref().map(|h| h.uri.as_str()),
            Some("part11.1.m4s")
        );
        assert_eq!(pl.rendition_reports[0].last_part, Some(0));
        let sc = pl.server_control.expect("server control");
        assert!(sc.can_block_reload);
        assert_eq!(sc.can_skip_until, Some(12.0));
        assert_eq!(pl.part_target, Some(0.33334));
    }

    #[test]
    fn rejects_broken_playlists() {
        assert!(parse_media("no header").is_err());
        assert!(parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg.m4s\n").is_err());
        assert!(parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:x,\nseg\n").is_err());
        assert!(
            parse_media("#EXTM3U\n#EXTINF:2,\nseg\n").is_err(),
            "no target duration"
        );
        assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"a\"\nx.m3u8\n").is_err());
        assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").is_err());
    }

    #[test]
    fn a_quote_inside_an_unquoted_value_is_refused() {
        // Found by the `playlist` fuzz target: it parsed, then rendered as `URI="E"par"`.
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
                    #EXT-X-PART:DURATION=0.5,URI=E\"par\n";
        let e = parse_media(text).expect_err("stray quote");
        assert!(e.to_string().contains("stray"), "{e}");
    }

    #[test]
    fn quoted_attributes_may_hold_commas() {
        let m = parse_master(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360\nlow.m3u8\n",
        )
        .expect("parse");
        assert_eq!(m.variants[0].codecs, "avc1.64001f,mp4a.40.2");
        assert_eq!(m.variants[0].resolution, Some((640, 360)));
    }

    fn media_strategy() -> impl Strategy<Value = MediaPlaylist> {
        proptest::collection::vec((1u32..4000, 0u32..4, any::<bool>()), 1..20).prop_map(|segs| {
            let mut pl = MediaPlaylist::live(4, 0.5, "init.mp4");
            for (i, (ms, parts, disc)) in segs.into_iter().enumerate() {
                let mut s = Segment::new(format!("seg{i}.m4s"), f64::from(ms) / 1000.0);
                s.discontinuity = disc;
                s.parts = (0..parts)
                    .map(|p| Part::new(format!("part{i}.{p}.m4s"), 0.5, p == 0))
                    .collect();
                pl.segments.push(s);
            }
            pl.target_duration = pl.required_target_duration();
            pl.preload_hint = Some(PreloadHint {
                uri: "next.m4s".into(),
            });
            pl
        })
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(pl in media_strategy()) {
            let parsed = parse_media(&pl.render()).expect("parse rendered");
            prop_assert_eq!(parsed, pl);
        }

        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_media(&text);
            let _ = parse_master(&text);
        }
    }
}
