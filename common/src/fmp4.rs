//! Fragmented MP4 (CMAF) box reader: the packager's view of ffmpeg's
//! `-movflags cmaf+frag_keyframe+empty_moov+default_base_moof` output.
//!
//! Owns three sans-IO pieces, none of which touch a file or a pipe:
//! - [`read_box_header`] and [`BoxSplitter`]: cut a byte stream into whole top-level boxes
//!   (ISO/IEC 14496-12 §4.2 box structure, 32-bit size, 64-bit `largesize`, `uuid` user type).
//! - [`parse_init`]: track table of an init segment (`ftyp` + `moov`): `tkhd` (§8.3.2),
//!   `mdhd` (§8.4.2), `hdlr` (§8.4.3), `stsd` sample entries (§8.5.2, §12.1.3 visual, §12.2.3
//!   audio) and `mvex/trex` defaults (§8.8.3). Codec parameters come from `avcC` / `hvcC`
//!   (ISO/IEC 14496-15 §5.3.3, §8.3.3, codecs parameter per Annex E), `av1C`, `vpcC`, and `esds`
//!   (ISO/IEC 14496-1 §7.2.6 descriptors, ISO/IEC 14496-3 §1.6.2.1 AudioSpecificConfig), rendered
//!   as RFC 6381 `codecs` strings for the HLS `CODECS` attribute.
//! - [`parse_fragment`]: timing of one fragment (`moof` [+ `mdat`]): `mfhd` (§8.8.5), `tfhd`
//!   (§8.8.7), `trun` (§8.8.8), `tfdt` (§8.8.12), with the §8.8.3.1 sample-flags defaulting
//!   chain (trun → tfhd → trex) deciding whether the fragment starts with a sync sample.
//!
//! Everything read from the input is bounds-checked; malformed input yields [`Fmp4Error`],
//! never a panic (property-tested below).

use bytes::{Bytes, BytesMut};

/// Default cap on one top-level box in [`BoxSplitter`]. A 2 s 1080p fragment is a few MiB; a
/// declared size far beyond that means a corrupt stream, and buffering it would let one bad
/// header make the packager allocate without bound.
pub const DEFAULT_MAX_BOX_SIZE: u64 = 256 * 1024 * 1024;

/// `sample_is_non_sync_sample` in the sample flags word (§8.8.3.1).
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// Why a box stream, init segment or fragment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// The size field is smaller than the header it belongs to.
    #[error("box '{}' declares size {size}, smaller than its {header_len}-byte header", fourcc(.box_type))]
    InvalidSize {
        box_type: [u8; 4],
        size: u64,
        header_len: usize,
    },
    /// Size 0 means "extends to end of file", which has no end in a pipe.
    #[error("box '{}' has size 0 (extends to end of file), unsupported in a stream", fourcc(.0))]
    SizeToEnd([u8; 4]),
    /// A box larger than the splitter's guard.
    #[error("box '{}' is {size} bytes, over the {max}-byte limit", fourcc(.box_type))]
    TooLarge {
        box_type: [u8; 4],
        size: u64,
        max: u64,
    },
    /// A child box claims more bytes than its parent holds.
    #[error("box '{}' declares {declared} bytes but only {available} are present", fourcc(.box_type))]
    TruncatedBox {
        box_type: [u8; 4],
        declared: u64,
        available: usize,
    },
    /// A field inside the named structure runs past its end.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// A box the format requires is absent.
    #[error("required box '{0}' is missing")]
    MissingBox(&'static str),
    /// A fragment names a track the init segment does not declare.
    #[error("fragment references track {0}, which the init segment does not declare")]
    UnknownTrack(u32),
    /// A structurally readable but semantically invalid value.
    #[error("invalid fMP4: {0}")]
    Invalid(&'static str),
}

/// Printable form of a four-character code for error messages (non-ASCII bytes escaped).
fn fourcc(t: &[u8; 4]) -> String {
    t.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Header of one box (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub box_type: [u8; 4],
    /// Bytes before the payload: 8, 16 with `largesize`, plus 16 for a `uuid` user type.
    pub header_len: usize,
    /// Whole box including the header.
    pub total_len: u64,
}

impl BoxHeader {
    /// Payload length (the box minus its header).
    pub fn payload_len(&self) -> u64 {
        // header_len <= total_len is checked when the header is parsed.
        self.total_len - self.header_len as u64
    }
}

/// Parse a box header at the start of `buf`.
///
/// Handles 32-bit sizes, `size == 1` with a 64-bit `largesize`, and the 16-byte `uuid` user
/// type. `size == 0` ("to end of file") is an error: a stream has no end to extend to.
/// `Ok(None)` means more bytes are needed.
pub fn read_box_header(buf: &[u8]) -> Result<Option<BoxHeader>, Fmp4Error> {
    parse_header(buf, None)
}

/// Shared header parser. `to_end` is the length of the enclosing container when size 0 is
/// allowed (inside an in-memory buffer the "end" is known), `None` in a stream.
fn parse_header(buf: &[u8], to_end: Option<usize>) -> Result<Option<BoxHeader>, Fmp4Error> {
    let Some(head) = buf.get(..8) else {
        return Ok(None);
    };
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let box_type = [head[4], head[5], head[6], head[7]];
    let (mut header_len, total_len) = match size32 {
        0 => match to_end {
            Some(len) => (8usize, len as u64),
            None => return Err(Fmp4Error::SizeToEnd(box_type)),
        },
        1 => {
            let Some(large) = buf.get(8..16) else {
                return Ok(None);
            };
            let mut b = [0u8; 8];
            b.copy_from_slice(large);
            (16, u64::from_be_bytes(b))
        }
        n => (8, u64::from(n)),
    };
    if &box_type == b"uuid" {
        header_len += 16;
        if buf.len() < header_len {
            return Ok(None);
        }
    }
    if total_len < header_len as u64 {
        return Err(Fmp4Error::InvalidSize {
            box_type,
            size: total_len,
            header_len,
        });
    }
    Ok(Some(BoxHeader {
        box_type,
        header_len,
        total_len,
    }))
}

/// Incremental splitter: push bytes as they arrive from the pipe, pop whole top-level boxes.
///
/// Boxes come out as zero-copy [`Bytes`] views of the internal buffer, so the packager can keep
/// or upload them without another copy. After an error the stream is desynchronised (box
/// boundaries are lost), so every later [`BoxSplitter::next_box`] returns the same error.
#[derive(Debug)]
pub struct BoxSplitter {
    buf: BytesMut,
    max_box_size: u64,
    failed: Option<Fmp4Error>,
}

impl Default for BoxSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl BoxSplitter {
    /// A splitter with the [`DEFAULT_MAX_BOX_SIZE`] guard.
    pub fn new() -> Self {
        Self::with_max_box_size(DEFAULT_MAX_BOX_SIZE)
    }

    /// A splitter that rejects any box larger than `max_box_size` bytes.
    pub fn with_max_box_size(max_box_size: u64) -> Self {
        Self {
            buf: BytesMut::new(),
            max_box_size,
            failed: None,
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as a box.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Pop the next complete top-level box (header and whole box bytes), or `Ok(None)` until
    /// enough bytes have been pushed.
    pub fn next_box(&mut self) -> Result<Option<(BoxHeader, Bytes)>, Fmp4Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_next() {
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<(BoxHeader, Bytes)>, Fmp4Error> {
        let Some(header) = read_box_header(&self.buf)? else {
            return Ok(None);
        };
        // Checked on the header alone so a bogus size fails before we buffer towards it.
        if header.total_len > self.max_box_size {
            return Err(Fmp4Error::TooLarge {
                box_type: header.box_type,
                size: header.total_len,
                max: self.max_box_size,
            });
        }
        let total = usize::try_from(header.total_len).map_err(|_| Fmp4Error::TooLarge {
            box_type: header.box_type,
            size: header.total_len,
            max: self.max_box_size,
        })?;
        if self.buf.len() < total {
            // Reserve once for the rest of the box instead of growing per pipe read.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        Ok(Some((header, self.buf.split_to(total).freeze())))
    }

    /// Call at end of stream: errors if a partial box is left over (the writer died mid-box).
    pub fn finish(&self) -> Result<(), Fmp4Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Fmp4Error::Truncated("stream (partial box at end)"))
        }
    }
}

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

/// Timing of one track within a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFragment {
    pub track_id: u32,
    /// `tfdt` decode time of the first sample, in the track timescale.
    pub base_decode_time: u64,
    pub sample_count: u32,
    /// Sum of sample durations in the track timescale (per-sample from `trun`, else the `tfhd`
    /// default, else the `trex` default).
    pub duration: u64,
    /// The first sample is a sync sample (always true for audio, where every frame is one).
    pub starts_with_sync_sample: bool,
    /// Sum of sample sizes: the bytes of this track in the fragment's `mdat`.
    pub data_size: u64,
}

/// Timing of one fragment (`moof` [+ `mdat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInfo {
    /// `mfhd` sequence number.
    pub sequence_number: u32,
    pub tracks: Vec<TrackFragment>,
}

impl FragmentInfo {
    /// The (first) `traf` of track `id`; `None` when the fragment carries no samples for it
    /// (ffmpeg ends a stream with an audio-only fragment, for example).
    pub fn track(&self, id: u32) -> Option<&TrackFragment> {
        self.tracks.iter().find(|t| t.track_id == id)
    }
}

/// Bounds-checked big-endian reader over one box payload.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Names the structure in `Truncated` errors.
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fmp4Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or(Fmp4Error::Truncated(self.what))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fmp4Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn skip(&mut self, n: usize) -> Result<(), Fmp4Error> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, Fmp4Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Fmp4Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Fmp4Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Fmp4Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// FullBox version and 24-bit flags (§4.2).
    fn full_box(&mut self) -> Result<(u8, u32), Fmp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }
}

/// Iterator over the boxes packed in a buffer (a container's payload). Stops after the first
/// error because the following box boundaries are unknown.
struct Boxes<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Boxes<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            rest: buf,
            failed: false,
        }
    }
}

impl<'a> Iterator for Boxes<'a> {
    /// Box type and payload.
    type Item = Result<([u8; 4], &'a [u8]), Fmp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = match parse_header(self.rest, Some(self.rest.len())) {
            Ok(None) => Err(Fmp4Error::Truncated("box header")),
            Err(e) => Err(e),
            Ok(Some(h)) => match usize::try_from(h.total_len) {
                Ok(total) if total <= self.rest.len() => {
                    let payload = &self.rest[h.header_len..total];
                    self.rest = &self.rest[total..];
                    Ok((h.box_type, payload))
                }
                _ => Err(Fmp4Error::TruncatedBox {
                    box_type: h.box_type,
                    declared: h.total_len,
                    available: self.rest.len(),
                }),
            },
        };
        self.failed = item.is_err();
        Some(item)
    }
}

/// First child of type `t` in a container payload.
fn child<'a>(container: &'a [u8], t: &[u8; 4]) -> Result<Option<&'a [u8]>, Fmp4Error> {
    for b in Boxes::new(container) {
        let (ty, payload) = b?;
        if &ty == t {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

fn require<'a>(
    container: &'a [u8],
    t: &'static [u8; 4],
    name: &'static str,
) -> Result<&'a [u8], Fmp4Error> {
    child(container, t)?.ok_or(Fmp4Error::MissingBox(name))
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

/// Parse one fragment: a `moof` box, optionally followed by its `mdat` (whole or partial; only
/// the `moof` is read). Boxes before the `moof` (`styp`, `sidx`, `prft`, `emsg`) are skipped.
/// If several `moof`s are concatenated, only the first is read.
pub fn parse_fragment(fragment: &[u8], init: &InitInfo) -> Result<FragmentInfo, Fmp4Error> {
    let mut moof = None;
    for b in Boxes::new(fragment) {
        let (ty, payload) = b?;
        if &ty == b"moof" {
            moof = Some(payload);
            break;
        }
    }
    let moof = moof.ok_or(Fmp4Error::MissingBox("moof"))?;

    let mut sequence_number = None;
    let mut tracks = Vec::new();
    for b in Boxes::new(moof) {
        let (ty, payload) = b?;
        match &ty {
            b"mfhd" => {
                let mut r = Reader::new(payload, "mfhd");
                r.full_box()?;
                sequence_number = Some(r.u32()?);
            }
            b"traf" => tracks.push(parse_traf(payload, init)?),
            _ => {}
        }
    }
    Ok(FragmentInfo {
        sequence_number: sequence_number.ok_or(Fmp4Error::MissingBox("mfhd"))?,
        tracks,
    })
}

/// `tfhd` fields the timing needs (§8.8.7).
struct Tfhd {
    track_id: u32,
    default_duration: Option<u32>,
    default_size: Option<u32>,
    default_flags: Option<u32>,
}

fn parse_tfhd(payload: &[u8]) -> Result<Tfhd, Fmp4Error> {
    let mut r = Reader::new(payload, "tfhd");
    let (_, flags) = r.full_box()?;
    let track_id = r.u32()?;
    if flags & 0x00_0001 != 0 {
        r.skip(8)?; // base_data_offset
    }
    if flags & 0x00_0002 != 0 {
        r.skip(4)?; // sample_description_index
    }
    let mut opt = |bit: u32| -> Result<Option<u32>, Fmp4Error> {
        if flags & bit != 0 {
            r.u32().map(Some)
        } else {
            Ok(None)
        }
    };
    let default_duration = opt(0x00_0008)?;
    let default_size = opt(0x00_0010)?;
    let default_flags = opt(0x00_0020)?;
    Ok(Tfhd {
        track_id,
        default_duration,
        default_size,
        default_flags,
    })
}

/// What one `trun` contributes (§8.8.8).
struct Trun {
    sample_count: u32,
    /// `first_sample_flags`, else sample 0's per-sample flags.
    first_flags: Option<u32>,
    /// Sums of the per-sample fields, `None` when the trun does not carry them.
    durations: Option<u64>,
    sizes: Option<u64>,
}

fn parse_trun(payload: &[u8]) -> Result<Trun, Fmp4Error> {
    let mut r = Reader::new(payload, "trun");
    let (_, flags) = r.full_box()?;
    let sample_count = r.u32()?;
    if flags & 0x00_0001 != 0 {
        r.skip(4)?; // data_offset
    }
    let first_sample_flags = if flags & 0x00_0004 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let has_duration = flags & 0x00_0100 != 0;
    let has_size = flags & 0x00_0200 != 0;
    let has_flags = flags & 0x00_0400 != 0;
    let has_cto = flags & 0x00_0800 != 0;
    let record = 4 * [has_duration, has_size, has_flags, has_cto]
        .iter()
        .filter(|&&b| b)
        .count();
    if record > 0 {
        // Check the whole table up front: sample_count is attacker-controlled and must not
        // drive a long loop over bytes that are not there.
        let table = usize::try_from(sample_count)
            .ok()
            .and_then(|n| n.checked_mul(record))
            .ok_or(Fmp4Error::Truncated("trun sample table"))?;
        if table > r.remaining() {
            return Err(Fmp4Error::Truncated("trun sample table"));
        }
    }
    let mut durations = 0u64;
    let mut sizes = 0u64;
    let mut sample0_flags = None;
    if record > 0 {
        for i in 0..sample_count {
            // Each sum stays below 2^32 * 2^32, so u64 addition cannot overflow.
            if has_duration {
                durations += u64::from(r.u32()?);
            }
            if has_size {
                sizes += u64::from(r.u32()?);
            }
            if has_flags {
                let f = r.u32()?;
                if i == 0 {
                    sample0_flags = Some(f);
                }
            }
            if has_cto {
                r.skip(4)?; // composition offset: signed in v1, irrelevant to timing here
            }
        }
    }
    Ok(Trun {
        sample_count,
        first_flags: first_sample_flags.or(sample0_flags),
        durations: has_duration.then_some(durations),
        sizes: has_size.then_some(sizes),
    })
}

/// `traf`: `tfhd` + `tfdt` + one or more `trun`s, defaults resolved through `trex`.
fn parse_traf(traf: &[u8], init: &InitInfo) -> Result<TrackFragment, Fmp4Error> {
    let tfhd = parse_tfhd(require(traf, b"tfhd", "tfhd")?)?;
    let track = init
        .track(tfhd.track_id)
        .ok_or(Fmp4Error::UnknownTrack(tfhd.track_id))?;
    let default_duration = tfhd.default_duration.or(track.default_sample_duration);
    let default_size = tfhd.default_size.or(track.default_sample_size);

    let mut base_decode_time = None;
    let mut sample_count = 0u32;
    let mut duration = 0u64;
    let mut data_size = 0u64;
    // Flags of the fragment's first sample, once a trun with samples has been seen.
    let mut first_flags: Option<Option<u32>> = None;
    for b in Boxes::new(traf) {
        let (ty, payload) = b?;
        match &ty {
            b"tfdt" => {
                let mut r = Reader::new(payload, "tfdt");
                let (version, _) = r.full_box()?;
                base_decode_time = Some(if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                });
            }
            b"trun" => {
                let run = parse_trun(payload)?;
                if run.sample_count == 0 {
                    continue;
                }
                if first_flags.is_none() {
                    first_flags = Some(run.first_flags);
                }
                let n = u64::from(run.sample_count);
                let run_duration = match (run.durations, default_duration) {
                    (Some(d), _) => d,
                    (None, Some(d)) => n * u64::from(d),
                    (None, None) => {
                        return Err(Fmp4Error::Invalid(
                            "no sample duration in trun, tfhd or trex",
                        ))
                    }
                };
                let run_size = match (run.sizes, default_size) {
                    (Some(s), _) => s,
                    (None, Some(s)) => n * u64::from(s),
                    (None, None) => {
                        return Err(Fmp4Error::Invalid("no sample size in trun, tfhd or trex"))
                    }
                };
                sample_count = sample_count
                    .checked_add(run.sample_count)
                    .ok_or(Fmp4Error::Invalid("sample count overflow"))?;
                duration = duration
                    .checked_add(run_duration)
                    .ok_or(Fmp4Error::Invalid("fragment duration overflow"))?;
                data_size = data_size
                    .checked_add(run_size)
                    .ok_or(Fmp4Error::Invalid("fragment size overflow"))?;
            }
            _ => {}
        }
    }

    let starts_with_sync_sample = match (track.kind, first_flags) {
        // Every audio frame decodes on its own; encoders do not always say so in the flags.
        (TrackKind::Audio, _) => true,
        (_, None) => false,
        (_, Some(run_first)) => {
            // §8.8.3.1 defaulting chain; with no flags anywhere the all-zero default (a sync
            // sample) applies.
            let flags = run_first
                .or(tfhd.default_flags)
                .or(track.default_sample_flags)
                .unwrap_or(0);
            flags & SAMPLE_IS_NON_SYNC == 0
        }
    };

    Ok(TrackFragment {
        track_id: tfhd.track_id,
        base_decode_time: base_decode_time.ok_or(Fmp4Error::MissingBox("tfdt"))?,
        sample_count,
        duration,
        starts_with_sync_sample,
        data_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- box builders -------------------------------------------------------------------

    fn bx(ty: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(payload.len() + 8);
        v.extend_from_slice(&u32::try_from(payload.len() + 8).unwrap().to_be_bytes());
        v.extend_from_slice(ty);
        v.extend_from_slice(payload);
        v
    }

    fn full(ty: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![version];
        p.extend_from_slice(&flags.to_be_bytes()[1..]);
        p.extend_from_slice(payload);
        bx(ty, &p)
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn be32(vals: &[u32]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn trak(track_id: u32, timescale: u32, handler: &[u8; 4], entry: &[u8]) -> Vec<u8> {
        let tkhd = full(
            b"tkhd",
            0,
            3,
            &cat(&[&be32(&[0, 0, track_id, 0, 0]), &[0u8; 60]]),
        );
        let mdhd = full(
            b"mdhd",
            0,
            0,
            &cat(&[&be32(&[0, 0, timescale, 0]), &[0x55, 0xc4, 0, 0]]),
        );
        let hdlr = full(b"hdlr", 0, 0, &cat(&[&be32(&[0]), handler, &[0u8; 13]]));
        let stsd = full(b"stsd", 0, 0, &cat(&[&be32(&[1]), entry]));
        let stbl = bx(b"stbl", &stsd);
        let minf = bx(b"minf", &stbl);
        let mdia = bx(b"mdia", &cat(&[&mdhd, &hdlr, &minf]));
        bx(b"trak", &cat(&[&tkhd, &mdia]))
    }

    fn visual_entry(ty: &[u8; 4], w: u16, h: u16, config: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 6];
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(&[0u8; 16]);
        p.extend_from_slice(&w.to_be_bytes());
        p.extend_from_slice(&h.to_be_bytes());
        p.extend_from_slice(&[0u8; 50]);
        p.extend_from_slice(config);
        bx(ty, &p)
    }

    fn avc1(w: u16, h: u16, profile: u8, compat: u8, level: u8) -> Vec<u8> {
        let avcc = bx(b"avcC", &[1, profile, compat, level, 0xff, 0xe0, 0x00]);
        visual_entry(b"avc1", w, h, &avcc)
    }

    /// `esds` with ffmpeg's padded 4-byte descriptor lengths.
    fn esds(oti: u8, asc: &[u8]) -> Vec<u8> {
        fn desc(tag: u8, body: &[u8]) -> Vec<u8> {
            let n = u8::try_from(body.len()).unwrap();
            cat(&[&[tag, 0x80, 0x80, 0x80, n], body])
        }
        let dsi = desc(0x05, asc);
        let dcd = desc(
            0x04,
            &cat(&[&[oti, 0x15, 0, 0, 0], &be32(&[128_000, 128_000]), &dsi]),
        );
        let sl = desc(0x06, &[0x02]);
        let es = desc(0x03, &cat(&[&[0, 2, 0], &dcd, &sl]));
        full(b"esds", 0, 0, &es)
    }

    fn mp4a(oti: u8, asc: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 6];
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(&2u16.to_be_bytes());
        p.extend_from_slice(&16u16.to_be_bytes());
        p.extend_from_slice(&[0u8; 4]);
        p.extend_from_slice(&(48_000u32 << 16).to_be_bytes());
        p.extend_from_slice(&esds(oti, asc));
        bx(b"mp4a", &p)
    }

    fn trex(track_id: u32, duration: u32, size: u32, flags: u32) -> Vec<u8> {
        full(b"trex", 0, 0, &be32(&[track_id, 1, duration, size, flags]))
    }

    /// ftyp + moov with video track 1 (90 kHz) and audio track 2 (48 kHz).
    fn init_segment(trexes: &[Vec<u8>]) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"iso6\0\0\x02\0iso6cmfc");
        let mvhd = full(b"mvhd", 0, 0, &[0u8; 96]);
        let v = trak(1, 90_000, b"vide", &avc1(320, 240, 0x64, 0x00, 0x1f));
        let a = trak(2, 48_000, b"soun", &mp4a(0x40, &[0x11, 0x90]));
        let mvex = bx(b"mvex", &trexes.concat());
        let moov = bx(b"moov", &cat(&[&mvhd, &v, &a, &mvex]));
        cat(&[&ftyp, &moov])
    }

    fn default_init() -> InitInfo {
        parse_init(&init_segment(&[
            trex(1, 3000, 0, 0x0101_0000),
            trex(2, 1024, 0, 0),
        ]))
        .unwrap()
    }

    struct TrunSpec<'a> {
        first_flags: Option<u32>,
        durations: Option<&'a [u32]>,
        sizes: Option<&'a [u32]>,
        flags: Option<&'a [u32]>,
        count: u32,
    }

    fn trun(s: &TrunSpec<'_>) -> Vec<u8> {
        let mut f = 0x1; // data offset present, as ffmpeg writes it
        let mut p = be32(&[s.count, 0]);
        if let Some(ff) = s.first_flags {
            f |= 0x4;
            p.extend_from_slice(&ff.to_be_bytes());
        }
        f |= if s.durations.is_some() { 0x100 } else { 0 };
        f |= if s.sizes.is_some() { 0x200 } else { 0 };
        f |= if s.flags.is_some() { 0x400 } else { 0 };
        for i in 0..s.count as usize {
            for col in [s.durations, s.sizes, s.flags].into_iter().flatten() {
                p.extend_from_slice(&col[i].to_be_bytes());
            }
        }
        full(b"trun", 0, f, &p)
    }

    /// tfhd with default-base-is-moof and the given optional defaults.
    fn tfhd(track_id: u32, dur: Option<u32>, size: Option<u32>, flags: Option<u32>) -> Vec<u8> {
        let mut f = 0x02_0000;
        let mut p = be32(&[track_id]);
        for (bit, v) in [(0x8, dur), (0x10, size), (0x20, flags)] {
            if let Some(v) = v {
                f |= bit;
                p.extend_from_slice(&v.to_be_bytes());
            }
        }
        full(b"tfhd", 0, f, &p)
    }

    fn tfdt_v1(t: u64) -> Vec<u8> {
        full(b"tfdt", 1, 0, &t.to_be_bytes())
    }

    fn moof(seq: u32, trafs: &[Vec<u8>]) -> Vec<u8> {
        let mfhd = full(b"mfhd", 0, 0, &be32(&[seq]));
        bx(b"moof", &cat(&[&mfhd, &trafs.concat()]))
    }

    // ---- headers and splitter -----------------------------------------------------------

    #[test]
    fn header_32bit() {
        let b = bx(b"free", &[1, 2, 3]);
        let h = read_box_header(&b).unwrap().unwrap();
        assert_eq!(
            h,
            BoxHeader {
                box_type: *b"free",
                header_len: 8,
                total_len: 11
            }
        );
        assert_eq!(h.payload_len(), 3);
    }

    #[test]
    fn header_largesize() {
        let mut b = be32(&[1]);
        b.extend_from_slice(b"mdat");
        b.extend_from_slice(&(5_000_000_000u64).to_be_bytes());
        let h = read_box_header(&b).unwrap().unwrap();
        assert_eq!(h.box_type, *b"mdat");
        assert_eq!(h.header_len, 16);
        assert_eq!(h.total_len, 5_000_000_000);
        // largesize cut off after the 8-byte compact header: need more.
        assert_eq!(read_box_header(&b[..12]).unwrap(), None);
    }

    #[test]
    fn header_truncated_needs_more() {
        let b = bx(b"moov", &[0; 4]);
        for n in 0..8 {
            assert_eq!(read_box_header(&b[..n]).unwrap(), None, "len {n}");
        }
        // The header alone is enough even though the payload is missing.
        assert!(read_box_header(&b[..8]).unwrap().is_some());
    }

    #[test]
    fn header_uuid_includes_usertype() {
        let b = bx(b"uuid", &[7u8; 20]);
        assert_eq!(read_box_header(&b[..20]).unwrap(), None);
        let h = read_box_header(&b).unwrap().unwrap();
        assert_eq!((h.header_len, h.total_len), (24, 28));
    }

    #[test]
    fn header_rejects_size_zero_and_too_small() {
        let mut b = be32(&[0]);
        b.extend_from_slice(b"mdat");
        assert_eq!(read_box_header(&b), Err(Fmp4Error::SizeToEnd(*b"mdat")));
        let mut b = be32(&[7]);
        b.extend_from_slice(b"free");
        assert!(matches!(
            read_box_header(&b),
            Err(Fmp4Error::InvalidSize { size: 7, .. })
        ));
        let mut b = be32(&[1]);
        b.extend_from_slice(b"mdat");
        b.extend_from_slice(&15u64.to_be_bytes());
        assert!(matches!(
            read_box_header(&b),
            Err(Fmp4Error::InvalidSize {
                size: 15,
                header_len: 16,
                ..
            })
        ));
    }

    #[test]
    fn splitter_one_byte_at_a_time() {
        let a = bx(b"ftyp", b"iso6\0\0\0\0");
        let mut big = be32(&[1]);
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&(16u64 + 3).to_be_bytes());
        big.extend_from_slice(&[9, 9, 9]);
        let c = bx(b"moof", &[1; 40]);
        let stream = cat(&[&a, &big, &c]);

        let mut s = BoxSplitter::new();
        let mut out = Vec::new();
        for byte in &stream {
            s.push(std::slice::from_ref(byte));
            while let Some((h, b)) = s.next_box().unwrap() {
                assert_eq!(h.total_len, b.len() as u64);
                out.push((h.box_type, b));
            }
        }
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], (*b"ftyp", Bytes::from(a)));
        assert_eq!(out[1], (*b"mdat", Bytes::from(big)));
        assert_eq!(out[2], (*b"moof", Bytes::from(c)));
        assert_eq!(s.buffered_len(), 0);
        s.finish().unwrap();
    }

    #[test]
    fn splitter_size_guard_and_sticky_error() {
        let mut s = BoxSplitter::with_max_box_size(1024);
        let mut h = be32(&[4096]);
        h.extend_from_slice(b"mdat");
        s.push(&h);
        let e = s.next_box().unwrap_err();
        assert!(matches!(
            e,
            Fmp4Error::TooLarge {
                size: 4096,
                max: 1024,
                ..
            }
        ));
        s.push(&bx(b"free", &[]));
        assert_eq!(s.next_box().unwrap_err(), e);
        assert_eq!(s.finish().unwrap_err(), e);
    }

    #[test]
    fn splitter_finish_reports_partial_box() {
        let mut s = BoxSplitter::new();
        s.push(&bx(b"moof", &[0; 10])[..12]);
        assert_eq!(s.next_box().unwrap(), None);
        assert!(s.finish().is_err());
    }

    // ---- init segment -------------------------------------------------------------------

    #[test]
    fn init_tracks_codecs_and_trex() {
        let init = default_init();
        let v = init.video().unwrap();
        assert_eq!(
            (v.track_id, v.kind, v.timescale, v.width, v.height),
            (1, TrackKind::Video, 90_000, 320, 240)
        );
        assert_eq!(v.codec, "avc1.64001f");
        assert_eq!(v.default_sample_duration, Some(3000));
        assert_eq!(v.default_sample_flags, Some(0x0101_0000));
        let a = init.audio().unwrap();
        assert_eq!(
            (a.track_id, a.kind, a.timescale),
            (2, TrackKind::Audio, 48_000)
        );
        assert_eq!(a.codec, "mp4a.40.2");
        assert_eq!(init.codecs_string(), "avc1.64001f,mp4a.40.2");
    }

    #[test]
    fn init_accepts_moov_alone_and_skips_leading_boxes() {
        let full_init = init_segment(&[]);
        let moov_only =
            &full_init[read_box_header(&full_init).unwrap().unwrap().total_len as usize..];
        let a = parse_init(moov_only).unwrap();
        assert_eq!(a.tracks.len(), 2);
        assert_eq!(a.video().unwrap().default_sample_duration, None);
        assert_eq!(
            parse_init(&bx(b"ftyp", b"iso6")),
            Err(Fmp4Error::MissingBox("moov"))
        );
    }

    #[test]
    fn avcc_codec_strings() {
        for (p, c, l, want) in [
            (0x42, 0xc0, 0x1e, "avc1.42c01e"),
            (0x4d, 0x40, 0x28, "avc1.4d4028"),
            (0x64, 0x00, 0x33, "avc1.640033"),
        ] {
            let t = trak(1, 90_000, b"vide", &avc1(1920, 1080, p, c, l));
            let init = parse_init(&bx(b"moov", &t)).unwrap();
            assert_eq!(init.tracks[0].codec, want);
        }
    }

    #[test]
    fn hvcc_codec_string() {
        // Main profile, compat flags 0x60000000, level 93, constraint byte 0xB0.
        let mut hvcc = vec![1, 0x01];
        hvcc.extend_from_slice(&0x6000_0000u32.to_be_bytes());
        hvcc.extend_from_slice(&[0xb0, 0, 0, 0, 0, 0, 93]);
        let entry = visual_entry(b"hvc1", 1280, 720, &bx(b"hvcC", &hvcc));
        let init = parse_init(&bx(b"moov", &trak(1, 90_000, b"vide", &entry))).unwrap();
        assert_eq!(init.tracks[0].codec, "hvc1.1.6.L93.B0");
        assert_eq!((init.tracks[0].width, init.tracks[0].height), (1280, 720));
    }

    #[test]
    fn esds_audio_object_types() {
        for (oti, asc, want) in [
            (0x40, &[0x11, 0x90][..], "mp4a.40.2"),       // AAC-LC
            (0x40, &[0x2b, 0x92, 0x08][..], "mp4a.40.5"), // HE-AAC (SBR)
            (0x40, &[0xf8, 0x40][..], "mp4a.40.34"),      // escape: 32 + 2 = MPEG-1 Layer 3
            (0x6b, &[][..], "mp4a.6b"),                   // MP3 via object type indication
        ] {
            let t = trak(2, 48_000, b"soun", &mp4a(oti, asc));
            let init = parse_init(&bx(b"moov", &t)).unwrap();
            assert_eq!(init.tracks[0].codec, want);
            assert_eq!(init.tracks[0].kind, TrackKind::Audio);
        }
    }

    #[test]
    fn init_rejects_zero_timescale() {
        let t = trak(1, 0, b"vide", &avc1(2, 2, 0x64, 0, 0x1f));
        assert_eq!(
            parse_init(&bx(b"moov", &t)),
            Err(Fmp4Error::Invalid("mdhd timescale is 0"))
        );
    }

    // ---- fragments ----------------------------------------------------------------------

    #[test]
    fn trun_with_per_sample_fields() {
        let init = default_init();
        let traf = bx(
            b"traf",
            &cat(&[
                &tfhd(1, None, None, None),
                &tfdt_v1(180_000),
                &trun(&TrunSpec {
                    first_flags: None,
                    durations: Some(&[3000, 3000, 3003]),
                    sizes: Some(&[1000, 200, 300]),
                    flags: Some(&[0x0200_0000, 0x0101_0000, 0x0101_0000]),
                    count: 3,
                }),
            ]),
        );
        let frag = cat(&[&moof(7, &[traf]), &bx(b"mdat", &[0; 1500])]);
        let f = parse_fragment(&frag, &init).unwrap();
        assert_eq!(f.sequence_number, 7);
        let t = f.track(1).unwrap();
        assert_eq!(t.base_decode_time, 180_000);
        assert_eq!(t.sample_count, 3);
        assert_eq!(t.duration, 9003);
        assert_eq!(t.data_size, 1500);
        // Sample 0's own flags (sync) beat the non-sync trex default.
        assert!(t.starts_with_sync_sample);
    }

    #[test]
    fn trun_first_sample_flags_without_per_sample_fields() {
        let init = default_init();
        let run = trun(&TrunSpec {
            first_flags: Some(0x0200_0000),
            durations: None,
            sizes: Some(&[10, 20]),
            flags: None,
            count: 2,
        });
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &run]),
        );
        let f = parse_fragment(&moof(1, &[traf]), &init).unwrap();
        let t = f.track(1).unwrap();
        // Durations fall back to the trex default of 3000.
        assert_eq!((t.sample_count, t.duration, t.data_size), (2, 6000, 30));
        assert!(t.starts_with_sync_sample);
    }

    #[test]
    fn tfhd_defaults_override_trex() {
        let init = default_init();
        let run = trun(&TrunSpec {
            first_flags: None,
            durations: None,
            sizes: None,
            flags: None,
            count: 4,
        });
        // tfhd says: duration 1500, size 100, flags sync — all beat the trex defaults.
        let traf = bx(
            b"traf",
            &cat(&[
                &tfhd(1, Some(1500), Some(100), Some(0)),
                &full(b"tfdt", 0, 0, &be32(&[42])),
                &run,
            ]),
        );
        let f = parse_fragment(&moof(2, &[traf]), &init).unwrap();
        let t = f.track(1).unwrap();
        assert_eq!(
            (t.base_decode_time, t.duration, t.data_size),
            (42, 6000, 400)
        );
        assert!(t.starts_with_sync_sample);

        // Same with a non-sync tfhd default flag.
        let traf = bx(
            b"traf",
            &cat(&[
                &tfhd(1, Some(1500), Some(100), Some(0x0001_0000)),
                &tfdt_v1(0),
                &run,
            ]),
        );
        let f = parse_fragment(&moof(3, &[traf]), &init).unwrap();
        assert!(!f.track(1).unwrap().starts_with_sync_sample);
    }

    #[test]
    fn trex_fallback_for_flags_and_duration() {
        // trex: video non-sync by default, size 50.
        let init = parse_init(&init_segment(&[
            trex(1, 3000, 50, 0x0101_0000),
            trex(2, 1024, 0, 0),
        ]))
        .unwrap();
        let run = trun(&TrunSpec {
            first_flags: None,
            durations: None,
            sizes: None,
            flags: None,
            count: 5,
        });
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, None, None, None), &tfdt_v1(9), &run]),
        );
        let f = parse_fragment(&moof(4, &[traf]), &init).unwrap();
        let t = f.track(1).unwrap();
        assert_eq!((t.duration, t.data_size), (15_000, 250));
        assert!(!t.starts_with_sync_sample);
    }

    #[test]
    fn audio_always_starts_with_sync_and_multiple_truns_add_up() {
        let init = default_init();
        let runs: Vec<Vec<u8>> = [2u32, 3]
            .iter()
            .map(|&n| {
                trun(&TrunSpec {
                    first_flags: Some(0x0001_0000),
                    durations: None,
                    sizes: Some(&[6, 6, 6][..n as usize]),
                    flags: None,
                    count: n,
                })
            })
            .collect();
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(2, None, None, None), &tfdt_v1(1024), &runs.concat()]),
        );
        let f = parse_fragment(&moof(5, &[traf]), &init).unwrap();
        let t = f.track(2).unwrap();
        assert_eq!((t.sample_count, t.duration, t.data_size), (5, 5 * 1024, 30));
        assert!(t.starts_with_sync_sample);
    }

    #[test]
    fn fragment_errors() {
        let init = default_init();
        let run = trun(&TrunSpec {
            first_flags: None,
            durations: None,
            sizes: None,
            flags: None,
            count: 1,
        });
        let unknown = bx(
            b"traf",
            &cat(&[&tfhd(9, None, None, None), &tfdt_v1(0), &run]),
        );
        assert_eq!(
            parse_fragment(&moof(1, &[unknown]), &init),
            Err(Fmp4Error::UnknownTrack(9))
        );
        let no_tfdt = bx(b"traf", &cat(&[&tfhd(1, None, None, None), &run]));
        assert_eq!(
            parse_fragment(&moof(1, &[no_tfdt]), &init),
            Err(Fmp4Error::MissingBox("tfdt"))
        );
        // Claims a million per-sample records with no bytes behind them.
        let mut lying = trun(&TrunSpec {
            first_flags: None,
            durations: Some(&[1]),
            sizes: None,
            flags: None,
            count: 1,
        });
        lying[12..16].copy_from_slice(&1_000_000u32.to_be_bytes());
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &lying]),
        );
        assert_eq!(
            parse_fragment(&moof(1, &[traf]), &init),
            Err(Fmp4Error::Truncated("trun sample table"))
        );
        assert_eq!(
            parse_fragment(&bx(b"mdat", &[1, 2]), &init),
            Err(Fmp4Error::MissingBox("moof"))
        );
        // Without trex there is no duration to fall back to.
        let bare = parse_init(&init_segment(&[])).unwrap();
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, None, Some(1), None), &tfdt_v1(0), &run]),
        );
        assert!(matches!(
            parse_fragment(&moof(1, &[traf]), &bare),
            Err(Fmp4Error::Invalid(_))
        ));
    }

    #[test]
    fn fragment_accepts_moof_with_partial_mdat() {
        let init = default_init();
        let run = trun(&TrunSpec {
            first_flags: None,
            durations: None,
            sizes: Some(&[4]),
            flags: None,
            count: 1,
        });
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &run]),
        );
        let whole = cat(&[&moof(1, &[traf]), &bx(b"mdat", &[0; 4])]);
        assert!(parse_fragment(&whole[..whole.len() - 3], &init).is_ok());
    }

    // ---- real ffmpeg output -------------------------------------------------------------

    #[test]
    fn real_ffmpeg_cmaf_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                "2",
                "-c:v",
                "libx264",
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
                "-c:a",
                "aac",
                "-f",
                "mp4",
                "-movflags",
                "cmaf+frag_keyframe+empty_moov+default_base_moof",
                "-frag_duration",
                "500000",
            ])
            .arg(&out)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs ffmpeg (with libx264 and aac) on PATH; \
                     install it (scripts/ do in CI): spawning `ffmpeg` failed: {e}"
                )
            });
        assert!(status.success(), "ffmpeg failed: {status}");
        let bytes = std::fs::read(&out).unwrap();

        // Feed the file in awkward chunks, as a pipe would deliver it.
        let mut splitter = BoxSplitter::new();
        let mut boxes = Vec::new();
        for chunk in bytes.chunks(4093) {
            splitter.push(chunk);
            while let Some(b) = splitter.next_box().unwrap() {
                boxes.push(b);
            }
        }
        splitter.finish().unwrap();

        let init_end = boxes
            .iter()
            .position(|(h, _)| &h.box_type == b"moov")
            .unwrap()
            + 1;
        let init_bytes: Vec<u8> = boxes[..init_end]
            .iter()
            .flat_map(|(_, b)| b.to_vec())
            .collect();
        let init = parse_init(&init_bytes).unwrap();
        let v = init.video().expect("video track");
        assert_eq!((v.width, v.height), (320, 240));
        assert!(v.codec.starts_with("avc1."), "{}", v.codec);
        assert_eq!(init.audio().expect("audio track").codec, "mp4a.40.2");

        let mut video = Vec::new();
        let mut seqs = Vec::new();
        for (i, (h, b)) in boxes.iter().enumerate() {
            if &h.box_type != b"moof" {
                continue;
            }
            // moof + its mdat, as the packager hands them over.
            let mut frag = b.to_vec();
            if let Some((mh, m)) = boxes.get(i + 1) {
                assert_eq!(&mh.box_type, b"mdat");
                frag.extend_from_slice(m);
                let f = parse_fragment(&frag, &init).unwrap();
                let total: u64 = f.tracks.iter().map(|t| t.data_size).sum();
                assert_eq!(total, mh.payload_len(), "trun sizes cover the mdat");
            }
            let f = parse_fragment(&frag, &init).unwrap();
            seqs.push(f.sequence_number);
            if let Some(t) = f.track(v.track_id) {
                video.push(t.clone());
            }
        }
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert!(video.len() >= 4, "{video:?}");

        let ts = f64::from(v.timescale);
        let mut expected_next = video[0].base_decode_time;
        for t in &video {
            assert_eq!(
                t.base_decode_time, expected_next,
                "fragments are contiguous"
            );
            expected_next += t.duration;
            let start = (t.base_decode_time - video[0].base_decode_time) as f64 / ts;
            // Keyframes every 30 frames at 30 fps: whole seconds start with one, the
            // 0.5 s cuts forced by -frag_duration do not.
            let on_keyframe = (start - start.round()).abs() < 1e-3;
            assert_eq!(
                t.starts_with_sync_sample, on_keyframe,
                "fragment at {start:.3} s"
            );
        }
        let starts: Vec<f64> = video
            .iter()
            .filter(|t| t.starts_with_sync_sample)
            .map(|t| (t.base_decode_time - video[0].base_decode_time) as f64 / ts)
            .collect();
        assert_eq!(starts, [0.0, 1.0]);
        let total = video.iter().map(|t| t.duration).sum::<u64>() as f64 / ts;
        assert!((total - 2.0).abs() < 0.05, "video lasts {total} s");
    }

    // ---- robustness ---------------------------------------------------------------------

    fn sample_fragment() -> Vec<u8> {
        let run = trun(&TrunSpec {
            first_flags: Some(0x0200_0000),
            durations: Some(&[3000, 3000]),
            sizes: Some(&[5, 6]),
            flags: Some(&[0, 0x0101_0000]),
            count: 2,
        });
        let traf = bx(
            b"traf",
            &cat(&[&tfhd(1, Some(1), Some(2), Some(3)), &tfdt_v1(0), &run]),
        );
        cat(&[&moof(1, &[traf]), &bx(b"mdat", &[0; 11])])
    }

    proptest! {
        #[test]
        fn splitter_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                 chunk in 1usize..64) {
            let mut s = BoxSplitter::with_max_box_size(1 << 20);
            for c in data.chunks(chunk) {
                s.push(c);
                loop {
                    match s.next_box() {
                        Ok(Some((h, b))) => prop_assert_eq!(h.total_len, b.len() as u64),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            let _ = s.finish();
        }

        #[test]
        fn parsers_never_panic_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_init(&data);
            let _ = parse_fragment(&data, &default_init());
        }

        #[test]
        fn parsers_never_panic_on_mutated_boxes(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            // Random bytes rarely get past the first header; mutating valid boxes reaches the
            // field readers.
            let mut init = init_segment(&[trex(1, 3000, 0, 0x0101_0000), trex(2, 1024, 0, 0)]);
            let mut frag = sample_fragment();
            for (i, v) in &edits {
                let n = init.len();
                init[i % n] = *v;
                let n = frag.len();
                frag[i % n] = *v;
            }
            let _ = parse_init(&init[..cut % (init.len() + 1)]);
            let _ = parse_init(&init);
            let _ = parse_fragment(&frag, &default_init());
            let _ = parse_fragment(&frag[..cut % (frag.len() + 1)], &default_init());
        }
    }
}
