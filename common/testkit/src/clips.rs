//! Test clips made by ffmpeg: the one place that knows how (testsrc2 video, an optional 440 Hz
//! tone, x264 `ultrafast` 4:2:0, AAC), as a file or pushed live to an ingest.
//!
//! ```no_run
//! use ringcast_testkit::clips::{Clip, Container};
//! # let dir = std::path::Path::new("/tmp");
//! let mp4 = Clip::new(1280, 720).seconds(4).audio(true).write(dir, "clip.mp4");
//! let ts = Clip::new(640, 360).container(Container::MpegTs).write(dir, "clip.ts");
//! # let _ = (mp4, ts);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The file format of a written clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MP4 (`-f mp4`), what users upload.
    Mp4,
    /// MPEG-TS (`-f mpegts`), what live publishers push.
    MpegTs,
}

impl Container {
    fn format(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::MpegTs => "mpegts",
        }
    }
}

/// What a clip looks like. Defaults: 30 fps, 2 s, no audio, MP4.
#[derive(Debug, Clone)]
#[must_use]
pub struct Clip {
    width: u32,
    height: u32,
    fps: u32,
    seconds: u32,
    audio: bool,
    container: Container,
    flush_packets: bool,
    black: bool,
}

impl Clip {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            fps: 30,
            seconds: 2,
            audio: false,
            container: Container::Mp4,
            flush_packets: false,
            black: false,
        }
    }

    pub fn fps(mut self, fps: u32) -> Self {
        self.fps = fps;
        self
    }

    /// Duration (for a live push: how long it pushes, in real time).
    pub fn seconds(mut self, seconds: u32) -> Self {
        self.seconds = seconds;
        self
    }

    /// A 48 kHz 440 Hz tone as an AAC track.
    pub fn audio(mut self, audio: bool) -> Self {
        self.audio = audio;
        self
    }

    /// File format of [`Clip::write`] (a live push is always MPEG-TS).
    pub fn container(mut self, container: Container) -> Self {
        self.container = container;
        self
    }

    /// For a live push: send each packet as it is muxed, audio frames in PES packets of their
    /// own (`-flush_packets 1 -pes_payload_size 0`). Without them ffmpeg holds about 150 ms of
    /// MPEG-TS in its 32 KiB output buffer and audio PES (docs/BENCHMARKS.md, live end to end):
    /// for tests that measure latency. Off by default, as the publishers of the transcoder's
    /// live tests always were: with them on, two 6 s pushes in a row (a reconnect) currently
    /// come out as ~18 s of media (10 segments), which that test rejects.
    pub fn flush_packets(mut self, on: bool) -> Self {
        self.flush_packets = on;
        self
    }

    /// Generate the clip as `dir/name`; panics with ffmpeg's message when it fails.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let out = dir.join(name);
        let mut cmd = self.ffmpeg(false);
        cmd.args(["-f", self.container.format()])
            .arg("-y")
            .arg(&out);
        let o = cmd.output().expect("run ffmpeg (scripts/install-deps)");
        assert!(
            o.status.success(),
            "ffmpeg clip {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// ffmpeg pushing the clip to `url` as a live publisher does: in real time (`-re`),
    /// low-latency x264 with a keyframe every second, MPEG-TS in a chunked `PUT` (see
    /// [`Clip::flush_packets`]). Run it with `.output()`, or spawn it as a [`crate::Process`].
    pub fn live_push(&self, url: &str) -> Command {
        let mut cmd = self.ffmpeg(true);
        if self.flush_packets {
            cmd.args(["-flush_packets", "1", "-pes_payload_size", "0"]);
        }
        cmd.args(["-f", "mpegts", "-method", "PUT"]).arg(url);
        cmd
    }

    /// A black picture instead of the test pattern: cheap to encode at any size or rate (for
    /// sources that only have to be probed, e.g. over a size or frame-rate limit).
    pub fn black(mut self) -> Self {
        self.black = true;
        self
    }

    /// ffmpeg with the inputs and codecs; the caller adds the output.
    fn ffmpeg(&self, live: bool) -> Command {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error"]);
        if live {
            cmd.arg("-re");
        }
        let pattern = if self.black {
            "color=c=black:"
        } else {
            "testsrc2="
        };
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "{pattern}size={}x{}:rate={}",
            self.width, self.height, self.fps
        ));
        if self.audio {
            cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
        }
        cmd.args(["-t", &self.seconds.to_string()]).args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ]);
        if live {
            cmd.args(["-tune", "zerolatency", "-g", &self.fps.to_string()]);
        }
        cmd.args(["-pix_fmt", "yuv420p"]);
        if self.audio {
            cmd.args(["-c:a", "aac"]);
        }
        cmd
    }
}
