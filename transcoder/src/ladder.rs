//! The adaptive bitrate ladder: which renditions a source gets, at what size and bitrate.
//!
//! Rule: every standard rung whose height is at most the source height (never upscale, since
//! upscaled pixels cost bits and add nothing); a source smaller than the smallest rung gets a
//! single rung at its own (even) size. Widths follow ffmpeg's `scale=-2:H`, so the aspect ratio
//! is kept and the width is even as 4:2:0 chroma needs.

/// Audio bitrate of every rendition (AAC-LC stereo 48 kHz), bits per second.
pub const AUDIO_BITRATE: u64 = 128_000;

/// Standard rungs, highest first: height, video bits per second.
const RUNGS: [(u32, u64); 5] = [
    (2160, 14_000_000),
    (1080, 5_000_000),
    (720, 2_800_000),
    (480, 1_400_000),
    (360, 800_000),
];

/// Bitrate floor for the single rung of a tiny source.
const MIN_VIDEO_BITRATE: u64 = 150_000;

/// One rendition to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// Directory name and HLS `NAME`, e.g. `720p`.
    pub name: String,
    /// Width ffmpeg's `scale=-2:height` will produce (the published RESOLUTION is read back
    /// from the encoded init segment, not from here).
    pub width: u32,
    pub height: u32,
    /// Target video bits per second (`-b:v`).
    pub video_bitrate: u64,
    /// H.264 profile: `high`, or `main` for small rungs (older phones decode those in hardware).
    pub profile: &'static str,
}

/// The rungs for a source of `width` x `height` (display size), highest first.
pub fn select(width: u32, height: u32) -> Vec<Rung> {
    let mut rungs: Vec<Rung> = RUNGS
        .iter()
        .filter(|(h, _)| *h <= height)
        .map(|&(h, bitrate)| rung(width, height, h, bitrate))
        .collect();
    if rungs.is_empty() {
        // Smaller than 360p: one rendition at source size, bitrate scaled by pixel count from
        // the 360p rung (640x360).
        let h = (height & !1).max(2);
        let w = scaled_width(width, height, h);
        let pixels = u64::from(w) * u64::from(h);
        let bitrate = (800_000 * pixels / (640 * 360)).max(MIN_VIDEO_BITRATE);
        rungs.push(Rung {
            name: format!("{h}p"),
            width: w,
            height: h,
            video_bitrate: bitrate,
            profile: "main",
        });
    }
    rungs
}

/// Live rungs at `heights` (a 16:9 source is assumed for the nominal width; the published
/// RESOLUTION is read from the encoded init segment). Bitrates follow the VOD table, the nearest
/// standard rung at or below each height.
pub fn live_rungs(heights: &[u32]) -> Vec<Rung> {
    heights
        .iter()
        .map(|&h| {
            let bitrate = RUNGS.iter().find(|(rh, _)| *rh <= h).map_or(
                MIN_VIDEO_BITRATE.max(800_000 * u64::from(h) / 360),
                |(_, b)| *b,
            );
            rung(1920, 1080, h, bitrate)
        })
        .collect()
}

fn rung(src_w: u32, src_h: u32, h: u32, bitrate: u64) -> Rung {
    Rung {
        name: format!("{h}p"),
        width: scaled_width(src_w, src_h, h),
        height: h,
        video_bitrate: bitrate,
        profile: if h <= 480 { "main" } else { "high" },
    }
}

/// Width ffmpeg picks for `scale=-2:h`: `av_rescale(h, src_w, src_h * 2) * 2`, i.e. the aspect-
/// preserving width rounded to the nearest even number (at least 2).
pub fn scaled_width(src_w: u32, src_h: u32, h: u32) -> u32 {
    if src_h == 0 {
        return 2;
    }
    let num = u64::from(h) * u64::from(src_w);
    let den = u64::from(src_h) * 2;
    // Round half away from zero, as av_rescale does.
    let half_units = (num + den / 2) / den;
    u32::try_from(half_units * 2).unwrap_or(u32::MAX).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &[Rung]) -> Vec<&str> {
        r.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn full_hd_gets_four_rungs() {
        let r = select(1920, 1080);
        assert_eq!(names(&r), ["1080p", "720p", "480p", "360p"]);
        let sizes: Vec<(u32, u32)> = r.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(1920, 1080), (1280, 720), (854, 480), (640, 360)]);
        assert_eq!(r[0].video_bitrate, 5_000_000);
        assert_eq!(r[0].profile, "high");
        assert_eq!(r[2].profile, "main");
    }

    #[test]
    fn uhd_gets_five_rungs() {
        let r = select(3840, 2160);
        assert_eq!(names(&r), ["2160p", "1080p", "720p", "480p", "360p"]);
        assert_eq!((r[0].width, r[0].video_bitrate), (3840, 14_000_000));
    }

    #[test]
    fn hd_gets_three_rungs() {
        assert_eq!(names(&select(1280, 720)), ["720p", "480p", "360p"]);
    }

    #[test]
    fn never_upscales_between_rungs() {
        // 1440p is not a rung; it gets 1080p and below, not 2160p.
        assert_eq!(
            names(&select(2560, 1440)),
            ["1080p", "720p", "480p", "360p"]
        );
        // Just below a rung height: that rung is left out.
        assert_eq!(names(&select(1918, 1079)), ["720p", "480p", "360p"]);
        assert_eq!(names(&select(640, 360)), ["360p"]);
    }

    #[test]
    fn tiny_source_gets_one_rung_at_its_own_size() {
        let r = select(426, 240);
        assert_eq!(names(&r), ["240p"]);
        assert_eq!((r[0].width, r[0].height), (426, 240));
        assert!(r[0].video_bitrate >= MIN_VIDEO_BITRATE && r[0].video_bitrate < 800_000);
        // Odd sizes become even.
        let r = select(175, 143);
        assert_eq!((r[0].width, r[0].height), (174, 142));
        assert_eq!(r[0].name, "142p");
        assert_eq!(r[0].video_bitrate, MIN_VIDEO_BITRATE);
    }

    #[test]
    fn odd_aspect_ratios_keep_even_widths() {
        // Cinemascope 2.39:1 at 1920x804: 720p, 480p, 360p with aspect kept.
        let r = select(1920, 804);
        assert_eq!(names(&r), ["720p", "480p", "360p"]);
        for rung in &r {
            assert_eq!(rung.width % 2, 0);
            let aspect = f64::from(rung.width) / f64::from(rung.height);
            assert!((aspect - 1920.0 / 804.0).abs() < 0.01, "{rung:?}");
        }
        // Portrait phone video: heights are the long side.
        let r = select(1080, 1920);
        assert_eq!((r[0].name.as_str(), r[0].width), ("1080p", 608));
    }

    #[test]
    fn scaled_width_matches_ffmpeg() {
        // Values ffmpeg 5.1 prints for scale=-2:H.
        assert_eq!(scaled_width(1280, 720, 480), 854);
        assert_eq!(scaled_width(1280, 720, 360), 640);
        assert_eq!(scaled_width(1920, 1080, 480), 854);
        assert_eq!(scaled_width(720, 576, 360), 450);
        assert_eq!(scaled_width(0, 0, 360), 2);
    }
}
