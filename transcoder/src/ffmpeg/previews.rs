//! The poster and thumbnail outputs of a VOD job: three more branches of the ladder's `split`
//! (same decode, no second ffmpeg over the source) and their JPEG outputs. Pure, so the exact
//! filters are unit-tested; [`crate::pipeline::previews`] collects and publishes the files.
//!
//! ```text
//! [pp]trim=start=S:duration=W,blackframe=amount=0:threshold=32,
//!     metadata=mode=select:key=lavfi.blackframe.pblack:value=90:function=less,
//!     trim=end_frame=K,scale=…,thumbnail=n=K[poster]              → poster.jpg
//! [pf]trim=start=S,trim=end_frame=1,scale=…[poster_any]              → poster-any.jpg
//! [pt]fps=fps=1000/I_MS:round=up,scale=TW:-2,tile=CxR[thumbs]        → thumbs-%d.jpg
//! ```
//!
//! Poster: the search starts at 10 % of the media (past intros and fades from black) and lasts
//! at most 40 % of it or 60 s. `blackframe` with `amount=0` tags every frame with the share of
//! its pixels darker than luma 32; frames that are 90 % dark or more are dropped, and
//! `thumbnail` picks the most representative of the first K (≈ 1 s) frames left. Both `trim`s
//! bound the work: after the window nothing but `trim` itself sees a frame, and only K frames
//! are ever scaled. Media that is dark through the whole window yields no `poster.jpg`; the
//! fallback branch's first frame at S (`poster-any.jpg`, one scaled frame) is used instead.
//!
//! Sprites: `fps` with `round=up` takes `ceil(duration / interval)` frames (at 0, I, 2I, …),
//! each scaled to the tile width and tiled row by row; ffmpeg writes a sheet whenever the grid
//! is full and a padded last one at the end.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use ringcast_proto::thumbnails::{self, SpritePlan};

use crate::config::previews::PreviewsConfig;
use crate::ffmpeg::probe::ProbeInfo;
use crate::ladder::Rung;

/// Where the poster search starts, as a share of the duration.
const POSTER_START_SHARE: f64 = 0.10;
/// How long it goes on, as a share of the duration …
const POSTER_WINDOW_SHARE: f64 = 0.40;
/// … and at most, in seconds (also the window of media with no known duration).
const POSTER_WINDOW_MAX_SECS: f64 = 60.0;
/// A pixel darker than this luma counts as black (`blackframe` `threshold`).
const BLACK_LUMA: u32 = 32;
/// A frame with at least this percentage of black pixels is skipped.
const BLACK_PERCENT: u32 = 90;
/// Most frames `thumbnail` compares (each one kept in memory at poster size).
const POSTER_PICK_MAX_FRAMES: u32 = 30;
/// JPEG quality (`-q:v`, 2 best … 31 worst) of the poster and of the sprite sheets.
const POSTER_QUALITY: &str = "3";
const SPRITE_QUALITY: &str = "5";

/// File names in the job's work directory.
pub const POSTER_FILE: &str = "poster.jpg";
pub const POSTER_FALLBACK_FILE: &str = "poster-any.jpg";

/// Graph labels of the split branches and their outputs.
const POSTER_IN: &str = "pp";
const FALLBACK_IN: &str = "pf";
const THUMBS_IN: &str = "pt";
const POSTER_OUT: &str = "poster";
const FALLBACK_OUT: &str = "poster_any";
const THUMBS_OUT: &str = "thumbs";

/// The labels a graph with previews splits into, after the rungs' `[s{i}]`.
pub const SPLIT_LABELS: [&str; 3] = [POSTER_IN, FALLBACK_IN, THUMBS_IN];

/// What the preview branches of one job do.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewPlan {
    /// The poster's `scale` arguments (`-2:720`, `1080:-2`, `1280:-2`).
    pub poster_scale: String,
    /// The poster's expected size (for logs and tests; the file is what counts).
    pub poster_size: (u32, u32),
    /// Poster search window: start and length in seconds.
    pub poster_start: f64,
    pub poster_window: f64,
    /// Frames `thumbnail` chooses from.
    pub poster_pick: u32,
    /// Thumbnail spacing and sheet grid.
    pub sprite: SpritePlan,
    /// Width of one thumbnail tile.
    pub tile_width: u32,
}

/// The plan for a job with these rungs (highest first) and this probe.
pub fn plan(rungs: &[Rung], probe: &ProbeInfo, cfg: &PreviewsConfig) -> PreviewPlan {
    let (poster_scale, poster_size) = match rungs.first() {
        Some(top) if top.width <= cfg.poster_max_width => {
            let scale = if top.is_vertical() {
                format!("{}:-2", top.width)
            } else {
                format!("-2:{}", top.height)
            };
            (scale, (top.width, top.height))
        }
        top => {
            let (w, h) = top.map_or((probe.width, probe.height), |t| (t.width, t.height));
            let max = cfg.poster_max_width;
            (format!("{max}:-2"), (max, scaled_even(max, w, h)))
        }
    };
    let duration = probe.duration.filter(|d| d.is_finite() && *d > 0.0);
    let (poster_start, poster_window) = match duration {
        Some(d) => (
            round_ms(d * POSTER_START_SHARE),
            round_ms((d * POSTER_WINDOW_SHARE).min(POSTER_WINDOW_MAX_SECS)),
        ),
        None => (0.0, POSTER_WINDOW_MAX_SECS),
    };
    let fps = probe.fps.as_f64();
    let poster_pick = if fps.is_finite() && fps >= 1.0 {
        (fps.round() as u32).clamp(1, POSTER_PICK_MAX_FRAMES)
    } else {
        1
    };
    // Never upscale a tiny source into blurry tiles; keep the width even for the scaler.
    let tile_width = cfg.thumbnail_width.min(probe.width.max(2) & !1);
    PreviewPlan {
        poster_scale,
        poster_size,
        poster_start,
        poster_window,
        poster_pick,
        sprite: thumbnails::plan(
            duration,
            cfg.thumbnail_interval_secs,
            cfg.thumbnail_max_tiles,
        ),
        tile_width,
    }
}

/// `round(target x h / w)` down to even, as ffmpeg's `scale=W:-2` computes the other side.
fn scaled_even(target: u32, w: u32, h: u32) -> u32 {
    if w == 0 {
        return 0;
    }
    let exact = (u64::from(target) * u64::from(h) + u64::from(w)) / (2 * u64::from(w));
    u32::try_from(exact * 2).unwrap_or(u32::MAX)
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The three branches appended to the ladder's graph (each starts with `;`); the ladder's
/// `split` must list [`SPLIT_LABELS`] after its own outputs.
pub fn filter_branches(p: &PreviewPlan) -> String {
    let interval_ms = (p.sprite.interval * 1000.0).round().max(1.0) as u64;
    format!(
        ";[{POSTER_IN}]trim=start={start}:duration={window},\
         blackframe=amount=0:threshold={BLACK_LUMA},\
         metadata=mode=select:key=lavfi.blackframe.pblack:value={BLACK_PERCENT}:function=less,\
         trim=end_frame={pick},scale={scale},thumbnail=n={pick}[{POSTER_OUT}]\
         ;[{FALLBACK_IN}]trim=start={start},trim=end_frame=1,scale={scale}[{FALLBACK_OUT}]\
         ;[{THUMBS_IN}]fps=fps=1000/{interval_ms}:round=up,scale={tile}:-2,\
         tile={cols}x{rows}[{THUMBS_OUT}]",
        start = p.poster_start,
        window = p.poster_window,
        pick = p.poster_pick,
        scale = p.poster_scale,
        tile = p.tile_width,
        cols = p.sprite.columns,
        rows = p.sprite.rows,
    )
}

/// Where the preview outputs go: all in the job's work directory.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewFiles {
    pub dir: PathBuf,
}

impl PreviewFiles {
    pub fn poster(&self) -> PathBuf {
        self.dir.join(POSTER_FILE)
    }

    pub fn poster_fallback(&self) -> PathBuf {
        self.dir.join(POSTER_FALLBACK_FILE)
    }

    /// Sprite sheet `index` as ffmpeg names it.
    pub fn sheet(&self, index: u32) -> PathBuf {
        self.dir.join(thumbnails::sheet_name(index))
    }

    /// The image2 pattern for the sheets, `{dir}/thumbs-%d.jpg`, with any `%` of the directory
    /// doubled so that ffmpeg takes it literally.
    fn sheet_pattern(&self) -> OsString {
        let mut bytes = Vec::new();
        for &b in self.dir.as_os_str().as_bytes() {
            bytes.push(b);
            if b == b'%' {
                bytes.push(b'%');
            }
        }
        let mut pattern = PathBuf::from(OsString::from_vec(bytes));
        pattern.push("thumbs-%d.jpg");
        pattern.into_os_string()
    }
}

/// Append the three JPEG outputs (they read the graph's preview labels).
pub fn push_output_args(a: &mut Vec<OsString>, files: &PreviewFiles) {
    fn push(a: &mut Vec<OsString>, items: &[&str]) {
        a.extend(items.iter().map(OsString::from));
    }
    for (label, path) in [
        (POSTER_OUT, files.poster()),
        (FALLBACK_OUT, files.poster_fallback()),
    ] {
        push(a, &["-map", &format!("[{label}]"), "-map_metadata", "-1"]);
        // -update 1: one image under a literal file name (no %d pattern).
        push(
            a,
            &[
                "-frames:v",
                "1",
                "-c:v",
                "mjpeg",
                "-q:v",
                POSTER_QUALITY,
                "-f",
                "image2",
                "-update",
                "1",
            ],
        );
        a.push(path_arg(&path));
    }
    push(
        a,
        &[
            "-map",
            &format!("[{THUMBS_OUT}]"),
            "-map_metadata",
            "-1",
            "-c:v",
            "mjpeg",
            "-q:v",
            SPRITE_QUALITY,
            "-f",
            "image2",
            "-start_number",
            "0",
        ],
    );
    a.push(files.sheet_pattern());
}

fn path_arg(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffmpeg::probe::FrameRate;
    use crate::ladder;

    fn probe(w: u32, h: u32, duration: Option<f64>) -> ProbeInfo {
        ProbeInfo {
            width: w,
            height: h,
            fps: FrameRate { num: 30, den: 1 },
            duration,
            bit_rate: None,
            has_audio: true,
        }
    }

    #[test]
    fn plan_follows_the_top_rung_and_the_duration() {
        let cfg = PreviewsConfig::default();
        let p = plan(
            &ladder::select(1280, 720),
            &probe(1280, 720, Some(10.0)),
            &cfg,
        );
        assert_eq!(p.poster_scale, "-2:720");
        assert_eq!(p.poster_size, (1280, 720));
        assert_eq!((p.poster_start, p.poster_window), (1.0, 4.0));
        assert_eq!(p.poster_pick, 30);
        assert_eq!(
            (p.sprite.interval, p.sprite.columns, p.sprite.rows),
            (2.0, 5, 1)
        );
        assert_eq!(p.tile_width, 160);

        // 1080p is wider than the poster may be: scaled to 1280 wide.
        let p = plan(
            &ladder::select(1920, 1080),
            &probe(1920, 1080, Some(3600.0)),
            &cfg,
        );
        assert_eq!(
            (p.poster_scale.as_str(), p.poster_size),
            ("1280:-2", (1280, 720))
        );
        assert_eq!((p.poster_start, p.poster_window), (360.0, 60.0));
        assert_eq!(
            (p.sprite.interval, p.sprite.columns, p.sprite.rows),
            (12.0, 10, 10)
        );

        // Vertical: by the width, as the ladder.
        let p = plan(&ladder::select(480, 854), &probe(480, 854, None), &cfg);
        assert_eq!(
            (p.poster_scale.as_str(), p.poster_size),
            ("480:-2", (480, 854))
        );
        assert_eq!((p.poster_start, p.poster_window), (0.0, 60.0));
        assert_eq!((p.sprite.columns, p.sprite.rows), (10, 10));

        // A tiny source keeps its own width for the tiles.
        let p = plan(&ladder::select(100, 60), &probe(101, 60, Some(2.0)), &cfg);
        assert_eq!(p.tile_width, 100);
        assert_eq!(scaled_even(1280, 1920, 1080), 720);
        assert_eq!(scaled_even(1280, 1000, 1001), 1282);
    }

    #[test]
    fn branches_are_exact() {
        let cfg = PreviewsConfig::default();
        let p = plan(
            &ladder::select(1280, 720),
            &probe(1280, 720, Some(10.0)),
            &cfg,
        );
        assert_eq!(
            filter_branches(&p),
            ";[pp]trim=start=1:duration=4,blackframe=amount=0:threshold=32,\
             metadata=mode=select:key=lavfi.blackframe.pblack:value=90:function=less,\
             trim=end_frame=30,scale=-2:720,thumbnail=n=30[poster]\
             ;[pf]trim=start=1,trim=end_frame=1,scale=-2:720[poster_any]\
             ;[pt]fps=fps=1000/2000:round=up,scale=160:-2,tile=5x1[thumbs]"
        );
    }

    #[test]
    fn outputs_are_literal_files_and_a_sheet_pattern() {
        let files = PreviewFiles {
            dir: PathBuf::from("/w/100%-job"),
        };
        let mut a = Vec::new();
        push_output_args(&mut a, &files);
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let joined = a.join(" ");
        assert_eq!(
            joined,
            "-map [poster] -map_metadata -1 -frames:v 1 -c:v mjpeg -q:v 3 -f image2 -update 1 \
             /w/100%-job/poster.jpg \
             -map [poster_any] -map_metadata -1 -frames:v 1 -c:v mjpeg -q:v 3 -f image2 \
             -update 1 /w/100%-job/poster-any.jpg \
             -map [thumbs] -map_metadata -1 -c:v mjpeg -q:v 5 -f image2 -start_number 0 \
             /w/100%%-job/thumbs-%d.jpg"
        );
        assert_eq!(files.sheet(2), PathBuf::from("/w/100%-job/thumbs-2.jpg"));
    }
}
