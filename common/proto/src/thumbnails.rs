//! Seek-preview thumbnails: how often a frame is taken, how the frames are tiled into sprite
//! sheets (`thumbs-{i}.jpg`), and the WebVTT track (`thumbnails.vtt`) that maps each stretch of
//! the media to its tile with a media fragment, `thumbs-0.jpg#xywh=x,y,w,h` (W3C Media
//! Fragments URI §4.2.1), the form players' thumbnail plugins read.
//!
//! The transcoder takes one frame every `interval` seconds (ffmpeg `fps=1/interval:round=up`,
//! which yields `ceil(duration / interval)` frames), scales it and tiles the frames row by row,
//! [`SHEET_COLUMNS`] x [`SHEET_ROWS`] at most per sheet. The track is then built from the sheets
//! ffmpeg actually wrote ([`SheetGeometry::from_sheet`]: tile size = sheet size / grid) and the
//! duration of the published media, so every cue lies inside a real sheet and the cues cover the
//! media from 0 to its end without gaps.

use std::fmt::Write as _;

/// Most tiles per sheet row.
pub const SHEET_COLUMNS: u32 = 10;
/// Most rows per sheet: at most 100 tiles (at 160 px wide, 1600x900 for 16:9) per sheet.
pub const SHEET_ROWS: u32 = 10;

/// Name of sprite sheet `index`, relative to the version prefix.
pub fn sheet_name(index: u32) -> String {
    format!("thumbs-{index}.jpg")
}

/// Why no thumbnail track could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThumbnailError {
    #[error("media duration {0} s is not positive")]
    Duration(f64),
    #[error("thumbnail interval {0} s is not positive")]
    Interval(f64),
    #[error("no sprite sheet was written")]
    NoSheets,
    #[error("sprite sheet {width}x{height} is not a {columns}x{rows} grid of equal tiles")]
    Grid {
        width: u32,
        height: u32,
        columns: u32,
        rows: u32,
    },
}

/// What to ask ffmpeg for: one frame every `interval` seconds, tiled `columns` x `rows`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpritePlan {
    pub interval: f64,
    pub columns: u32,
    pub rows: u32,
}

impl SpritePlan {
    /// Tiles per sheet.
    pub fn per_sheet(&self) -> u32 {
        self.columns * self.rows
    }
}

/// The plan for media of `duration` seconds (`None`: unknown): every `min_interval` seconds,
/// or less often when that would make more than `max_tiles` tiles (the interval then grows to
/// `duration / max_tiles`, rounded up to a whole second). A short media gets a sheet just big
/// enough for its tiles (a 6 s clip at 2 s: 3x1), anything with more than 100 tiles full
/// 10x10 sheets. `max_tiles` 0 counts as 1.
pub fn plan(duration: Option<f64>, min_interval: f64, max_tiles: u32) -> SpritePlan {
    let duration = duration.filter(|d| d.is_finite() && *d > 0.0);
    let mut interval = min_interval;
    if let Some(d) = duration {
        let spread = d / f64::from(max_tiles.max(1));
        if spread > interval {
            interval = spread.ceil();
        }
    }
    let (columns, rows) = match duration {
        Some(d) => {
            let tiles = tile_count(d, interval).max(1);
            let columns = tiles.min(SHEET_COLUMNS);
            (columns, tiles.div_ceil(columns).min(SHEET_ROWS))
        }
        None => (SHEET_COLUMNS, SHEET_ROWS),
    };
    SpritePlan {
        interval,
        columns,
        rows,
    }
}

/// Frames taken from `duration` seconds every `interval`: one at 0, interval, 2 x interval, …
/// (`ceil`, computed on whole milliseconds as the track is).
pub fn tile_count(duration: f64, interval: f64) -> u32 {
    let (d, i) = (millis(duration), millis(interval));
    if d == 0 || i == 0 {
        return 0;
    }
    u32::try_from(d.div_ceil(i)).unwrap_or(u32::MAX)
}

/// The tile layout of the sheets ffmpeg wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetGeometry {
    pub tile_width: u32,
    pub tile_height: u32,
    pub columns: u32,
    pub rows: u32,
    /// Sheets written (`thumbs-0.jpg` … `thumbs-{sheets-1}.jpg`).
    pub sheets: u32,
}

impl SheetGeometry {
    /// From a sheet's real pixel size (every sheet has the size of the full grid, the last one
    /// padded) and the grid it was tiled with.
    pub fn from_sheet(
        (width, height): (u32, u32),
        columns: u32,
        rows: u32,
        sheets: u32,
    ) -> Result<Self, ThumbnailError> {
        let grid = ThumbnailError::Grid {
            width,
            height,
            columns,
            rows,
        };
        if columns == 0 || rows == 0 || width % columns != 0 || height % rows != 0 {
            return Err(grid);
        }
        let (tile_width, tile_height) = (width / columns, height / rows);
        if tile_width == 0 || tile_height == 0 {
            return Err(grid);
        }
        if sheets == 0 {
            return Err(ThumbnailError::NoSheets);
        }
        Ok(Self {
            tile_width,
            tile_height,
            columns,
            rows,
            sheets,
        })
    }

    fn per_sheet(&self) -> u32 {
        self.columns * self.rows
    }
}

/// One cue of the track: `[start_ms, end_ms)` shows tile (`x`, `y`, `w`, `h`) of `sheet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub sheet: u32,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// The cues for `duration` seconds of media with a frame every `interval` seconds: cue `i`
/// starts at `i x interval` and ends where the next starts, the last one at the duration. At
/// most as many cues as the sheets hold tiles; should the sheets hold fewer tiles than the
/// duration needs, the last cue is stretched to the end instead of pointing past the last sheet.
pub fn cues(
    duration: f64,
    interval: f64,
    geometry: &SheetGeometry,
) -> Result<Vec<Cue>, ThumbnailError> {
    let (end, step) = (millis(duration), millis(interval));
    if end == 0 {
        return Err(ThumbnailError::Duration(duration));
    }
    if step == 0 {
        return Err(ThumbnailError::Interval(interval));
    }
    let capacity = u64::from(geometry.per_sheet()) * u64::from(geometry.sheets);
    let count = end.div_ceil(step).min(capacity);
    Ok((0..count)
        .map(|i| {
            // `i < capacity <= u32::MAX * u32::MAX`: split into sheet and cell in u64.
            let sheet = i / u64::from(geometry.per_sheet());
            let cell = i % u64::from(geometry.per_sheet());
            let (col, row) = (
                cell % u64::from(geometry.columns),
                cell / u64::from(geometry.columns),
            );
            Cue {
                start_ms: i * step,
                end_ms: if i + 1 == count { end } else { (i + 1) * step },
                sheet: sheet as u32,
                x: col as u32 * geometry.tile_width,
                y: row as u32 * geometry.tile_height,
                w: geometry.tile_width,
                h: geometry.tile_height,
            }
        })
        .collect())
}

/// The WebVTT file (W3C WebVTT §4) for [`cues`]: a `WEBVTT` header, then one cue per tile
/// whose payload is the sheet's name with an `#xywh=` fragment.
pub fn render_vtt(
    duration: f64,
    interval: f64,
    geometry: &SheetGeometry,
) -> Result<String, ThumbnailError> {
    let mut out = String::from("WEBVTT\n");
    for cue in cues(duration, interval, geometry)? {
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "\n{} --> {}\n{}#xywh={},{},{},{}\n",
            timestamp(cue.start_ms),
            timestamp(cue.end_ms),
            sheet_name(cue.sheet),
            cue.x,
            cue.y,
            cue.w,
            cue.h
        );
    }
    Ok(out)
}

/// `HH:MM:SS.mmm` (WebVTT timestamps have at least two hour digits here, for any length).
pub fn timestamp(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    format!(
        "{h:02}:{:02}:{:02}.{:03}",
        rest / 60_000,
        rest % 60_000 / 1000,
        rest % 1000
    )
}

/// Seconds to whole milliseconds, rounded; 0 for anything not positive and finite.
fn millis(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(columns: u32, rows: u32, sheets: u32) -> SheetGeometry {
        SheetGeometry::from_sheet((160 * columns, 90 * rows), columns, rows, sheets).expect("grid")
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "00:00:00.000");
        assert_eq!(timestamp(5_000), "00:00:05.000");
        assert_eq!(timestamp(61_234), "00:01:01.234");
        assert_eq!(timestamp(3_600_000 * 101 + 59_999), "101:00:59.999");
    }

    #[test]
    fn plan_scales_the_interval_and_the_sheet() {
        // Short media: a sheet just big enough.
        assert_eq!(
            plan(Some(6.0), 2.0, 300),
            SpritePlan {
                interval: 2.0,
                columns: 3,
                rows: 1
            }
        );
        // 4.2 s at 2 s: 3 frames (0, 2, 4).
        assert_eq!(plan(Some(4.2), 2.0, 300).columns, 3);
        assert_eq!(
            plan(Some(50.0), 2.0, 300),
            SpritePlan {
                interval: 2.0,
                columns: 10,
                rows: 3
            }
        );
        // 10 min at 2 s = 300 tiles: still 2 s, full sheets.
        let p = plan(Some(600.0), 2.0, 300);
        assert_eq!((p.interval, p.columns, p.rows), (2.0, 10, 10));
        assert_eq!(tile_count(600.0, p.interval), 300);
        // 2 h: the interval grows to keep at most 300 tiles (3 sheets).
        let p = plan(Some(7200.0), 2.0, 300);
        assert_eq!(p.interval, 24.0);
        assert_eq!(tile_count(7200.0, p.interval), 300);
        // 1001 s / 300 = 3.34 s → 4 s, whole seconds.
        assert_eq!(plan(Some(1001.0), 2.0, 300).interval, 4.0);
        // Unknown or nonsense duration: the minimum interval, full sheets.
        for d in [None, Some(0.0), Some(f64::NAN), Some(-3.0)] {
            assert_eq!(
                plan(d, 2.0, 300),
                SpritePlan {
                    interval: 2.0,
                    columns: 10,
                    rows: 10
                }
            );
        }
        assert_eq!(plan(Some(10.0), 2.0, 0).interval, 10.0);
    }

    #[test]
    fn track_for_a_short_clip() {
        let g = geometry(3, 1, 1);
        assert_eq!(
            render_vtt(5.0, 2.0, &g).expect("vtt"),
            "WEBVTT\n\
             \n00:00:00.000 --> 00:00:02.000\nthumbs-0.jpg#xywh=0,0,160,90\n\
             \n00:00:02.000 --> 00:00:04.000\nthumbs-0.jpg#xywh=160,0,160,90\n\
             \n00:00:04.000 --> 00:00:05.000\nthumbs-0.jpg#xywh=320,0,160,90\n"
        );
    }

    #[test]
    fn cues_run_across_sheets_and_rows() {
        let g = geometry(10, 10, 3);
        let c = cues(250.0, 1.0, &g).expect("cues");
        assert_eq!(c.len(), 250);
        assert_eq!((c[0].sheet, c[0].x, c[0].y), (0, 0, 0));
        assert_eq!((c[9].sheet, c[9].x, c[9].y), (0, 1440, 0));
        assert_eq!((c[10].sheet, c[10].x, c[10].y), (0, 0, 90));
        assert_eq!((c[99].sheet, c[99].x, c[99].y), (0, 1440, 810));
        assert_eq!((c[100].sheet, c[100].x, c[100].y), (1, 0, 0));
        assert_eq!((c[249].sheet, c[249].x, c[249].y), (2, 1440, 360));
        // Contiguous from 0 to the end, every tile inside its sheet.
        assert_eq!(c[0].start_ms, 0);
        assert_eq!(c.last().map(|c| c.end_ms), Some(250_000));
        for w in c.windows(2) {
            assert_eq!(w[0].end_ms, w[1].start_ms);
        }
        for cue in &c {
            assert!(cue.x + cue.w <= 1600 && cue.y + cue.h <= 900, "{cue:?}");
            assert!(cue.sheet < 3);
        }
    }

    #[test]
    fn fewer_tiles_than_the_duration_needs_stretch_the_last_cue() {
        // 12 s at 2 s wants 6 tiles; a 2x2 sheet holds 4.
        let c = cues(12.0, 2.0, &geometry(2, 2, 1)).expect("cues");
        assert_eq!(c.len(), 4);
        assert_eq!((c[3].start_ms, c[3].end_ms), (6_000, 12_000));
        assert_eq!((c[3].x, c[3].y), (160, 90));
    }

    #[test]
    fn portrait_tiles_keep_their_size() {
        let g = SheetGeometry::from_sheet((480, 284), 3, 1, 1).expect("grid");
        assert_eq!((g.tile_width, g.tile_height), (160, 284));
        let vtt = render_vtt(6.0, 2.0, &g).expect("vtt");
        assert!(vtt.ends_with("thumbs-0.jpg#xywh=320,0,160,284\n"), "{vtt}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let g = geometry(2, 2, 1);
        assert_eq!(cues(0.0, 2.0, &g), Err(ThumbnailError::Duration(0.0)));
        assert!(matches!(
            cues(f64::NAN, 2.0, &g),
            Err(ThumbnailError::Duration(_))
        ));
        assert_eq!(cues(4.0, 0.0, &g), Err(ThumbnailError::Interval(0.0)));
        assert!(SheetGeometry::from_sheet((321, 90), 2, 1, 1).is_err());
        assert!(SheetGeometry::from_sheet((320, 90), 0, 1, 1).is_err());
        assert!(SheetGeometry::from_sheet((1, 1), 2, 2, 1).is_err());
        assert_eq!(
            SheetGeometry::from_sheet((320, 90), 2, 1, 0),
            Err(ThumbnailError::NoSheets)
        );
    }

    #[test]
    fn sheet_names() {
        assert_eq!(sheet_name(0), "thumbs-0.jpg");
        assert_eq!(sheet_name(12), "thumbs-12.jpg");
    }
}
