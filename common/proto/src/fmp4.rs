//! Fragmented MP4 (CMAF) box reader: the packager's view of ffmpeg's
//! `-movflags cmaf+frag_keyframe+empty_moov+default_base_moof` output (one video and an
//! optional audio track in the same file, fragments of `moof` + `mdat`) read from a pipe.
//!
//! Sans-IO; nothing here touches a file or a pipe. This file owns the box layer
//! (ISO/IEC 14496-12 §4.2: 32-bit size, 64-bit `largesize`, `uuid` user type):
//! [`read_box_header`], the incremental [`BoxSplitter`] that cuts a byte stream into whole
//! top-level boxes, and the bounds-checked readers the box parsers share. The parsers:
//! - `init` — [`parse_init`]: the track table of `ftyp` + `moov` and RFC 6381 codec strings.
//! - `fragment` — [`parse_fragment`]: timing and sync-sample start of one `moof` [+ `mdat`].
//!
//! Everything read from the input is bounds-checked; malformed input yields [`Fmp4Error`],
//! never a panic (property-tested in `tests`).

use bytes::{Bytes, BytesMut};

mod fragment;
mod init;
#[cfg(test)]
mod tests;

pub use fragment::{parse_fragment, FragmentInfo, TrackFragment};
pub use init::{parse_init, InitInfo, TrackInfo, TrackKind};

/// Default cap on one top-level box in [`BoxSplitter`]. A 2 s 1080p fragment is a few MiB; a
/// declared size far beyond that means a corrupt stream, and buffering it would let one bad
/// header make the packager allocate without bound.
pub const DEFAULT_MAX_BOX_SIZE: u64 = 256 * 1024 * 1024;

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
        // Parsed headers have header_len <= total_len; saturate for hand-built ones.
        self.total_len.saturating_sub(self.header_len as u64)
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

    /// A `u32` field that is present only when `flags` has `bit` set (tfhd, trun).
    fn optional_u32(&mut self, flags: u32, bit: u32) -> Result<Option<u32>, Fmp4Error> {
        if flags & bit != 0 {
            self.u32().map(Some)
        } else {
            Ok(None)
        }
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
