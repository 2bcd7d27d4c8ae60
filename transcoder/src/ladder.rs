//! The adaptive bitrate ladder: which renditions a source gets, at what size and bitrate.
//!
//! Rule: rungs follow the source's short side, as the ladders of video platforms do: a rung's
//! name and nominal size (`1080p`, `720p`, …) is its short side, so a 1080x1920 phone video
//! gets 1080x1920, 720x1280, 480x854 and 360x640 instead of being squeezed to 608 pixels wide.
//! Every standard rung whose short side is at most the source's short side is produced (never
//! upscale, since upscaled pixels cost bits and add nothing); a source whose short side is below
//! the smallest rung gets a single rung at its own (even) size. The long side follows ffmpeg's
//! `scale=-2:H` (horizontal and square) or `scale=W:-2` (vertical), so the aspect ratio is kept
//! and every dimension is even as 4:2:0 chroma needs. Bitrates are per rung whatever the
//! orientation: they follow the pixel count, which rotation does not change.
//!
//! Sizes are display sizes: the probe swaps width and height of a stream rotated by 90/270
//! degrees, and ffmpeg autorotates while decoding, so the scalers see the upright frames.

/// Audio bitrate of every rendition (AAC-LC stereo 48 kHz), bits per second.
pub const AUDIO_BITRATE: u64 = 128_000;

/// Standard rungs, highest first: short side, video bits per second.
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
    /// Directory name and HLS `NAME`, e.g. `720p` (the short side, whatever the orientation).
    pub name: String,
    /// The size ffmpeg's scaler will produce (the published RESOLUTION is read back from the
    /// encoded init segment, not from here).
    pub width: u32,
    pub height: u32,
    /// Target video bits per second (`-b:v`).
    pub video_bitrate: u64,
    /// H.264 profile: `high`, or `main` for small rungs (older phones decode those in hardware).
    pub profile: &'static str,
}

impl Rung {
    /// Whether the rung is taller than wide: its short side is the width, so the scaler must
    /// be given the width (`scale=W:-2`) for the rung to get exactly the nominal short side.
    pub fn is_vertical(&self) -> bool {
        self.width < self.height
    }
}

/// The rungs for a source of `width` x `height` (display size, after rotation), highest first.
pub fn select(width: u32, height: u32) -> Vec<Rung> {
    let short = width.min(height);
    let mut rungs: Vec<Rung> = RUNGS
        .iter()
        .filter(|(s, _)| *s <= short)
        .map(|&(s, bitrate)| rung(width, height, s, bitrate))
        .collect();
    if rungs.is_empty() {
        // Short side below 360: one rendition at source size, bitrate scaled by pixel count
        // from the 360p rung (640x360).
        let s = (short & !1).max(2);
        let (w, h) = fit(width, height, s);
        let pixels = u64::from(w) * u64::from(h);
        let bitrate = (800_000 * pixels / (640 * 360)).max(MIN_VIDEO_BITRATE);
        rungs.push(Rung {
            name: format!("{s}p"),
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

fn rung(src_w: u32, src_h: u32, short: u32, bitrate: u64) -> Rung {
    let (width, height) = fit(src_w, src_h, short);
    Rung {
        name: format!("{short}p"),
        width,
        height,
        video_bitrate: bitrate,
        profile: if short <= 480 { "main" } else { "high" },
    }
}

/// The size of a source of `src_w` x `src_h` scaled so that its short side is `short`: the
/// long side is what ffmpeg computes for the `-2` of `scale=-2:short` (horizontal or square
/// source) or `scale=short:-2` (vertical source).
fn fit(src_w: u32, src_h: u32, short: u32) -> (u32, u32) {
    if src_w < src_h {
        (short, scaled_width(src_h, src_w, short))
    } else {
        (scaled_width(src_w, src_h, short), short)
    }
}

/// Width ffmpeg picks for `scale=-2:h`: `av_rescale(h, src_w, src_h * 2) * 2`, i.e. the aspect-
/// preserving width rounded to the nearest even number (at least 2). With the roles swapped
/// (`scaled_width(src_h, src_w, w)`) it is the height of `scale=w:-2`.
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
    }

    fn sizes(r: &[Rung]) -> Vec<(u32, u32)> {
        r.iter().map(|r| (r.width, r.height)).collect()
    }

    #[test]
    fn vertical_source_follows_the_short_side() {
        // A phone video keeps its full width: the 1080p rung is 1080 wide, not 608.
        let r = select(1080, 1920);
        assert_eq!(names(&r), ["1080p", "720p", "480p", "360p"]);
        assert_eq!(
            sizes(&r),
            [(1080, 1920), (720, 1280), (480, 854), (360, 640)]
        );
        // Bitrates and profiles are those of the horizontal rungs with the same pixel count.
        let horizontal = select(1920, 1080);
        for (v, h) in r.iter().zip(&horizontal) {
            assert_eq!((v.width, v.height), (h.height, h.width));
            assert_eq!((v.video_bitrate, v.profile), (h.video_bitrate, h.profile));
            assert!(v.is_vertical() && !h.is_vertical());
        }
        assert_eq!(
            sizes(&select(2160, 3840)),
            [
                (2160, 3840),
                (1080, 1920),
                (720, 1280),
                (480, 854),
                (360, 640)
            ]
        );
        assert_eq!(
            sizes(&select(720, 1280)),
            [(720, 1280), (480, 854), (360, 640)]
        );
    }

    #[test]
    fn vertical_source_never_upscales_its_short_side() {
        // 1079 wide: the 1080p rung would be an upscale even though 1920 >= 1080.
        assert_eq!(names(&select(1079, 1918)), ["720p", "480p", "360p"]);
        // 4:5 portrait (Instagram): 1080x1350 gets 1080p at full size.
        let r = select(1080, 1350);
        assert_eq!(
            sizes(&r),
            [(1080, 1350), (720, 900), (480, 600), (360, 450)]
        );
        for rung in select(1000, 3000) {
            assert!(rung.width <= 1000 && rung.height <= 3000, "{rung:?}");
        }
    }

    /// What the ladder is given for a rotated stream: the probe swaps the coded 1920x1080 of a
    /// `rotate=90` phone recording into its 1080x1920 display size.
    #[test]
    fn rotated_source_is_laddered_by_its_display_size() {
        let coded = (1920, 1080);
        let display = (coded.1, coded.0);
        let r = select(display.0, display.1);
        assert_eq!(r[0].name, "1080p");
        assert_eq!((r[0].width, r[0].height), (1080, 1920));
        assert!(r.iter().all(Rung::is_vertical));
    }

    #[test]
    fn square_source_uses_both_sides() {
        let r = select(1080, 1080);
        assert_eq!(names(&r), ["1080p", "720p", "480p", "360p"]);
        assert_eq!(
            sizes(&r),
            [(1080, 1080), (720, 720), (480, 480), (360, 360)]
        );
        assert!(!r.iter().any(Rung::is_vertical));
        assert_eq!(sizes(&select(300, 300)), [(300, 300)]);
    }

    #[test]
    fn odd_vertical_sizes_become_even() {
        let r = select(1081, 1921);
        assert_eq!(names(&r), ["1080p", "720p", "480p", "360p"]);
        for rung in &r {
            assert_eq!((rung.width % 2, rung.height % 2), (0, 0), "{rung:?}");
            let aspect = f64::from(rung.height) / f64::from(rung.width);
            assert!((aspect - 1921.0 / 1081.0).abs() < 0.01, "{rung:?}");
        }
        assert_eq!(sizes(&r)[0], (1080, 1920));
    }

    #[test]
    fn tiny_vertical_source_gets_one_rung_at_its_own_size() {
        // 240x426: short side 240, below the 360p rung, so one rendition named by the short side.
        let r = select(240, 426);
        assert_eq!(names(&r), ["240p"]);
        assert_eq!(sizes(&r), [(240, 426)]);
        // Same bitrate as the rotated 426x240 (same pixel count).
        assert_eq!(r[0].video_bitrate, select(426, 240)[0].video_bitrate);
        // A tall, thin source is tiny by its width even though its height exceeds 360.
        let r = select(143, 701);
        assert_eq!(names(&r), ["142p"]);
        assert_eq!(sizes(&r), [(142, 696)]);
        assert_eq!(r[0].video_bitrate, 800_000 * 142 * 696 / (640 * 360));
        assert_eq!(sizes(&select(1, 3)), [(2, 6)]);
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
