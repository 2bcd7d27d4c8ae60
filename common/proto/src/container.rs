//! Source containers: sniffing by magic bytes, and the ffmpeg demuxer each one is read with.
//!
//! The ingest sniffs a finished upload with [`detect`]: cheap and local, it turns away obvious
//! non-videos (documents, random bytes) before they cost an object-store upload and a transcoder
//! slot. The result travels in the job, and the transcoder forces that demuxer
//! ([`Container::ffmpeg_format`]) on every ffprobe and ffmpeg run instead of letting them pick a
//! format by content: content probing is what turns a text file with a video-like prefix into a
//! DASH manifest, HLS playlist or ffconcat list that makes ffmpeg open other files and URLs.

use serde::{Deserialize, Serialize};

/// How many leading bytes [`detect`] wants to see (it works with fewer, less surely).
pub const SNIFF_LEN: usize = 512;

/// Container families we accept. Serialized as [`Container::as_str`] (`iso-bmff`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Container {
    /// ISO base media file format: MP4, MOV, 3GP, fMP4/CMAF.
    #[serde(rename = "iso-bmff")]
    IsoBmff,
    /// EBML: Matroska and WebM.
    #[serde(rename = "matroska")]
    Matroska,
    /// MPEG-2 transport stream.
    #[serde(rename = "mpeg-ts")]
    MpegTs,
    /// RIFF AVI.
    #[serde(rename = "avi")]
    Avi,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::IsoBmff => "iso-bmff",
            Container::Matroska => "matroska",
            Container::MpegTs => "mpeg-ts",
            Container::Avi => "avi",
        }
    }

    /// The ffmpeg/ffprobe demuxer (`-f`) that reads this container and nothing else.
    pub fn ffmpeg_format(self) -> &'static str {
        match self {
            // ffmpeg's one demuxer for MP4, MOV, 3GP and their fragmented forms.
            Container::IsoBmff => "mov",
            // Also reads WebM.
            Container::Matroska => "matroska",
            Container::MpegTs => "mpegts",
            Container::Avi => "avi",
        }
    }
}

/// MPEG-TS packets are 188 bytes, each starting with the sync byte 0x47.
const TS_PACKET: usize = 188;
const TS_SYNC: u8 = 0x47;

/// Box types that may open an ISO-BMFF/QuickTime file. `ftyp` is the norm; QuickTime files
/// written before `ftyp` existed start with `moov`, `mdat`, `wide`, `free` or `skip`, and
/// old cameras still produce them.
const BMFF_FIRST_BOXES: [&[u8; 4]; 6] = [b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"];

/// The container `prefix` (the first bytes of a file) starts with, or `None`.
pub fn detect(prefix: &[u8]) -> Option<Container> {
    if is_bmff(prefix) {
        return Some(Container::IsoBmff);
    }
    if prefix.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(Container::Matroska);
    }
    if is_ts(prefix) {
        return Some(Container::MpegTs);
    }
    if prefix.len() >= 12 && &prefix[0..4] == b"RIFF" && &prefix[8..12] == b"AVI " {
        return Some(Container::Avi);
    }
    None
}

fn is_bmff(p: &[u8]) -> bool {
    let (Some(size), Some(kind)) = (p.get(0..4), p.get(4..8)) else {
        return false;
    };
    if !BMFF_FIRST_BOXES.iter().any(|b| b.as_slice() == kind) {
        return false;
    }
    // A real first box is 0 (to end of file), 1 (64-bit size follows) or at least its own
    // 8-byte header; anything else is a text file that happens to contain "free" at byte 4.
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
    size == 0 || size == 1 || size >= 8
}

fn is_ts(p: &[u8]) -> bool {
    // One sync byte alone is a 1-in-256 accident; the next packet's sync byte confirms it. A file
    // of exactly one packet has nothing more to check.
    match p.len() {
        n if n < TS_PACKET => false,
        TS_PACKET => p[0] == TS_SYNC,
        _ => p[0] == TS_SYNC && p[TS_PACKET] == TS_SYNC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_prefix(prefix: &[u8], len: usize) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.resize(len, 0xAB);
        v
    }

    #[test]
    fn known_containers() {
        let mp4 = with_prefix(
            &[
                0, 0, 0, 0x20, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm',
            ],
            64,
        );
        assert_eq!(detect(&mp4), Some(Container::IsoBmff));
        let mov = with_prefix(&[0, 0, 0, 8, b'w', b'i', b'd', b'e'], 64);
        assert_eq!(detect(&mov), Some(Container::IsoBmff));
        let mkv = with_prefix(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F], 64);
        assert_eq!(detect(&mkv), Some(Container::Matroska));
        let mut ts = with_prefix(&[0x47, 0x40, 0x00, 0x10], 400);
        ts[188] = 0x47;
        assert_eq!(detect(&ts), Some(Container::MpegTs));
        let one_packet = with_prefix(&[0x47], 188);
        assert_eq!(detect(&one_packet), Some(Container::MpegTs));
        let avi = with_prefix(b"RIFF\x10\x00\x00\x00AVI LIST", 64);
        assert_eq!(detect(&avi), Some(Container::Avi));
    }

    #[test]
    fn non_videos_are_refused() {
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"ftyp"), None, "too short to hold a box header");
        assert_eq!(detect(b"%PDF-1.7\n..."), None);
        assert_eq!(
            detect(&with_prefix(b"RIFF\x10\x00\x00\x00WAVEfmt ", 64)),
            None
        );
        // TS sync byte at 0 without the second packet's sync byte.
        assert_eq!(detect(&with_prefix(&[0x47], 400)), None);
        assert_eq!(detect(&with_prefix(&[0x47], 100)), None);
        // A box type at 4..8 behind a size smaller than a box header is not a box.
        assert_eq!(
            detect(&with_prefix(&[0, 0, 0, 2, b'f', b'r', b'e', b'e'], 64)),
            None
        );
        assert_eq!(detect(&[0, 0, 0, 5, b'f', b't', b'y', b'p']), None);
    }

    #[test]
    fn serialized_as_its_name() {
        for c in [
            Container::IsoBmff,
            Container::Matroska,
            Container::MpegTs,
            Container::Avi,
        ] {
            let json = serde_json::to_string(&c).expect("serialize");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Container>(&json).expect("parse"), c);
        }
        assert!(serde_json::from_str::<Container>("\"dash\"").is_err());
    }

    #[test]
    fn random_bytes_are_refused() {
        // A fixed xorshift stream: deterministic, yet nothing like a container header.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut refused = 0;
        for _ in 0..1000 {
            let mut buf = vec![0u8; SNIFF_LEN];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if detect(&buf).is_none() {
                refused += 1;
            }
        }
        // Only the TS rule can fire by chance (1/65536 per buffer).
        assert!(refused >= 998, "{refused}");
    }
}
