//! Init segment (`ftyp` + `moov`) parser: one [`TrackInfo`] per `trak` with id (`tkhd`,
//! ISO/IEC 14496-12 §8.3.2), timescale (`mdhd` §8.4.2), kind (`hdlr` §8.4.3), coded size and
//! codec from the first `stsd` sample entry (§8.5.2, visual §12.1.3, audio §12.2.3), and the
//! `mvex/trex` fragment defaults (§8.8.3).
//!
//! Codec strings follow RFC 6381 §3.3: `avcC` / `hvcC` (ISO/IEC 14496-15 §5.3.3, §8.3.3,
//! Annex E), `av1C`, `vpcC`, and `esds` (ISO/IEC 14496-1 §7.2.6 descriptors, ISO/IEC 14496-3
//! §1.6.2.1 AudioSpecificConfig). They feed the HLS `CODECS` attribute.

use super::{child, fourcc, require, Boxes, Fmp4Error, Reader};

/// What a track carries, from its `hdlr` handler type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub track_id: u32,
    pub kind: TrackKind,
    /// Ticks per second of every time value of this track (`mdhd`).
    pub timescale: u32,
    /// RFC 6381 codecs string, e.g. `avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`. Best effort
    /// for codecs without a known configuration box (the sample entry four-cc).
    pub codec: String,
    /// Coded size from the visual sample entry; 0 for non-video tracks.
    pub width: u16,
    pub height: u16,
    /// `trex` defaults (`mvex`), used when a fragment gives neither per-sample nor `tfhd` values.
    pub default_sample_flags: Option<u32>,
    pub default_sample_duration: Option<u32>,
    pub default_sample_size: Option<u32>,
}

/// Track table of an init segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitInfo {
    pub tracks: Vec<TrackInfo>,
}

impl InitInfo {
    /// First video track.
    pub fn video(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }

    /// First audio track.
    pub fn audio(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Audio)
    }

    /// Track by id.
    pub fn track(&self, track_id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// HLS `CODECS` value: video codecs first, then audio, e.g. `avc1.64001f,mp4a.40.2`.
    /// Other tracks (timed metadata, subtitles) are left out because players match this list
    /// against media they can decode.
    pub fn codecs_string(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        for kind in [TrackKind::Video, TrackKind::Audio] {
            for t in self.tracks.iter().filter(|t| t.kind == kind) {
                if !t.codec.is_empty() && !out.contains(&t.codec.as_str()) {
                    out.push(&t.codec);
                }
            }
        }
        out.join(",")
    }
}

/// Parse an init segment: `ftyp` + `moov` concatenated (or `moov` alone). Boxes before `moov`
/// are skipped and bytes after it are ignored, so a whole file prefix works too.
pub fn parse_init(init: &[u8]) -> Result<InitInfo, Fmp4Error> {
    let mut moov = None;
    for b in Boxes::new(init) {
        let (ty, payload) = b?;
        if &ty == b"moov" {
            moov = Some(payload);
            break;
        }
    }
    let moov = moov.ok_or(Fmp4Error::MissingBox("moov"))?;

    let mut tracks: Vec<TrackInfo> = Vec::new();
    let mut trexes = Vec::new();
    for b in Boxes::new(moov) {
        let (ty, payload) = b?;
        match &ty {
            b"trak" => {
                let t = parse_trak(payload)?;
                if tracks.iter().any(|o| o.track_id == t.track_id) {
                    return Err(Fmp4Error::Invalid("duplicate track id in moov"));
                }
                tracks.push(t);
            }
            b"mvex" => {
                for c in Boxes::new(payload) {
                    let (cty, cpayload) = c?;
                    if &cty == b"trex" {
                        trexes.push(parse_trex(cpayload)?);
                    }
                }
            }
            _ => {}
        }
    }
    for t in &mut tracks {
        if let Some(x) = trexes.iter().find(|x| x.track_id == t.track_id) {
            t.default_sample_duration = Some(x.duration);
            t.default_sample_size = Some(x.size);
            t.default_sample_flags = Some(x.flags);
        }
    }
    Ok(InitInfo { tracks })
}

struct Trex {
    track_id: u32,
    duration: u32,
    size: u32,
    flags: u32,
}

/// `trex` (§8.8.3).
fn parse_trex(payload: &[u8]) -> Result<Trex, Fmp4Error> {
    let mut r = Reader::new(payload, "trex");
    r.full_box()?;
    let track_id = r.u32()?;
    r.skip(4)?; // default_sample_description_index
    Ok(Trex {
        track_id,
        duration: r.u32()?,
        size: r.u32()?,
        flags: r.u32()?,
    })
}

/// `trak`: `tkhd` for the id, `mdia/mdhd` timescale, `mdia/hdlr` kind, `stsd` codec and size.
fn parse_trak(trak: &[u8]) -> Result<TrackInfo, Fmp4Error> {
    let mut r = Reader::new(require(trak, b"tkhd", "tkhd")?, "tkhd");
    let (version, _) = r.full_box()?;
    // creation_time + modification_time: 64-bit in version 1, 32-bit otherwise.
    r.skip(if version == 1 { 16 } else { 8 })?;
    let track_id = r.u32()?;

    let mdia = require(trak, b"mdia", "mdia")?;
    let mut r = Reader::new(require(mdia, b"mdhd", "mdhd")?, "mdhd");
    let (version, _) = r.full_box()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        // Every duration is divided by it downstream.
        return Err(Fmp4Error::Invalid("mdhd timescale is 0"));
    }

    let mut r = Reader::new(require(mdia, b"hdlr", "hdlr")?, "hdlr");
    r.full_box()?;
    r.skip(4)?; // pre_defined
    let kind = match &r.array::<4>()? {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        _ => TrackKind::Other,
    };

    let minf = require(mdia, b"minf", "minf")?;
    let stbl = require(minf, b"stbl", "stbl")?;
    let mut r = Reader::new(require(stbl, b"stsd", "stsd")?, "stsd");
    r.full_box()?;
    let _entry_count = r.u32()?;
    // Only the first sample entry matters: CMAF allows one per track.
    let (entry_type, entry) = Boxes::new(r.rest())
        .next()
        .ok_or(Fmp4Error::MissingBox("stsd sample entry"))??;
    let (codec, width, height) = parse_sample_entry(&entry_type, entry)?;

    Ok(TrackInfo {
        track_id,
        kind,
        timescale,
        codec,
        width,
        height,
        default_sample_flags: None,
        default_sample_duration: None,
        default_sample_size: None,
    })
}

/// Codec string and (for video) coded size from a sample entry.
fn parse_sample_entry(ty: &[u8; 4], entry: &[u8]) -> Result<(String, u16, u16), Fmp4Error> {
    match ty {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" | b"vp09" => {
            // VisualSampleEntry (§12.1.3): SampleEntry's 6 reserved + data_reference_index,
            // then pre_defined/reserved (16 bytes), width, height, then 50 bytes of
            // resolution, frame_count, compressorname, depth before the child boxes.
            let mut r = Reader::new(entry, "visual sample entry");
            r.skip(8 + 16)?;
            let width = r.u16()?;
            let height = r.u16()?;
            r.skip(50)?;
            let children = r.rest();
            let codec = match ty {
                b"avc1" | b"avc3" => avc_codec(ty, require(children, b"avcC", "avcC")?)?,
                b"hvc1" | b"hev1" => hevc_codec(ty, require(children, b"hvcC", "hvcC")?)?,
                b"av01" => match child(children, b"av1C")? {
                    Some(c) => av1_codec(c)?,
                    None => "av01".to_owned(),
                },
                _ => match child(children, b"vpcC")? {
                    Some(c) => vp9_codec(c)?,
                    None => "vp09".to_owned(),
                },
            };
            Ok((codec, width, height))
        }
        b"mp4a" => {
            // AudioSampleEntry (§12.2.3): SampleEntry (8), reserved[2] (8) whose first u16 is
            // the QuickTime sound description version, channelcount, samplesize, pre_defined,
            // reserved, samplerate (12). QuickTime v1/v2 descriptions append 16/36 bytes.
            let mut r = Reader::new(entry, "audio sample entry");
            r.skip(8)?;
            let qt_version = r.u16()?;
            r.skip(6 + 12)?;
            match qt_version {
                1 => r.skip(16)?,
                2 => r.skip(36)?,
                _ => {}
            }
            let esds = require(r.rest(), b"esds", "esds")?;
            Ok((esds_codec(esds)?, 0, 0))
        }
        // RFC 6381 / registered codecs parameter spellings of common audio entries.
        b"Opus" => Ok(("opus".to_owned(), 0, 0)),
        b"fLaC" => Ok(("flac".to_owned(), 0, 0)),
        other => Ok((String::from_utf8_lossy(other).trim().to_owned(), 0, 0)),
    }
}

/// `avc1.PPCCLL` from `avcC` profile, constraint flags and level (RFC 6381 §3.3).
fn avc_codec(ty: &[u8; 4], avcc: &[u8]) -> Result<String, Fmp4Error> {
    let mut r = Reader::new(avcc, "avcC");
    r.skip(1)?; // configurationVersion
    let profile = r.u8()?;
    let constraints = r.u8()?;
    let level = r.u8()?;
    Ok(format!(
        "{}.{profile:02x}{constraints:02x}{level:02x}",
        fourcc(ty)
    ))
}

/// `hvc1.[A-C]P.C.TL.B0[.xx]` per ISO/IEC 14496-15 Annex E from `hvcC`.
fn hevc_codec(ty: &[u8; 4], hvcc: &[u8]) -> Result<String, Fmp4Error> {
    let mut r = Reader::new(hvcc, "hvcC");
    r.skip(1)?; // configurationVersion
    let b = r.u8()?;
    let space = match b >> 6 {
        0 => "",
        1 => "A",
        2 => "B",
        _ => "C",
    };
    let tier = if b & 0x20 != 0 { 'H' } else { 'L' };
    let profile_idc = b & 0x1f;
    // Annex E writes the compatibility flags in reverse bit order.
    let compat = r.u32()?.reverse_bits();
    let constraints = r.array::<6>()?;
    let level = r.u8()?;
    let mut s = format!(
        "{}.{space}{profile_idc}.{compat:X}.{tier}{level}",
        fourcc(ty)
    );
    // Trailing zero constraint bytes may be omitted (Annex E); the rest are dot-separated hex.
    let used = constraints
        .iter()
        .rposition(|&c| c != 0)
        .map_or(0, |i| i + 1);
    for c in &constraints[..used] {
        s.push_str(&format!(".{c:X}"));
    }
    Ok(s)
}

/// `av01.P.LLT.DD` from `av1C` (AV1 Codec ISO Media File Format Binding, codecs parameter).
fn av1_codec(av1c: &[u8]) -> Result<String, Fmp4Error> {
    let mut r = Reader::new(av1c, "av1C");
    r.skip(1)?; // marker + version
    let b1 = r.u8()?;
    let b2 = r.u8()?;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Ok(format!(
        "av01.{}.{:02}{tier}.{depth:02}",
        b1 >> 5,
        b1 & 0x1f
    ))
}

/// `vp09.PP.LL.DD` from `vpcC` (VP Codec ISO Media File Format Binding).
fn vp9_codec(vpcc: &[u8]) -> Result<String, Fmp4Error> {
    let mut r = Reader::new(vpcc, "vpcC");
    r.full_box()?;
    let profile = r.u8()?;
    let level = r.u8()?;
    let depth = r.u8()? >> 4;
    Ok(format!("vp09.{profile:02}.{level:02}.{depth:02}"))
}

/// One ISO/IEC 14496-1 descriptor: tag and body. The length is the "expandable" size: up to
/// four bytes of 7 bits, high bit set on all but the last (ffmpeg pads to four bytes).
fn read_descriptor<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), Fmp4Error> {
    let tag = r.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, r.take(len)?))
}

/// `mp4a.OO[.A]` from `esds`: ES_Descriptor (tag 3) → DecoderConfigDescriptor (tag 4) with
/// objectTypeIndication → DecoderSpecificInfo (tag 5) with the AudioSpecificConfig whose first
/// 5 bits (or 6 more after the escape value 31) are the audio object type (RFC 6381 §3.3).
fn esds_codec(esds: &[u8]) -> Result<String, Fmp4Error> {
    let mut r = Reader::new(esds, "esds");
    r.full_box()?;
    let (tag, es) = read_descriptor(&mut r)?;
    if tag != 0x03 {
        return Err(Fmp4Error::Invalid(
            "esds does not start with an ES_Descriptor",
        ));
    }
    let mut r = Reader::new(es, "ES_Descriptor");
    r.skip(2)?; // ES_ID
    let flags = r.u8()?;
    if flags & 0x80 != 0 {
        r.skip(2)?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let url_len = r.u8()?;
        r.skip(usize::from(url_len))?;
    }
    if flags & 0x20 != 0 {
        r.skip(2)?; // OCR_ES_Id
    }
    let dcd = loop {
        if r.remaining() == 0 {
            return Err(Fmp4Error::MissingBox("DecoderConfigDescriptor"));
        }
        let (tag, body) = read_descriptor(&mut r)?;
        if tag == 0x04 {
            break body;
        }
    };
    let mut r = Reader::new(dcd, "DecoderConfigDescriptor");
    let oti = r.u8()?;
    // streamType/upStream (1), bufferSizeDB (3), maxBitrate (4), avgBitrate (4).
    r.skip(12)?;
    if oti != 0x40 {
        // Not MPEG-4 Audio: RFC 6381 has no third element for these object types.
        return Ok(format!("mp4a.{oti:02x}"));
    }
    while r.remaining() > 0 {
        let (tag, dsi) = read_descriptor(&mut r)?;
        if tag == 0x05 {
            let b0 = *dsi
                .first()
                .ok_or(Fmp4Error::Truncated("AudioSpecificConfig"))?;
            let mut aot = b0 >> 3;
            if aot == 31 {
                let b1 = *dsi
                    .get(1)
                    .ok_or(Fmp4Error::Truncated("AudioSpecificConfig"))?;
                aot = 32 + (((b0 & 0x07) << 3) | (b1 >> 5));
            }
            return Ok(format!("mp4a.40.{aot}"));
        }
    }
    // No DecoderSpecificInfo: the object type is unknown, so say only "MPEG-4 Audio".
    Ok("mp4a.40".to_owned())
}
