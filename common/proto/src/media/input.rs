//! How ffmpeg and ffprobe open an uploaded source. Sources are hostile input: every run forces
//! the demuxer of the container the ingest detected and allows only the `file` protocol. Left
//! to probe by content, ffmpeg reads a text file as a DASH manifest, HLS playlist or ffconcat
//! list and opens whatever it names (docs/security.md).

use std::ffi::OsString;
use std::path::Path;

use crate::container::Container;

/// Bytes ffprobe may read to find the streams (`-probesize`; ffmpeg's default, stated so it
/// stays bounded whatever the build's defaults are).
pub const PROBE_SIZE_BYTES: u64 = 5_000_000;
/// Media time ffprobe may analyze to find the streams (`-analyzeduration`, microseconds).
pub const ANALYZE_DURATION_US: u64 = 5_000_000;

/// Input options (up to and including `-i`) for ffmpeg or ffprobe reading `path` as
/// `container`: its demuxer forced (`-f`), only the `file` protocol allowed, and for MP4/MOV no
/// external data references (`-enable_drefs 0`, also the default, stated so it stays off). The
/// path goes in as a `file:` URL so a `:` in it is never taken for a protocol name.
pub fn source_input_args(container: Container, path: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-f", container.ffmpeg_format()]
        .into_iter()
        .chain(["-protocol_whitelist", "file"])
        .map(OsString::from)
        .collect();
    if container == Container::IsoBmff {
        a.extend(["-enable_drefs", "0"].map(OsString::from));
    }
    a.push("-i".into());
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    a.push(url);
    a
}

/// The whole ffprobe argument list for a source: errors only, JSON streams and format, a
/// bounded probe, then [`source_input_args`]. Its output is read by
/// [`crate::media::probe::parse_probe_json`].
pub fn ffprobe_args(container: Container, path: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_streams",
        "-show_format",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    a.extend([
        OsString::from("-probesize"),
        PROBE_SIZE_BYTES.to_string().into(),
        OsString::from("-analyzeduration"),
        ANALYZE_DURATION_US.to_string().into(),
    ]);
    a.extend(source_input_args(container, path));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(a: &[OsString]) -> String {
        a.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn ffprobe_is_bounded_forced_and_file_only() {
        let a = ffprobe_args(Container::Matroska, Path::new("/spool/a:b.bin"));
        assert_eq!(
            joined(&a),
            "-v error -print_format json -show_streams -show_format -probesize 5000000 \
             -analyzeduration 5000000 -f matroska -protocol_whitelist file -i file:/spool/a:b.bin"
        );
        let a = ffprobe_args(Container::IsoBmff, Path::new("/s/x"));
        assert!(
            joined(&a).ends_with("-f mov -protocol_whitelist file -enable_drefs 0 -i file:/s/x")
        );
    }
}
