//! The transcoder's error type and its one policy decision: which failures are worth retrying.
//!
//! A permanent error is a property of the input (unreadable source, no video stream, output
//! that cannot be packaged): running the same job again gives the same result, so it goes to
//! the dead-letter stream at once. Everything else (object store, Redis, local I/O, ffmpeg
//! killed by a signal) may succeed on another attempt.

use ringcast_infra::live_events::LiveEventsError;
use ringcast_infra::queue::QueueError;
use ringcast_infra::store::StoreError;
use ringcast_proto::fmp4::Fmp4Error;
use ringcast_proto::playlist::PlaylistError;

/// Why one attempt at a job failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// The job payload could not be decoded or names something that can never be a key.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The source object named by the job does not exist.
    #[error("source object {0} does not exist")]
    SourceMissing(String),
    /// ffprobe could not read the source (not a media file, truncated, unsupported).
    #[error("source is not a readable media file: {0}")]
    Unreadable(String),
    /// The source has no video stream to transcode.
    #[error("source has no video stream")]
    NoVideo,
    /// The source's video stream has values the ladder cannot work with.
    #[error("source video stream is unusable: {0}")]
    BadVideo(String),
    /// ffprobe or ffmpeg could not be started (wrong path, not installed).
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// ffmpeg exited with a non-zero status; `message` holds its last error lines.
    #[error("ffmpeg exited with status {code}: {message}")]
    FfmpegFailed { code: i32, message: String },
    /// ffmpeg was killed by a signal we did not send (OOM killer, operator).
    #[error("ffmpeg was killed by signal {signal}: {message}")]
    FfmpegKilled { signal: i32, message: String },
    /// ffmpeg's CMAF output of one rendition could not be cut into segments.
    #[error("packaging rendition {rendition}: {source}")]
    Package {
        rendition: String,
        source: Fmp4Error,
    },
    /// ffmpeg's output was readable but not what the packager needs (no video track, no init).
    #[error("packaging rendition {rendition}: {message}")]
    Output { rendition: String, message: String },
    /// A rendition's playlist or the master would not be a valid playlist.
    #[error("playlist for {what} is invalid: {source}")]
    Playlist { what: String, source: PlaylistError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Writing or reading the live event streams (Redis).
    #[error(transparent)]
    LiveEvents(#[from] LiveEventsError),
    /// Local file, FIFO or thread trouble in the job's work directory.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Shutdown asked to give the job up; it stays unacknowledged and is delivered again.
    #[error("job abandoned for shutdown")]
    Abandoned,
}

impl TranscodeError {
    /// True when retrying cannot help because the input itself is at fault.
    pub fn is_permanent(&self) -> bool {
        match self {
            TranscodeError::InvalidJob(_)
            | TranscodeError::SourceMissing(_)
            | TranscodeError::Unreadable(_)
            | TranscodeError::NoVideo
            | TranscodeError::BadVideo(_)
            // A decoder or encoder error on this input repeats on every attempt.
            | TranscodeError::FfmpegFailed { .. }
            | TranscodeError::Package { .. }
            | TranscodeError::Output { .. }
            | TranscodeError::Playlist { .. } => true,
            TranscodeError::Spawn { .. }
            | TranscodeError::FfmpegKilled { .. }
            | TranscodeError::Store(_)
            | TranscodeError::Queue(_)
            | TranscodeError::LiveEvents(_)
            | TranscodeError::Io { .. }
            | TranscodeError::Abandoned => false,
        }
    }

    /// Shorthand for [`TranscodeError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TranscodeError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_faults_are_permanent_infrastructure_faults_are_not() {
        assert!(TranscodeError::NoVideo.is_permanent());
        assert!(TranscodeError::Unreadable("x".into()).is_permanent());
        assert!(TranscodeError::FfmpegFailed {
            code: 1,
            message: String::new()
        }
        .is_permanent());
        assert!(!TranscodeError::FfmpegKilled {
            signal: 9,
            message: String::new()
        }
        .is_permanent());
        assert!(!TranscodeError::io("x", std::io::Error::other("disk")).is_permanent());
        assert!(!TranscodeError::Store(StoreError::Config("down".into())).is_permanent());
        assert!(!TranscodeError::Abandoned.is_permanent());
        assert!(
            !TranscodeError::LiveEvents(LiveEventsError::Timeout { command: "XADD" })
                .is_permanent()
        );
    }
}
