//! After a VOD run: the poster and the thumbnail sprites ffmpeg wrote into the work directory
//! ([`crate::ffmpeg::previews`]) are checked, the WebVTT track is built from the sheets' real
//! size and the published media's duration ([`ringcast_proto::thumbnails`]), everything is
//! uploaded under the version prefix, and the version's record goes into the video hash
//! (`rc:video:{video}` field `assets:{version}`, [`ringcast_proto::assets`]).
//!
//! All of this happens before [`crate::pipeline::publish`] writes the version's playlists and
//! the master pointer, and before the worker marks the job done (which makes the version
//! current): whoever sees the version ready finds its poster and thumbnails. A missing or
//! unreadable poster or sheet fails the job ([`TranscodeError::Previews`], permanent: the same
//! input gives the same ffmpeg output); nothing is published for the version then.

use std::path::Path;

use bytes::Bytes;
use redis::AsyncCommands;
use ringcast_proto::assets::{self, VersionAssets};
use ringcast_proto::thumbnails::{self, SheetGeometry};
use ringcast_proto::{content_type, jpeg, keys};

use crate::error::TranscodeError;
use crate::ffmpeg::previews::{PreviewFiles, PreviewPlan};
use crate::pipeline::rendition::Destination;

/// The poster and sheets read back from the work directory, with the track built from them.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedPreviews {
    pub poster: Bytes,
    /// Whether the poster is the fallback (the search window was dark throughout).
    pub poster_is_fallback: bool,
    pub sheets: Vec<Bytes>,
    pub geometry: SheetGeometry,
    pub vtt: String,
}

/// Read and check what ffmpeg wrote. `media_seconds` is the duration of the published media.
pub fn collect(
    files: &PreviewFiles,
    plan: &PreviewPlan,
    media_seconds: f64,
) -> Result<CollectedPreviews, TranscodeError> {
    let (poster, poster_is_fallback) = match read_jpeg(&files.poster())? {
        Some((bytes, _)) => (bytes, false),
        None => match read_jpeg(&files.poster_fallback())? {
            Some((bytes, _)) => (bytes, true),
            None => return Err(TranscodeError::Previews("ffmpeg wrote no poster".into())),
        },
    };
    let mut sheets = Vec::new();
    let mut size = None;
    // More than the most sheets the tile limit (`thumbnail_max_tiles` <= 10 000) allows: a
    // runaway count stops here.
    let max_sheets = 10_000 / plan.sprite.per_sheet().max(1) + 2;
    for index in 0..max_sheets {
        let Some((bytes, dims)) = read_jpeg(&files.sheet(index))? else {
            break;
        };
        match size {
            None => size = Some(dims),
            Some(first) if first != dims => {
                return Err(TranscodeError::Previews(format!(
                    "sprite sheet {index} is {}x{}, sheet 0 {}x{}",
                    dims.0, dims.1, first.0, first.1
                )))
            }
            Some(_) => {}
        }
        sheets.push(bytes);
    }
    let Some(size) = size else {
        return Err(TranscodeError::Previews(
            "ffmpeg wrote no sprite sheet".into(),
        ));
    };
    let geometry = SheetGeometry::from_sheet(
        size,
        plan.sprite.columns,
        plan.sprite.rows,
        sheets.len() as u32,
    )
    .map_err(|e| TranscodeError::Previews(e.to_string()))?;
    let vtt = thumbnails::render_vtt(media_seconds, plan.sprite.interval, &geometry)
        .map_err(|e| TranscodeError::Previews(e.to_string()))?;
    Ok(CollectedPreviews {
        poster,
        poster_is_fallback,
        sheets,
        geometry,
        vtt,
    })
}

/// A JPEG file's bytes and its pixel size.
type Jpeg = (Bytes, (u32, u32));

/// The file's bytes and JPEG size; `None` when it does not exist or is empty. A file that is
/// there but not a JPEG is an error.
fn read_jpeg(path: &Path) -> Result<Option<Jpeg>, TranscodeError> {
    let data = match std::fs::read(path) {
        Ok(d) if d.is_empty() => return Ok(None),
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TranscodeError::io(format!("reading {}", path.display()), e)),
    };
    let Some(dims) = jpeg::dimensions(&data) else {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        return Err(TranscodeError::Previews(format!("{name} is not a JPEG")));
    };
    Ok(Some((Bytes::from(data), dims)))
}

/// Upload the sheets, the track and the poster under the version prefix; returns the record.
pub async fn upload(
    dest: &Destination,
    collected: &CollectedPreviews,
) -> Result<VersionAssets, TranscodeError> {
    let key = |file: &str| keys::version_file(&dest.video_id, dest.version, file);
    let mut sheet_names = Vec::new();
    for (i, sheet) in collected.sheets.iter().enumerate() {
        let name = thumbnails::sheet_name(i as u32);
        dest.store
            .put(&key(&name), sheet.clone(), content_type::JPEG)
            .await?;
        sheet_names.push(name);
    }
    // The track after the sheets it points at.
    dest.store
        .put(
            &key(assets::THUMBNAILS_VTT),
            Bytes::from(collected.vtt.clone()),
            content_type::WEBVTT,
        )
        .await?;
    dest.store
        .put(
            &key(assets::POSTER),
            collected.poster.clone(),
            content_type::JPEG,
        )
        .await?;
    Ok(VersionAssets {
        poster: Some(assets::POSTER.into()),
        thumbnails: Some(assets::THUMBNAILS_VTT.into()),
        sheets: sheet_names,
    })
}

/// Record the version's assets in the video hash, where the ingest's video API finds them.
pub async fn record(
    redis_url: &str,
    video: &str,
    version: u32,
    record: &VersionAssets,
) -> Result<(), TranscodeError> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let () = conn
        .hset(keys::video(video), assets::field(version), record.to_json())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::previews::PreviewsConfig;
    use crate::ffmpeg::previews;
    use crate::ffmpeg::probe::{FrameRate, ProbeInfo};
    use crate::ladder;

    /// A minimal JPEG header of `w`x`h` (enough for `jpeg::dimensions`).
    fn jpeg_bytes(w: u16, h: u16) -> Vec<u8> {
        let mut d = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        d.extend(h.to_be_bytes());
        d.extend(w.to_be_bytes());
        d.extend([0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
        d
    }

    fn plan() -> PreviewPlan {
        let probe = ProbeInfo {
            width: 1280,
            height: 720,
            fps: FrameRate { num: 30, den: 1 },
            duration: Some(10.0),
            bit_rate: None,
            has_audio: false,
        };
        previews::plan(
            &ladder::select(1280, 720),
            &probe,
            &PreviewsConfig::default(),
        )
    }

    #[test]
    fn collects_poster_sheets_and_builds_the_track() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PreviewFiles {
            dir: dir.path().to_path_buf(),
        };
        let p = plan();
        assert_eq!((p.sprite.columns, p.sprite.rows), (5, 1));
        // Nothing written: no poster.
        let err = collect(&files, &p, 10.0).expect_err("no poster");
        assert!(
            err.is_permanent() && err.to_string().contains("no poster"),
            "{err}"
        );

        // Only the fallback (the window was dark): used, flagged.
        std::fs::write(files.poster_fallback(), jpeg_bytes(1280, 720)).expect("write");
        let err = collect(&files, &p, 10.0).expect_err("no sheet");
        assert!(err.to_string().contains("no sprite sheet"), "{err}");
        std::fs::write(files.sheet(0), jpeg_bytes(800, 90)).expect("write");
        let c = collect(&files, &p, 10.0).expect("collect");
        assert!(c.poster_is_fallback);
        assert_eq!(c.sheets.len(), 1);
        assert_eq!((c.geometry.tile_width, c.geometry.tile_height), (160, 90));
        assert!(c
            .vtt
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n"));
        assert!(c
            .vtt
            .ends_with("00:00:08.000 --> 00:00:10.000\nthumbs-0.jpg#xywh=640,0,160,90\n"));

        // The real poster wins over the fallback.
        std::fs::write(files.poster(), jpeg_bytes(1280, 720)).expect("write");
        assert!(
            !collect(&files, &p, 10.0)
                .expect("collect")
                .poster_is_fallback
        );

        // A sheet of another size, or a file that is not a JPEG, fails the job.
        std::fs::write(files.sheet(1), jpeg_bytes(160, 90)).expect("write");
        assert!(collect(&files, &p, 10.0).is_err());
        std::fs::write(files.sheet(1), b"not a jpeg").expect("write");
        let err = collect(&files, &p, 10.0).expect_err("not a jpeg");
        assert!(
            err.to_string().contains("thumbs-1.jpg is not a JPEG"),
            "{err}"
        );
        // A sheet that is not the grid's multiple.
        std::fs::remove_file(files.sheet(1)).expect("rm");
        std::fs::write(files.sheet(0), jpeg_bytes(801, 90)).expect("write");
        assert!(collect(&files, &p, 10.0).is_err());
    }
}
