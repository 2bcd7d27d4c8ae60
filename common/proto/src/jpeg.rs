//! The pixel size of a JPEG image, read from its frame header (ITU-T T.81 §B.2.2), so the
//! thumbnail track is built from the sprite sheets ffmpeg really wrote rather than from a size
//! we expect it to have written.

/// Width and height of a baseline, extended, progressive or lossless JPEG: the first
/// start-of-frame segment (`SOF0`–`SOF15` except `DHT` `C4`, `JPG` `C8` and `DAC` `CC`).
/// `None` for anything that is not a well-formed JPEG up to that segment, or a zero size.
pub fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    loop {
        // Markers may be preceded by fill bytes (0xFF).
        while *data.get(i)? == 0xFF && *data.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *data.get(i)? != 0xFF {
            return None;
        }
        let marker = *data.get(i + 1)?;
        i += 2;
        match marker {
            // Stand-alone markers without a length: TEM, RST0–7.
            0x01 | 0xD0..=0xD7 => continue,
            // SOI again, EOI or SOS before any frame header: not an image we can size.
            0xD8..=0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // length(2) precision(1) height(2) width(2)
            let seg = data.get(i..i + len)?;
            if seg.len() < 7 {
                return None;
            }
            let height = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            let width = u32::from(u16::from_be_bytes([seg[5], seg[6]]));
            return (width > 0 && height > 0).then_some((width, height));
        }
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 segment, a DQT stub, SOF0 for `w`x`h`, EOI.
    fn jpeg(sof: u8, w: u16, h: u16) -> Vec<u8> {
        let mut d = vec![0xFF, 0xD8];
        d.extend([0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F']);
        d.extend([0xFF, 0xFF, 0xDB, 0x00, 0x03, 0x00]); // with one fill byte
        d.extend([0xFF, sof, 0x00, 0x0B, 0x08]);
        d.extend(h.to_be_bytes());
        d.extend(w.to_be_bytes());
        d.extend([0x01, 0x01, 0x11, 0x00]);
        d.extend([0xFF, 0xD9]);
        d
    }

    #[test]
    fn reads_the_frame_header() {
        assert_eq!(dimensions(&jpeg(0xC0, 1600, 900)), Some((1600, 900)));
        assert_eq!(dimensions(&jpeg(0xC2, 160, 284)), Some((160, 284)));
        // DHT (C4) is not a frame header: the parser skips it and finds nothing after.
        assert_eq!(dimensions(&jpeg(0xC4, 1, 1)), None);
    }

    #[test]
    fn rejects_what_is_not_a_jpeg() {
        assert_eq!(dimensions(b""), None);
        assert_eq!(dimensions(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(dimensions(&jpeg(0xC0, 0, 90)), None);
        let whole = jpeg(0xC0, 1600, 900);
        for cut in 0..whole.len() - 8 {
            assert_eq!(dimensions(&whole[..cut]), None, "truncated at {cut}");
        }
        // A segment length below 2 would loop forever if it were trusted.
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
    }
}
