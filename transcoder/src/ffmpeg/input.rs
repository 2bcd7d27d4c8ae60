//! How ffmpeg and ffprobe open their input. Sources are hostile input: every run forces the
//! demuxer of the container the ingest detected and allows only the `file` protocol
//! ([`source_input_args`]), and a live pull is read as MPEG-TS over `http`/`tcp` only
//! ([`live_input_args`]). Left to probe by content, ffmpeg reads a text file as a DASH
//! manifest, HLS playlist or ffconcat list and opens whatever it names (docs/security.md).

use std::ffi::OsString;
use std::path::Path;

use ringcast_proto::container::Container;
use ringcast_proto::media::input as media_input;

/// A source file on local disk and the container it must be read as.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub container: Container,
}

/// Input options (up to and including `-i`) for ffmpeg or ffprobe reading `source`: its
/// container's demuxer forced, only the `file` protocol, no external data references
/// (`ringcast_proto::media::input::source_input_args`, shared with the ingest's probe).
pub fn source_input_args(source: SourceFile<'_>) -> Vec<OsString> {
    media_input::source_input_args(source.container, source.path)
}

/// Input options for a live pull: MPEG-TS (what publishers push) over `http`/`tcp` only, so a
/// publisher that sends a playlist or manifest instead cannot make ffmpeg fetch anything else.
pub fn live_input_args(pull_url: &str) -> [&str; 6] {
    [
        "-f",
        Container::MpegTs.ffmpeg_format(),
        "-protocol_whitelist",
        "http,tcp",
        "-i",
        pull_url,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_forces_its_demuxer_and_the_file_protocol() {
        for (container, demuxer) in [
            (Container::IsoBmff, "mov"),
            (Container::Matroska, "matroska"),
            (Container::MpegTs, "mpegts"),
            (Container::Avi, "avi"),
        ] {
            let args: Vec<String> = source_input_args(SourceFile {
                path: Path::new("/w/a:b"),
                container,
            })
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
            assert_eq!(args[..4], ["-f", demuxer, "-protocol_whitelist", "file"]);
            assert_eq!(args[args.len() - 2..], ["-i", "file:/w/a:b"]);
        }
        assert_eq!(
            live_input_args("http://i/live/k/pull"),
            [
                "-f",
                "mpegts",
                "-protocol_whitelist",
                "http,tcp",
                "-i",
                "http://i/live/k/pull"
            ]
        );
    }
}
