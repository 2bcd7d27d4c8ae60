//! Source inspection with ffprobe: the size, frame rate, duration, bitrate and audio presence
//! the limits, the ladder and the ffmpeg command are computed from.
//!
//! The command line and the parsing of ffprobe's JSON are pure and shared with the ingest
//! (`ringcast_proto::media`); this module only runs the process and maps the outcome onto
//! [`TranscodeError`].

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use ringcast_proto::container::{self, Container, SNIFF_LEN};
use ringcast_proto::media::input::ffprobe_args;
use ringcast_proto::media::probe::ProbeError;
pub use ringcast_proto::media::probe::{last_lines, parse_probe_json, FrameRate, ProbeInfo};

use crate::error::TranscodeError;
use crate::ffmpeg::input::SourceFile;

/// A probe that takes longer than this is treated as an unreadable source (ffprobe reads only
/// headers and a few packets; hanging means a pathological file).
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

impl From<ProbeError> for TranscodeError {
    fn from(e: ProbeError) -> Self {
        match e {
            // The text keeps "ffprobe output is not valid JSON", which the public message maps.
            ProbeError::NotJson(_) => TranscodeError::Unreadable(e.to_string()),
            ProbeError::NoVideo => TranscodeError::NoVideo,
            ProbeError::BadVideo(detail) => TranscodeError::BadVideo(detail),
        }
    }
}

/// The container to read `path` as: the one the job carries (detected by the ingest), or for a
/// job queued before jobs carried it, the one its first bytes show. A file with no known
/// container signature is a permanent error: it is never handed to ffmpeg to guess at.
pub fn source_container(
    from_job: Option<Container>,
    path: &Path,
) -> Result<Container, TranscodeError> {
    if let Some(c) = from_job {
        return Ok(c);
    }
    let mut prefix = Vec::with_capacity(SNIFF_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_LEN as u64).read_to_end(&mut prefix))
        .map_err(|e| TranscodeError::io(format!("reading {}", path.display()), e))?;
    container::detect(&prefix)
        .ok_or_else(|| TranscodeError::Unreadable("no known video container signature".to_string()))
}

/// Run ffprobe on `source` (its container forced, file protocol only) and interpret the result.
/// A failing ffprobe means the file is not media it can read: a permanent error with ffprobe's
/// own message.
pub async fn probe(ffprobe: &Path, source: SourceFile<'_>) -> Result<ProbeInfo, TranscodeError> {
    let mut cmd = tokio::process::Command::new(ffprobe);
    cmd.args(ffprobe_args(source.container, source.path))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(PROBE_TIMEOUT, cmd.output()).await {
        Err(_) => {
            return Err(TranscodeError::Unreadable(format!(
                "ffprobe did not finish within {PROBE_TIMEOUT:?}"
            )))
        }
        Ok(Err(source)) => {
            return Err(TranscodeError::Spawn {
                program: ffprobe.display().to_string(),
                source,
            })
        }
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = last_lines(&stderr, 3);
        return Err(TranscodeError::Unreadable(if msg.is_empty() {
            format!("ffprobe exited with {}", out.status)
        } else {
            msg
        }));
    }
    Ok(parse_probe_json(&String::from_utf8_lossy(&out.stdout))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_errors_keep_their_public_meaning() {
        let not_json = TranscodeError::from(ProbeError::NotJson("eof".into()));
        assert!(not_json.is_permanent());
        assert_eq!(
            not_json.public_message(),
            "not a readable video: unexpected probe output"
        );
        assert!(matches!(
            TranscodeError::from(ProbeError::NoVideo),
            TranscodeError::NoVideo
        ));
        assert!(TranscodeError::from(ProbeError::BadVideo("x".into())).is_permanent());
    }
}
