//! Inspecting a complete upload before it is accepted: ffprobe reads the spool file with the
//! container the ingest sniffed forced (`-f`), only the `file` protocol, a bounded probe and a
//! short timeout (`ringcast_proto::media::input::ffprobe_args`, the same command the
//! transcoder runs), and the summary is held to the configured [`MediaLimits`].
//!
//! ffprobe is a blocking child process and the ingest's cores are monoio event loops, so it
//! runs on the tokio side runtime (`ringcast_infra::side_runtime`), like Redis and S3 calls:
//! the core only awaits the answer. A probe that outlives `uploads.probe_timeout_secs` is
//! killed (`kill_on_drop`) when the timeout drops it. At most [`max_concurrent_probes`] run at
//! once (two per core): uploads finishing together wait for a slot instead of starting a
//! process each.
//!
//! Outcomes: a file ffprobe cannot read as its container, or with no usable video stream, is
//! not a video (415); a readable one over a limit, or one that could not be read in time, is
//! unprocessable (422). Only our own wording reaches the client: ffprobe's lines (spool paths,
//! versions) go to the log.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ringcast_infra::side_runtime;
use ringcast_proto::container::Container;
use ringcast_proto::media::input::ffprobe_args;
use ringcast_proto::media::limits::{LimitViolation, MediaLimits};
use ringcast_proto::media::probe::{last_lines, parse_probe_json, ProbeError, ProbeInfo};

use tokio::sync::Semaphore;

use crate::error::IngestError;

/// ffprobe processes this ingest runs at once: two per core (a probe is short and mostly
/// I/O-bound, and the cores also serve requests).
pub fn max_concurrent_probes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

fn probe_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(max_concurrent_probes())))
        .clone()
}

/// Why a complete upload is refused; each becomes the client's answer and the reason kept in
/// the upload's state.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaRejection {
    /// ffprobe could not read the file as the container its first bytes claim (415).
    Unreadable { container: Container },
    /// Readable, but no video stream (cover art does not count) (415).
    NoVideo,
    /// A video stream with values nothing can encode (415).
    BadVideo(String),
    /// Over a configured limit (422).
    OverLimit(LimitViolation),
    /// ffprobe did not finish within the timeout (422).
    TimedOut,
}

/// The words a client is shown when ffprobe did not finish in time.
pub const PROBE_TIMED_OUT: &str = "could not read the file in time";

impl MediaRejection {
    /// The short, host-free reason shown to the client.
    pub fn reason(&self) -> String {
        match self {
            MediaRejection::Unreadable { container } => format!(
                "the file is not a readable {} video",
                container_name(*container)
            ),
            MediaRejection::NoVideo => "the file has no video stream".into(),
            MediaRejection::BadVideo(detail) => format!("unusable video stream: {detail}"),
            MediaRejection::OverLimit(v) => v.to_string(),
            MediaRejection::TimedOut => PROBE_TIMED_OUT.into(),
        }
    }

    /// The error the final PATCH answers with.
    pub fn into_error(self) -> IngestError {
        match self {
            MediaRejection::Unreadable { .. }
            | MediaRejection::NoVideo
            | MediaRejection::BadVideo(_) => IngestError::NotAVideo(self.reason()),
            MediaRejection::OverLimit(_) => IngestError::Unprocessable {
                code: "media_limit",
                reason: self.reason(),
            },
            MediaRejection::TimedOut => IngestError::Unprocessable {
                code: "probe_timeout",
                reason: self.reason(),
            },
        }
    }
}

fn container_name(c: Container) -> &'static str {
    match c {
        Container::IsoBmff => "MP4/MOV",
        Container::Matroska => "Matroska/WebM",
        Container::MpegTs => "MPEG-TS",
        Container::Avi => "AVI",
    }
}

/// What one ffprobe run gave.
enum Run {
    Done(std::process::Output),
    TimedOut,
}

/// Probe `path` (read as `container`) and check it against `limits`: `Ok(Ok(info))` to
/// accept, `Ok(Err(rejection))` to refuse, `Err` when the probe itself could not run (ffprobe
/// missing: a server fault, the client may retry the final PATCH).
pub async fn inspect(
    ffprobe: PathBuf,
    timeout: Duration,
    limits: &MediaLimits,
    path: PathBuf,
    container: Container,
) -> Result<Result<ProbeInfo, MediaRejection>, IngestError> {
    let args = ffprobe_args(container, &path);
    let program = ffprobe.clone();
    let slots = probe_slots();
    let run = side_runtime::run(async move {
        // The timeout counts from the start of the process, not from the wait for a slot.
        let Ok(_slot) = slots.acquire_owned().await else {
            return Err(std::io::Error::other("the probe limiter was closed"));
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match tokio::time::timeout(timeout, cmd.output()).await {
            Ok(out) => out.map(Run::Done),
            Err(_) => Ok(Run::TimedOut),
        }
    })
    .await?;
    let out = match run {
        Ok(Run::Done(out)) => out,
        Ok(Run::TimedOut) => {
            tracing::info!(timeout = ?timeout, "ffprobe did not finish in time; killed");
            return Ok(Err(MediaRejection::TimedOut));
        }
        Err(e) => {
            tracing::error!(program = %ffprobe.display(), error = %e, "cannot run ffprobe");
            return Err(IngestError::ProbeUnavailable(e.to_string()));
        }
    };
    if !out.status.success() {
        tracing::info!(
            status = %out.status,
            stderr = %last_lines(&String::from_utf8_lossy(&out.stderr), 3),
            container = container.as_str(),
            "ffprobe cannot read the upload"
        );
        return Ok(Err(MediaRejection::Unreadable { container }));
    }
    let info = match parse_probe_json(&String::from_utf8_lossy(&out.stdout)) {
        Ok(info) => info,
        Err(e) => {
            tracing::info!(error = %e, "the upload has no usable video stream");
            return Ok(Err(match e {
                ProbeError::NotJson(_) => MediaRejection::Unreadable { container },
                ProbeError::NoVideo => MediaRejection::NoVideo,
                ProbeError::BadVideo(detail) => MediaRejection::BadVideo(detail),
            }));
        }
    };
    if let Err(v) = limits.check(&info) {
        tracing::info!(limit = %v, "upload over a media limit");
        return Ok(Err(MediaRejection::OverLimit(v)));
    }
    Ok(Ok(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_map_to_415_and_422_with_short_reasons() {
        let r = MediaRejection::Unreadable {
            container: Container::IsoBmff,
        };
        assert_eq!(r.reason(), "the file is not a readable MP4/MOV video");
        assert_eq!(r.into_error().status(), 415);
        assert_eq!(MediaRejection::NoVideo.into_error().status(), 415);
        let over = MediaRejection::OverLimit(LimitViolation::FrameSize {
            width: 4096,
            height: 4096,
            max_width: 1920,
            max_height: 1080,
        });
        assert_eq!(over.reason(), "video is 4096x4096; the limit is 1920x1080");
        let e = over.into_error();
        assert_eq!((e.status(), e.code()), (422, "media_limit"));
        let t = MediaRejection::TimedOut.into_error();
        assert_eq!((t.status(), t.code()), (422, "probe_timeout"));
        assert!(t.to_string().contains(PROBE_TIMED_OUT), "{t}");
    }
}
