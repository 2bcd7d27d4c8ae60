//! Media playlist: segments of one rendition, with the Low-Latency HLS tags (partial segments,
//! preload hint, rendition reports, server control, delta updates).
//!
//! RFC 8216 §4.3.2–4.3.3 (`EXTINF`, `EXT-X-MAP`, `EXT-X-PROGRAM-DATE-TIME`, `EXT-X-TARGETDURATION`,
//! `EXT-X-ENDLIST`), rfc8216bis §4.4.3.7–4.4.3.8, §4.4.4.9, §4.4.5.2–4.4.5.4 (LL-HLS tags) and
//! §8 (version compatibility). [`MediaPlaylist::validate`] enforces the LL-HLS rules of
//! DESIGN.md where they are spec requirements; DESIGN's stricter targets (3 x PART-TARGET hold
//! back) are the constructors' defaults.

use std::fmt::{self, Write};

use super::render::{Attrs, COARSE_DECIMALS, DURATION_DECIMALS, PART_TARGET_DECIMALS};

/// `EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// The playlist never changes.
    Vod,
    /// Segments are only appended (a VOD upload packaged while it transcodes).
    Event,
}

impl PlaylistType {
    fn as_str(self) -> &'static str {
        match self {
            PlaylistType::Vod => "VOD",
            PlaylistType::Event => "EVENT",
        }
    }
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION`; see [`MediaPlaylist::required_version`].
    pub version: u8,
    /// `EXT-X-TARGETDURATION` in whole seconds.
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE`: media sequence number of `segments[0]`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`, rendered when non-zero.
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
    pub independent_segments: bool,
    /// `EXT-X-MAP` URI of the CMAF init segment.
    pub map_uri: Option<String>,
    pub server_control: Option<ServerControl>,
    /// `EXT-X-PART-INF:PART-TARGET` in seconds.
    pub part_target: Option<f64>,
    /// Complete segments, oldest first (including the ones a delta update skips).
    pub segments: Vec<Segment>,
    /// Parts of the segment still being produced (media sequence number
    /// `media_sequence + segments.len()`), rendered after the last `EXTINF`.
    pub pending_parts: Vec<Part>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART`. An `Option` because a playlist carries at most one.
    pub preload_hint: Option<PreloadHint>,
    pub rendition_reports: Vec<RenditionReport>,
    /// When > 0, render a delta update: `EXT-X-SKIP:SKIPPED-SEGMENTS=n` replaces the first `n`
    /// segments.
    pub skipped_segments: u64,
    /// `EXT-X-ENDLIST`.
    pub end_list: bool,
}

/// `EXT-X-SERVER-CONTROL`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerControl {
    /// `CAN-BLOCK-RELOAD=YES`: the edge holds `_HLS_msn` requests.
    pub can_block_reload: bool,
    /// Seconds from the live edge a low-latency client starts at.
    pub part_hold_back: Option<f64>,
    /// Same for clients not using parts.
    pub hold_back: Option<f64>,
    /// Skip Boundary in seconds: delta updates may skip segments older than this.
    pub can_skip_until: Option<f64>,
}

/// One complete media segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    pub uri: String,
    /// `EXTINF` seconds.
    pub duration: f64,
    /// `EXTINF` title (usually empty).
    pub title: String,
    /// `EXT-X-PROGRAM-DATE-TIME`, preformatted RFC 3339 with milliseconds.
    pub program_date_time: Option<String>,
    /// `EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// Partial segments of this segment, rendered before its `EXTINF` (servers drop them
    /// once the segment is far enough from the live edge).
    pub parts: Vec<Part>,
}

impl Segment {
    /// A segment without title, date, discontinuity or parts.
    pub fn new(uri: impl Into<String>, duration: f64) -> Self {
        Self {
            uri: uri.into(),
            duration,
            ..Self::default()
        }
    }
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Part {
    pub uri: String,
    /// Seconds.
    pub duration: f64,
    /// `INDEPENDENT=YES`: starts with a sync sample.
    pub independent: bool,
    /// `GAP=YES`: the part is unavailable.
    pub gap: bool,
}

impl Part {
    /// A non-gap part.
    pub fn new(uri: impl Into<String>, duration: f64, independent: bool) -> Self {
        Self {
            uri: uri.into(),
            duration,
            independent,
            gap: false,
        }
    }
}

/// `EXT-X-PRELOAD-HINT:TYPE=PART` (byte ranges are not used: parts are separate objects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    pub uri: String,
}

/// `EXT-X-RENDITION-REPORT` for another rendition of the same stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of that rendition's media playlist, relative to this one.
    pub uri: String,
    pub last_msn: u64,
    pub last_part: Option<u64>,
}

impl MediaPlaylist {
    /// A finished VOD playlist: version 6 (the lowest allowing `EXT-X-MAP` without
    /// `EXT-X-I-FRAMES-ONLY`, RFC 8216 §7), `PLAYLIST-TYPE:VOD`, independent segments,
    /// `EXT-X-ENDLIST`, no LL-HLS tags.
    pub fn vod(target_duration: u64, map_uri: impl Into<String>) -> Self {
        Self {
            version: 6,
            target_duration,
            media_sequence: 0,
            discontinuity_sequence: 0,
            playlist_type: Some(PlaylistType::Vod),
            independent_segments: true,
            map_uri: Some(map_uri.into()),
            server_control: None,
            part_target: None,
            segments: Vec::new(),
            pending_parts: Vec::new(),
            preload_hint: None,
            rendition_reports: Vec::new(),
            skipped_segments: 0,
            end_list: true,
        }
    }

    /// A live LL-HLS playlist with DESIGN's defaults: blocking reload, `PART-HOLD-BACK` of
    /// 3 x `part_target` (rounded up to the rendered millisecond so rounding cannot take it
    /// below), `CAN-SKIP-UNTIL` of 6 x `target_duration`. Version 9 because advertising
    /// `CAN-SKIP-UNTIL` means the edge serves delta updates (`EXT-X-SKIP` needs 9,
    /// rfc8216bis §8) and full and delta responses should not disagree on the version.
    pub fn live(target_duration: u64, part_target: f64, map_uri: impl Into<String>) -> Self {
        // Rounded up to the millisecond the attribute is written with; the tolerance keeps
        // float noise (3 × 0.2 = 0.6000000000000001) from adding a millisecond.
        let part_hold_back = (3.0 * part_target * 1000.0 - 1e-6).ceil() / 1000.0;
        Self {
            version: 9,
            playlist_type: None,
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back: Some(part_hold_back),
                hold_back: None,
                can_skip_until: Some(6.0 * target_duration as f64),
            }),
            part_target: Some(part_target),
            end_list: false,
            ..Self::vod(target_duration, map_uri)
        }
    }

    /// The playlist text. Does not validate; call [`MediaPlaylist::validate`] first.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

fn write_part<W: Write>(w: &mut W, p: &Part) -> fmt::Result {
    let mut a = Attrs::new(w, "#EXT-X-PART")?;
    a.decimal("DURATION", p.duration, DURATION_DECIMALS)?
        .quoted("URI", &p.uri)?;
    if p.independent {
        a.enumerated("INDEPENDENT", "YES")?;
    }
    if p.gap {
        a.enumerated("GAP", "YES")?;
    }
    a.end()
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#EXTM3U\n")?;
        writeln!(f, "#EXT-X-VERSION:{}", self.version)?;
        writeln!(f, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        writeln!(f, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if self.discontinuity_sequence > 0 {
            writeln!(
                f,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            )?;
        }
        if let Some(t) = self.playlist_type {
            writeln!(f, "#EXT-X-PLAYLIST-TYPE:{}", t.as_str())?;
        }
        if self.independent_segments {
            f.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        if let Some(sc) = &self.server_control {
            // An attribute list cannot be empty, so an all-default control renders nothing.
            if sc.can_block_reload
                || sc.can_skip_until.is_some()
                || sc.hold_back.is_some()
                || sc.part_hold_back.is_some()
            {
                let mut a = Attrs::new(f, "#EXT-X-SERVER-CONTROL")?;
                if sc.can_block_reload {
                    a.enumerated("CAN-BLOCK-RELOAD", "YES")?;
                }
                if let Some(v) = sc.can_skip_until {
                    a.decimal("CAN-SKIP-UNTIL", v, COARSE_DECIMALS)?;
                }
                if let Some(v) = sc.hold_back {
                    a.decimal("HOLD-BACK", v, COARSE_DECIMALS)?;
                }
                if let Some(v) = sc.part_hold_back {
                    a.decimal("PART-HOLD-BACK", v, COARSE_DECIMALS)?;
                }
                a.end()?;
            }
        }
        if let Some(pt) = self.part_target {
            Attrs::new(f, "#EXT-X-PART-INF")?
                .decimal("PART-TARGET", pt, PART_TARGET_DECIMALS)?
                .end()?;
        }
        if let Some(map) = &self.map_uri {
            // Before EXT-X-SKIP: it applies to every following segment, skipped or not.
            Attrs::new(f, "#EXT-X-MAP")?.quoted("URI", map)?.end()?;
        }
        if self.skipped_segments > 0 {
            Attrs::new(f, "#EXT-X-SKIP")?
                .int("SKIPPED-SEGMENTS", self.skipped_segments)?
                .end()?;
        }
        let skip = usize::try_from(self.skipped_segments).unwrap_or(usize::MAX);
        for seg in self.segments.iter().skip(skip) {
            if seg.discontinuity {
                f.write_str("#EXT-X-DISCONTINUITY\n")?;
            }
            if let Some(pdt) = &seg.program_date_time {
                writeln!(f, "#EXT-X-PROGRAM-DATE-TIME:{pdt}")?;
            }
            for p in &seg.parts {
                write_part(f, p)?;
            }
            writeln!(
                f,
                "#EXTINF:{:.prec$},{}",
                seg.duration,
                seg.title,
                prec = DURATION_DECIMALS
            )?;
            writeln!(f, "{}", seg.uri)?;
        }
        for p in &self.pending_parts {
            write_part(f, p)?;
        }
        if let Some(hint) = &self.preload_hint {
            Attrs::new(f, "#EXT-X-PRELOAD-HINT")?
                .enumerated("TYPE", "PART")?
                .quoted("URI", &hint.uri)?
                .end()?;
        }
        for r in &self.rendition_reports {
            let mut a = Attrs::new(f, "#EXT-X-RENDITION-REPORT")?;
            a.quoted("URI", &r.uri)?.int("LAST-MSN", r.last_msn)?;
            if let Some(p) = r.last_part {
                a.int("LAST-PART", p)?;
            }
            a.end()?;
        }
        if self.end_list {
            f.write_str("#EXT-X-ENDLIST\n")?;
        }
        Ok(())
    }
}

/// Playlists shared by the rendering and validation tests.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    pub(crate) fn vod() -> MediaPlaylist {
        let mut p = MediaPlaylist::vod(2, "init.mp4");
        p.segments = vec![
            Segment::new("seg0.m4s", 2.0),
            Segment::new("seg1.m4s", 2.0),
            Segment::new("seg2.m4s", 1.466_67),
        ];
        p
    }

    /// Rendition `720p` of a live stream at msn 100..=107 with 0.5 s parts; parts kept for the
    /// last two segments, two parts of msn 108 published, the third hinted.
    pub(crate) fn live() -> MediaPlaylist {
        let mut p = MediaPlaylist::live(2, 0.5, "init.mp4");
        p.media_sequence = 100;
        let parts = |msn: u64| -> Vec<Part> {
            (0..4)
                .map(|i| Part::new(format!("part{msn}.{i}.m4s"), 0.5, i % 2 == 0))
                .collect()
        };
        for i in 0..8u64 {
            let msn = 100 + i;
            let mut s = Segment::new(format!("seg{msn}.m4s"), 2.0);
            s.program_date_time = Some(format!("2025-01-01T00:00:{:02}.000Z", i * 2));
            if i >= 6 {
                s.parts = parts(msn);
            }
            p.segments.push(s);
        }
        p.pending_parts = vec![
            Part::new("part108.0.m4s", 0.5, true),
            Part::new("part108.1.m4s", 0.5, false),
        ];
        p.preload_hint = Some(PreloadHint {
            uri: "part108.2.m4s".into(),
        });
        p.rendition_reports = vec![
            RenditionReport {
                uri: "../1080p/index.m3u8".into(),
                last_msn: 108,
                last_part: Some(1),
            },
            RenditionReport {
                uri: "../480p/index.m3u8".into(),
                last_msn: 108,
                last_part: Some(1),
            },
        ];
        p
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{live, vod};
    use super::*;
    use crate::playlist::PlaylistError;

    #[test]
    fn vod_snapshot() {
        let p = vod();
        assert_eq!(p.required_target_duration(), 2);
        p.validate().unwrap();
        insta::assert_snapshot!("media_vod", p.render());
    }

    #[test]
    fn ll_hls_live_snapshot() {
        let mut p = live();
        p.server_control.as_mut().unwrap().hold_back = Some(6.0);
        p.validate().unwrap();
        insta::assert_snapshot!("media_ll_hls_live", p.render());
    }

    #[test]
    fn delta_update_snapshot() {
        let mut p = live();
        // 8 segments of 2 s with CAN-SKIP-UNTIL=12: the oldest two may go.
        p.skipped_segments = 2;
        p.validate().unwrap();
        let text = p.render();
        assert!(!text.contains("seg101.m4s") && text.contains("seg102.m4s"));
        insta::assert_snapshot!("media_delta_update", text);
    }

    #[test]
    fn discontinuity_title_and_event_type() {
        let mut p = MediaPlaylist::vod(4, "init.mp4");
        p.playlist_type = Some(PlaylistType::Event);
        p.end_list = false;
        p.discontinuity_sequence = 3;
        let mut s = Segment::new("a.m4s", 4.0);
        s.title = "first".into();
        s.discontinuity = true;
        p.segments.push(s);
        p.validate().unwrap();
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-DISCONTINUITY\n\
             #EXTINF:4.00000,first\na.m4s\n"
        );
    }

    #[test]
    fn gap_part_and_empty_server_control() {
        let mut p = MediaPlaylist::live(2, 1.0, "i.mp4");
        p.server_control = Some(ServerControl::default());
        p.pending_parts.push(Part {
            gap: true,
            ..Part::new("p.m4s", 1.0, false)
        });
        let text = p.render();
        assert!(!text.contains("SERVER-CONTROL"));
        assert!(text.contains("#EXT-X-PART:DURATION=1.00000,URI=\"p.m4s\",GAP=YES\n"));
        // Without PART-HOLD-BACK the parts are not allowed.
        assert_eq!(p.validate(), Err(PlaylistError::MissingPartHoldBack));
    }

    #[test]
    fn live_constructor_defaults_meet_design() {
        let p = MediaPlaylist::live(2, 0.33334, "init.mp4");
        let sc = p.server_control.as_ref().unwrap();
        assert_eq!(sc.part_hold_back, Some(1.001));
        assert_eq!(sc.can_skip_until, Some(12.0));
        assert!(sc.can_block_reload);
        p.validate().unwrap();
        assert!(p.render().contains("#EXT-X-PART-INF:PART-TARGET=0.33334\n"));
    }

    // ---- one test per validate error ----------------------------------------------------
}
