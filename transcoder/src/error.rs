//! The transcoder's error type and its one policy decision: which failures are worth retrying.
//!
//! A permanent error is a property of the input (unreadable source, no video stream, output
//! that cannot be packaged): running the same job again gives the same result, so it goes to
//! the dead-letter stream at once. Everything else (object store, Redis, local I/O, ffmpeg
//! killed by a signal) may succeed on another attempt.
//!
//! Two texts per error: `Display` is the full story for the transcoder's log (work-directory
//! paths, ffprobe's and ffmpeg's own lines), [`TranscodeError::public_message`] is what the
//! uploader sees in the job status and what the dead letter records. The public text never
//! carries a path of this host or a raw tool log line: those tell an attacker the server's
//! layout and tool versions, and mean nothing to a user.

use ringcast_infra::live_events::LiveEventsError;
use ringcast_infra::queue::QueueError;
use ringcast_infra::store::StoreError;
use ringcast_proto::fmp4::Fmp4Error;
use ringcast_proto::media::limits::LimitViolation;
use ringcast_proto::playlist::PlaylistError;

/// Why one attempt at a job failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// The job payload could not be decoded or names something that can never be a key.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A redelivered live job whose stream an earlier run already started (restarting would
    /// renumber segments under the same version).
    #[error(
        "live stream {video}/{version} was already started by an earlier run; not restarting it"
    )]
    LiveAlreadyStarted { video: String, version: u32 },
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
    /// The source is over one of the configured media limits (size, rate, duration, bitrate).
    #[error("source is over a media limit: {0}")]
    OverLimit(#[from] LimitViolation),
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
    /// The poster or the thumbnail sprites ffmpeg should have written are missing or unusable
    /// (the version is not published without them).
    #[error("previews: {0}")]
    Previews(String),
    /// Recording the version's poster and thumbnails in the video hash (Redis).
    #[error("recording previews: {0}")]
    Redis(#[from] redis::RedisError),
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
    /// ffmpeg's output position did not advance for `stall_timeout_secs`: it was killed. May
    /// succeed on another attempt (a stuck decoder, a store that hung the pipes).
    #[error("ffmpeg made no progress for {seconds} s")]
    Stalled { seconds: u64 },
    /// ffmpeg ran past the attempt's wall-clock limit (`max_wall_clock_factor` × the media
    /// duration + `wall_clock_floor_secs`): it was killed.
    #[error("transcoding took longer than its limit of {limit_secs} s")]
    TimedOut { limit_secs: u64 },
    /// An operator cancelled the job (`cancel_requested` in its hash): not retried, not
    /// dead-lettered.
    #[error("{}", ringcast_proto::job::CANCELLED_ERROR)]
    Cancelled,
}

impl TranscodeError {
    /// True when retrying cannot help because the input itself is at fault.
    pub fn is_permanent(&self) -> bool {
        match self {
            TranscodeError::InvalidJob(_)
            | TranscodeError::LiveAlreadyStarted { .. }
            | TranscodeError::SourceMissing(_)
            | TranscodeError::Unreadable(_)
            | TranscodeError::NoVideo
            | TranscodeError::BadVideo(_)
            | TranscodeError::OverLimit(_)
            // A decoder or encoder error on this input repeats on every attempt.
            | TranscodeError::FfmpegFailed { .. }
            | TranscodeError::Package { .. }
            | TranscodeError::Output { .. }
            | TranscodeError::Previews(_)
            | TranscodeError::Playlist { .. } => true,
            TranscodeError::Spawn { .. }
            | TranscodeError::FfmpegKilled { .. }
            | TranscodeError::Store(_)
            | TranscodeError::Queue(_)
            | TranscodeError::LiveEvents(_)
            | TranscodeError::Redis(_)
            | TranscodeError::Io { .. }
            | TranscodeError::Abandoned
            // Killed by the watchdog: the next attempt may run normally.
            | TranscodeError::Stalled { .. }
            | TranscodeError::TimedOut { .. }
            // Never retried either: the worker ends the job as `cancelled`.
            | TranscodeError::Cancelled => false,
        }
    }

    /// The short, host-free text for the job status and the dead letter. Known ffprobe/ffmpeg
    /// complaints about the input become a few words ([`input_problem`]); anything else names
    /// only the stage that failed (the details are in the log, under the job id).
    pub fn public_message(&self) -> String {
        match self {
            // The detail may hold the pull URL, whose token is a secret.
            TranscodeError::InvalidJob(_) => "invalid job".into(),
            TranscodeError::LiveAlreadyStarted { .. } => {
                "live stream already started by an earlier run; not restarting it".into()
            }
            TranscodeError::SourceMissing(_) => "the uploaded source is missing".into(),
            TranscodeError::Unreadable(detail) => match input_problem(detail) {
                Some(problem) => format!("{NOT_READABLE}: {problem}"),
                None => NOT_READABLE.into(),
            },
            TranscodeError::NoVideo => "no video stream".into(),
            // Our own wording about probed values (sizes, rates): nothing of the host in it.
            TranscodeError::BadVideo(detail) => format!("unusable video stream: {detail}"),
            // Names the value and the limit, nothing else ("video is 16384x16384; the limit
            // is 7680x4320").
            TranscodeError::OverLimit(v) => v.to_string(),
            TranscodeError::FfmpegFailed { message, .. } => match input_problem(message) {
                Some(problem) => format!("{NOT_READABLE}: {problem}"),
                None => "ffmpeg failed while encoding".into(),
            },
            TranscodeError::FfmpegKilled { .. } => "ffmpeg was stopped while encoding".into(),
            TranscodeError::Package { rendition, .. }
            | TranscodeError::Output { rendition, .. } => {
                format!("the {rendition} rendition could not be packaged")
            }
            TranscodeError::Previews(_) => "the poster or thumbnails could not be made".into(),
            TranscodeError::Playlist { .. } => "the playlists could not be written".into(),
            TranscodeError::Store(_) => "storage error".into(),
            TranscodeError::Queue(_) | TranscodeError::LiveEvents(_) | TranscodeError::Redis(_) => {
                "queue error".into()
            }
            TranscodeError::Spawn { .. } | TranscodeError::Io { .. } => "internal error".into(),
            TranscodeError::Abandoned => "abandoned for shutdown".into(),
            // Our own wording with numbers from the config: nothing of the host in it.
            TranscodeError::Stalled { .. }
            | TranscodeError::TimedOut { .. }
            | TranscodeError::Cancelled => self.to_string(),
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

/// Public prefix of every "the input is not media we can read" failure.
const NOT_READABLE: &str = "not a readable video";

/// Known complaints of ffprobe and ffmpeg about their input (a substring of one of their lines
/// or of our own probe messages) and the words a user is shown for each, most specific first:
/// ffmpeg prints `moov atom not found` and then the generic `Invalid data found…` for the same
/// file.
const INPUT_PROBLEMS: [(&str, &str); 9] = [
    ("moov atom not found", "moov atom not found"),
    ("EBML header parsing failed", "invalid Matroska header"),
    (
        "no known video container signature",
        "unknown container format",
    ),
    ("did not finish within", "probing timed out"),
    (
        "could not find codec parameters",
        "unsupported or missing codec",
    ),
    ("decoder not found", "unsupported codec"),
    ("End of file", "file is truncated"),
    ("Invalid data found when processing input", "invalid data"),
    (
        "ffprobe output is not valid JSON",
        "unexpected probe output",
    ),
];

/// The user-facing words for a tool's error text, if it is a known input problem.
fn input_problem(tool_text: &str) -> Option<&'static str> {
    let lower = tool_text.to_ascii_lowercase();
    INPUT_PROBLEMS
        .iter()
        .find(|(needle, _)| lower.contains(&needle.to_ascii_lowercase()))
        .map(|(_, words)| *words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_faults_are_permanent_infrastructure_faults_are_not() {
        assert!(TranscodeError::NoVideo.is_permanent());
        assert!(TranscodeError::Unreadable("x".into()).is_permanent());
        assert!(TranscodeError::OverLimit(LimitViolation::FrameRate {
            fps: 240.0,
            max_fps: 120.0
        })
        .is_permanent());
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

    /// What ffprobe 5.1 prints for an MP4 with no `moov` (as stored in `Unreadable`).
    const NO_MOOV: &str = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0a8e2c0] moov atom not found; \
        file:/var/lib/ringcast/transcoder/work/job-abc/source: Invalid data found when processing input";

    /// No public message may show a path of this host or a raw tool line.
    fn assert_public(msg: &str) {
        assert!(!msg.contains('/'), "path in {msg:?}");
        assert!(!msg.contains('['), "tool log prefix in {msg:?}");
        assert!(!msg.contains("0x"), "address in {msg:?}");
        assert!(msg.len() <= 80, "short: {msg:?}");
    }

    #[test]
    fn known_probe_messages_become_short_public_text() {
        let cases = [
            (NO_MOOV, "not a readable video: moov atom not found"),
            (
                "[matroska,webm @ 0x5581] EBML header parsing failed; \
                 file:/w/job-1/source: Invalid data found when processing input",
                "not a readable video: invalid Matroska header",
            ),
            (
                "file:/w/job-1/source: Invalid data found when processing input",
                "not a readable video: invalid data",
            ),
            (
                "no known video container signature",
                "not a readable video: unknown container format",
            ),
            (
                "ffprobe did not finish within 120s",
                "not a readable video: probing timed out",
            ),
            (
                "[avi @ 0x1] Something nobody has seen before in /w/job-1/source",
                "not a readable video",
            ),
        ];
        for (detail, public) in cases {
            let e = TranscodeError::Unreadable(detail.into());
            assert_eq!(e.public_message(), public, "{detail}");
            assert_public(&e.public_message());
            // The log keeps everything.
            assert!(e.to_string().contains(detail), "{e}");
        }
    }

    #[test]
    fn ffmpeg_failures_show_no_paths_or_log_lines() {
        let failed = TranscodeError::FfmpegFailed {
            code: 1,
            message: "[libx264 @ 0x55] broken; Error while opening encoder for output stream \
                      #0:0 /var/lib/ringcast/work/job-1/720p.fifo"
                .into(),
        };
        assert_eq!(failed.public_message(), "ffmpeg failed while encoding");
        assert!(failed.to_string().contains("720p.fifo"), "the log keeps it");
        let unreadable = TranscodeError::FfmpegFailed {
            code: 1,
            message: "[mpegts @ 0x1] x; http://10.0.0.1/live/k/pull?token=t: Invalid data found \
                      when processing input"
                .into(),
        };
        assert_eq!(
            unreadable.public_message(),
            "not a readable video: invalid data"
        );
        let io = TranscodeError::io(
            "creating /var/lib/ringcast/work/job-1",
            std::io::Error::other("No space left on device"),
        );
        let spawn = TranscodeError::Spawn {
            program: "/opt/ffmpeg/bin/ffprobe".into(),
            source: std::io::Error::other("not found"),
        };
        let killed = TranscodeError::FfmpegKilled {
            signal: 9,
            message: "[out#0 @ 0x1] /w/job/360p.fifo".into(),
        };
        let invalid = TranscodeError::InvalidJob(
            "live pull URL \"file:///etc/passwd?token=secret\" is not an http URL".into(),
        );
        let missing = TranscodeError::SourceMissing("v/abc/1/source".into());
        for e in [
            failed,
            unreadable,
            io,
            spawn,
            killed,
            invalid,
            missing,
            TranscodeError::NoVideo,
            TranscodeError::Abandoned,
            TranscodeError::OverLimit(LimitViolation::FrameRate {
                fps: 240.0,
                max_fps: 120.0,
            }),
            TranscodeError::Stalled { seconds: 60 },
            TranscodeError::TimedOut { limit_secs: 180 },
            TranscodeError::Cancelled,
            TranscodeError::LiveAlreadyStarted {
                video: "cam".into(),
                version: 1,
            },
        ] {
            assert_public(&e.public_message());
        }
        assert_eq!(TranscodeError::NoVideo.public_message(), "no video stream");
        let over = TranscodeError::OverLimit(LimitViolation::FrameSize {
            width: 16384,
            height: 16384,
            max_width: 7680,
            max_height: 4320,
        });
        assert_eq!(
            over.public_message(),
            "video is 16384x16384; the limit is 7680x4320"
        );
    }

    #[test]
    fn job_control_errors_read_clearly_and_only_cancel_is_final() {
        let stalled = TranscodeError::Stalled { seconds: 60 };
        assert_eq!(stalled.public_message(), "ffmpeg made no progress for 60 s");
        let timed_out = TranscodeError::TimedOut { limit_secs: 180 };
        assert_eq!(
            timed_out.public_message(),
            "transcoding took longer than its limit of 180 s"
        );
        assert_eq!(
            TranscodeError::Cancelled.public_message(),
            "cancelled by operator"
        );
        // Stalls and timeouts are retried; a cancel is handled by the worker, not as a failure.
        assert!(!stalled.is_permanent() && !timed_out.is_permanent());
    }
}
