//! CMAF → HLS packager for one rendition: cuts ffmpeg's fragmented MP4 byte stream into the
//! init segment and media segments and uploads each one as soon as it is complete, so uploads
//! overlap the transcode.
//!
//! Stream layout (ffmpeg `-movflags cmaf+frag_keyframe+empty_moov+default_base_moof`):
//! `ftyp` `moov` then (`moof` `mdat`)*, each fragment about `-frag_duration` long, a new one at
//! every keyframe. Rules:
//! - `ftyp` + `moov` (and anything before `moov`) is the init segment → `init.mp4`;
//! - each `moof` + `mdat` is one fragment: a future LL-HLS part;
//! - a segment starts at the first fragment and at every fragment whose video track starts
//!   with a sync sample; a segment is the concatenation of its fragments → `seg{msn}.m4s`;
//! - a segment's duration (`EXTINF`) is the sum of its video fragment durations divided by the
//!   video timescale (audio-only fragments, such as ffmpeg's last one, add bytes, not time).
//!
//! [`SegmentCutter`] is sans-IO (bytes in, init/segments out); [`package_rendition`] drives it
//! from a FIFO reader channel and does the uploads.

use bytes::{Bytes, BytesMut};
use ringcast_common::fmp4::{parse_fragment, parse_init, BoxSplitter, InitInfo};
use ringcast_common::keys;
use ringcast_common::store::ObjectStore;
use tokio::sync::mpsc;

use crate::error::TranscodeError;
use crate::fifo::Chunk;

/// Content type of `init.mp4`.
pub const INIT_CONTENT_TYPE: &str = "video/mp4";
/// Content type of `seg{msn}.m4s` (RFC 8216 bis: fMP4 media segments).
pub const SEGMENT_CONTENT_TYPE: &str = "video/iso.segment";

/// A complete media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct CutSegment {
    /// Media sequence number, from 0.
    pub msn: u64,
    /// The segment file: its fragments concatenated.
    pub data: Bytes,
    /// Video duration in the video track's timescale.
    pub duration_ticks: u64,
    /// Seconds (`duration_ticks / timescale`).
    pub duration: f64,
    /// `tfdt` of the first video sample, in the video timescale.
    pub start_ticks: u64,
    /// The first fragment's video starts with a sync sample (true for every segment after the
    /// first by construction; checked for the first).
    pub starts_with_sync_sample: bool,
    /// Number of fragments (future LL-HLS parts).
    pub fragments: u32,
}

/// What [`SegmentCutter::push`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    Init { data: Bytes, info: InitInfo },
    Segment(CutSegment),
}

/// The segment being assembled.
#[derive(Debug)]
struct OpenSegment {
    parts: Vec<Bytes>,
    len: usize,
    duration_ticks: u64,
    start_ticks: Option<u64>,
    starts_with_sync_sample: bool,
    fragments: u32,
}

/// Sans-IO cutter: push stream bytes, get the init segment and finished segments back.
#[derive(Debug)]
pub struct SegmentCutter {
    rendition: String,
    splitter: BoxSplitter,
    /// Boxes seen before `moov` (normally just `ftyp`).
    before_moov: Vec<Bytes>,
    init: Option<InitInfo>,
    video_track_id: u32,
    video_timescale: u32,
    /// Boxes since the last `mdat` that belong to the next fragment (`moof`, and `styp`/`prft`
    /// if ffmpeg was asked for them).
    fragment_head: Vec<Bytes>,
    /// The `moof` of the fragment whose `mdat` is expected next.
    moof: Option<Bytes>,
    current: Option<OpenSegment>,
    next_msn: u64,
}

impl SegmentCutter {
    pub fn new(rendition: &str) -> Self {
        Self {
            rendition: rendition.to_string(),
            splitter: BoxSplitter::new(),
            before_moov: Vec::new(),
            init: None,
            video_track_id: 0,
            video_timescale: 1,
            fragment_head: Vec::new(),
            moof: None,
            current: None,
            next_msn: 0,
        }
    }

    fn output_err(&self, message: impl Into<String>) -> TranscodeError {
        TranscodeError::Output {
            rendition: self.rendition.clone(),
            message: message.into(),
        }
    }

    fn fmp4_err(&self, source: ringcast_common::fmp4::Fmp4Error) -> TranscodeError {
        TranscodeError::Package {
            rendition: self.rendition.clone(),
            source,
        }
    }

    /// Feed bytes from the stream; returns everything that became complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Cut>, TranscodeError> {
        self.splitter.push(data);
        let mut out = Vec::new();
        loop {
            let next = self.splitter.next_box().map_err(|e| self.fmp4_err(e))?;
            let Some((header, bytes)) = next else {
                return Ok(out);
            };
            match (&header.box_type, self.init.is_some()) {
                (b"moov", false) => out.push(self.take_init(bytes)?),
                (_, false) => self.before_moov.push(bytes),
                (b"moov", true) => return Err(self.output_err("a second moov in the stream")),
                (b"moof", true) => {
                    if self.moof.is_some() {
                        return Err(self.output_err("moof without mdat"));
                    }
                    self.fragment_head.push(bytes.clone());
                    self.moof = Some(bytes);
                }
                (b"mdat", true) => {
                    let Some(moof) = self.moof.take() else {
                        return Err(self.output_err("mdat without a preceding moof"));
                    };
                    let mut parts = std::mem::take(&mut self.fragment_head);
                    parts.push(bytes);
                    if let Some(done) = self.add_fragment(&moof, parts)? {
                        out.push(Cut::Segment(done));
                    }
                }
                // styp, sidx, prft, emsg: travel with the next fragment.
                (_, true) => self.fragment_head.push(bytes),
            }
        }
    }

    fn take_init(&mut self, moov: Bytes) -> Result<Cut, TranscodeError> {
        let mut data = BytesMut::new();
        for b in self.before_moov.drain(..) {
            data.extend_from_slice(&b);
        }
        data.extend_from_slice(&moov);
        let data = data.freeze();
        let info = parse_init(&data).map_err(|e| self.fmp4_err(e))?;
        let video = info
            .video()
            .ok_or_else(|| self.output_err("init segment has no video track"))?;
        self.video_track_id = video.track_id;
        self.video_timescale = video.timescale;
        self.init = Some(info.clone());
        Ok(Cut::Init { data, info })
    }

    /// Add one fragment; returns the previous segment when this fragment starts a new one.
    fn add_fragment(
        &mut self,
        moof: &[u8],
        parts: Vec<Bytes>,
    ) -> Result<Option<CutSegment>, TranscodeError> {
        let init = self
            .init
            .as_ref()
            .ok_or_else(|| self.output_err("fragment before init"))?;
        let frag = parse_fragment(moof, init).map_err(|e| self.fmp4_err(e))?;
        let video = frag.track(self.video_track_id);
        let sync = video.is_some_and(|v| v.sample_count > 0 && v.starts_with_sync_sample);
        let finished = if sync || self.current.is_none() {
            let done = self.close_segment();
            self.current = Some(OpenSegment {
                parts: Vec::new(),
                len: 0,
                duration_ticks: 0,
                start_ticks: None,
                starts_with_sync_sample: sync,
                fragments: 0,
            });
            done
        } else {
            None
        };
        if let Some(seg) = self.current.as_mut() {
            if let Some(v) = video.filter(|v| v.sample_count > 0) {
                seg.start_ticks.get_or_insert(v.base_decode_time);
                seg.duration_ticks = seg.duration_ticks.saturating_add(v.duration);
            }
            seg.fragments += 1;
            for p in parts {
                seg.len += p.len();
                seg.parts.push(p);
            }
        }
        Ok(finished)
    }

    fn close_segment(&mut self) -> Option<CutSegment> {
        let seg = self.current.take()?;
        let mut data = BytesMut::with_capacity(seg.len);
        for p in &seg.parts {
            data.extend_from_slice(p);
        }
        let msn = self.next_msn;
        self.next_msn += 1;
        Some(CutSegment {
            msn,
            data: data.freeze(),
            duration_ticks: seg.duration_ticks,
            duration: seg.duration_ticks as f64 / f64::from(self.video_timescale),
            start_ticks: seg.start_ticks.unwrap_or(0),
            starts_with_sync_sample: seg.starts_with_sync_sample,
            fragments: seg.fragments,
        })
    }

    /// End of stream: the last segment, or an error if the stream stopped mid-box, mid-fragment
    /// or before the init segment.
    pub fn finish(&mut self) -> Result<Option<CutSegment>, TranscodeError> {
        self.splitter.finish().map_err(|e| self.fmp4_err(e))?;
        if self.init.is_none() {
            return Err(self.output_err("stream ended before the init segment"));
        }
        if self.moof.is_some() {
            return Err(self.output_err("stream ended between moof and mdat"));
        }
        // Leftover non-fragment boxes (a trailer such as mfra) are not media: dropped.
        self.fragment_head.clear();
        Ok(self.close_segment())
    }
}

/// Where a rendition's objects go.
#[derive(Clone)]
pub struct Destination {
    pub store: ObjectStore,
    pub video_id: String,
    pub version: u32,
}

impl Destination {
    /// Object key of `file` in `rendition`.
    pub fn key(&self, rendition: &str, file: &str) -> String {
        keys::rendition_file(&self.video_id, self.version, rendition, file)
    }
}

/// One uploaded segment, as the playlists need it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStat {
    pub msn: u64,
    /// `EXTINF` seconds.
    pub duration: f64,
    pub bytes: u64,
}

/// A packaged rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionOutput {
    pub name: String,
    /// HLS `CODECS`, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// Coded size of the video track (RESOLUTION).
    pub width: u32,
    pub height: u32,
    pub init_bytes: u64,
    pub segments: Vec<SegmentStat>,
}

impl RenditionOutput {
    /// Bytes uploaded for this rendition (init and segments).
    pub fn total_bytes(&self) -> u64 {
        self.init_bytes + self.segments.iter().map(|s| s.bytes).sum::<u64>()
    }
}

/// Read one rendition's CMAF stream from `rx` to its end, uploading `init.mp4` and every
/// `seg{msn}.m4s` as it completes.
pub async fn package_rendition(
    name: String,
    mut rx: mpsc::Receiver<Chunk>,
    dest: Destination,
) -> Result<RenditionOutput, TranscodeError> {
    let mut cutter = SegmentCutter::new(&name);
    let mut out = RenditionOutput {
        name: name.clone(),
        codecs: String::new(),
        width: 0,
        height: 0,
        init_bytes: 0,
        segments: Vec::new(),
    };
    while let Some(chunk) = rx.recv().await {
        let chunk =
            chunk.map_err(|e| TranscodeError::io(format!("reading {name} from ffmpeg"), e))?;
        for cut in cutter.push(&chunk)? {
            upload(&dest, &mut out, cut).await?;
        }
    }
    if let Some(last) = cutter.finish()? {
        upload(&dest, &mut out, Cut::Segment(last)).await?;
    }
    if out.segments.is_empty() {
        return Err(TranscodeError::Output {
            rendition: name,
            message: "no media fragments in the stream".into(),
        });
    }
    Ok(out)
}

async fn upload(
    dest: &Destination,
    out: &mut RenditionOutput,
    cut: Cut,
) -> Result<(), TranscodeError> {
    match cut {
        Cut::Init { data, info } => {
            // take_init guarantees a video track.
            if let Some(v) = info.video() {
                out.width = u32::from(v.width);
                out.height = u32::from(v.height);
            }
            out.codecs = info.codecs_string();
            out.init_bytes = data.len() as u64;
            dest.store
                .put(&dest.key(&out.name, "init.mp4"), data, INIT_CONTENT_TYPE)
                .await?;
        }
        Cut::Segment(seg) => {
            let bytes = seg.data.len() as u64;
            dest.store
                .put(
                    &dest.key(&out.name, &keys::segment_name(seg.msn)),
                    seg.data,
                    SEGMENT_CONTENT_TYPE,
                )
                .await?;
            out.segments.push(SegmentStat {
                msn: seg.msn,
                duration: seg.duration,
                bytes,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_common::config::StoreConfig;
    use std::path::Path;
    use std::process::Command;

    /// A 4 s 640x360 30 fps clip with a sine tone, encoded like a ladder rung (GOP 2 s,
    /// 0.5 s fragments), as the CMAF bytes ffmpeg writes into a FIFO.
    fn cmaf_clip(dir: &Path) -> Vec<u8> {
        let out = dir.join("clip.mp4");
        let status = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30:duration=4",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=4",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-ac",
                "2",
                "-f",
                "mp4",
                "-movflags",
                crate::ffmpeg_cmd::CMAF_MOVFLAGS,
                "-frag_duration",
                "500000",
            ])
            .arg(&out)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg failed to make the test clip");
        std::fs::read(&out).expect("read clip")
    }

    fn cut_all(data: &[u8], chunk: usize) -> (InitInfo, Vec<CutSegment>) {
        let mut c = SegmentCutter::new("360p");
        let mut init = None;
        let mut segs = Vec::new();
        for piece in data.chunks(chunk) {
            for cut in c.push(piece).expect("push") {
                match cut {
                    Cut::Init { info, .. } => init = Some(info),
                    Cut::Segment(s) => segs.push(s),
                }
            }
        }
        segs.extend(c.finish().expect("finish"));
        (init.expect("init"), segs)
    }

    #[test]
    fn cuts_two_keyframe_aligned_segments_whatever_the_chunking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = cmaf_clip(dir.path());
        let (init, segs) = cut_all(&clip, 1 << 20);
        let v = init.video().expect("video track");
        assert_eq!((v.width, v.height), (640, 360));
        assert!(
            init.codecs_string().starts_with("avc1.")
                && init.codecs_string().ends_with(",mp4a.40.2")
        );
        assert_eq!(segs.len(), 2, "{segs:?}");
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s.msn, i as u64);
            assert!(s.starts_with_sync_sample);
            assert!(
                (s.duration - 2.0).abs() < 0.05,
                "segment {i} lasts {}",
                s.duration
            );
            assert!(s.fragments >= 4, "0.5 s fragments: {}", s.fragments);
            assert_eq!(&s.data[4..8], b"moof");
        }
        assert_eq!(segs[1].start_ticks, segs[0].duration_ticks);
        // Splitting the stream at odd places changes nothing.
        let (_, odd) = cut_all(&clip, 997);
        assert_eq!(odd, segs);
    }

    #[test]
    fn corrupt_or_truncated_streams_fail_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = cmaf_clip(dir.path());
        // Truncated mid-box.
        let mut c = SegmentCutter::new("360p");
        c.push(&clip[..clip.len() - 10]).expect("push");
        let err = c.finish().expect_err("truncated");
        assert!(
            err.is_permanent() && err.to_string().contains("360p"),
            "{err}"
        );
        // Garbage where the stream should start: a box that declares 4 bytes, less than its header.
        let mut c = SegmentCutter::new("360p");
        let err = c
            .push(&[0, 0, 0, 4, b'f', b't', b'y', b'p'])
            .expect_err("bad size");
        assert!(matches!(err, TranscodeError::Package { .. }), "{err}");
        // Nothing at all.
        let err = SegmentCutter::new("x").finish().expect_err("empty");
        assert!(err.to_string().contains("before the init segment"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packages_into_the_store_and_ffprobe_reads_init_plus_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = cmaf_clip(dir.path());
        let store_root = dir.path().join("store");
        let store = ObjectStore::open(&StoreConfig {
            root: store_root.clone(),
            ..StoreConfig::default()
        })
        .await
        .expect("store");
        let dest = Destination {
            store: store.clone(),
            video_id: "vid".into(),
            version: 3,
        };
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(package_rendition("360p".into(), rx, dest));
        for piece in clip.chunks(64 * 1024) {
            tx.send(Ok(Bytes::copy_from_slice(piece)))
                .await
                .expect("send");
        }
        drop(tx);
        let out = task.await.expect("join").expect("package");
        assert_eq!((out.width, out.height), (640, 360));
        assert_eq!(out.segments.len(), 2);
        for s in &out.segments {
            assert!((s.duration - 2.0).abs() < 0.05, "{s:?}");
        }
        assert_eq!(out.total_bytes(), clip.len() as u64);
        assert_eq!(
            store.list("v/vid/3/360p/").await.expect("list"),
            [
                "v/vid/3/360p/init.mp4",
                "v/vid/3/360p/seg0.m4s",
                "v/vid/3/360p/seg1.m4s"
            ]
        );
        let init = store
            .get("v/vid/3/360p/init.mp4")
            .await
            .expect("get")
            .expect("init");
        let seg = store
            .get("v/vid/3/360p/seg0.m4s")
            .await
            .expect("get")
            .expect("seg");
        let joined = dir.path().join("joined.mp4");
        std::fs::write(&joined, [init.as_ref(), seg.as_ref()].concat()).expect("write");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args([
                "-show_entries",
                "stream=height,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&joined)
            .output()
            .expect("ffprobe");
        assert!(
            probe.status.success(),
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "360,60");
    }

    #[tokio::test]
    async fn a_read_error_fails_the_rendition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(&StoreConfig {
            root: dir.path().to_path_buf(),
            ..StoreConfig::default()
        })
        .await
        .expect("store");
        let (tx, rx) = mpsc::channel(1);
        tx.send(Err(std::io::Error::other("pipe broke")))
            .await
            .expect("send");
        drop(tx);
        let dest = Destination {
            store,
            video_id: "v".into(),
            version: 1,
        };
        let err = package_rendition("720p".into(), rx, dest)
            .await
            .expect_err("fails");
        assert!(
            !err.is_permanent() && err.to_string().contains("pipe broke"),
            "{err}"
        );
    }
}
