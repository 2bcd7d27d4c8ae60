//! CMAF → LL-HLS cutter, sans-IO, for live and progressive VOD alike: every `moof`+`mdat`
//! fragment ffmpeg writes becomes one part the moment it is complete, and parts group into
//! segments at keyframes.
//!
//! Rules (DESIGN.md "LL-HLS rules", rfc8216bis §4.4.4.9):
//! - `ftyp` + `moov` → init segment;
//! - a fragment whose video starts with a sync sample starts a new segment (the fixed GOP puts
//!   one exactly every segment); the previous segment is then complete → [`Cut::SegmentEnd`]
//!   (emitted before the new segment's first part, the order the event stream needs); with
//!   [`Cutter::with_segment_frames`] segments are cut by frame count instead, so keyframes
//!   inside a segment (a GOP shorter than the segment) only mark their parts independent;
//! - each fragment with video samples → [`Cut::Part`] `part{msn}.{i}.m4s`,
//!   `independent` when it starts with a sync sample (read from the `trun`/`tfhd`/`trex`
//!   sample flags); its duration is the video duration (audio rides along);
//! - a fragment without video samples (ffmpeg's audio-only tail) has no duration to announce:
//!   its bytes go into the segment only;
//! - a segment file is the concatenation of its fragments, so `seg{msn}.m4s` and its parts
//!   hold the same bytes;
//! - with [`Cutter::with_segment_frames`] a segment ends as soon as it holds a segment's worth
//!   of video frames (a whole number of the encoder's fixed GOPs): the next fragment starts a
//!   keyframe, so the segment is announced with its last part instead of one part later, when
//!   the next keyframe arrives (players stop being hinted a part that never comes, and segment-only
//!   players get it a part sooner).
//!
//! Timing checks against the announced targets are the caller's ([`Targets`] describes
//! them); the cutter reports what ffmpeg produced.

use bytes::{Bytes, BytesMut};
use ringcast_proto::fmp4::{parse_fragment, parse_init, BoxSplitter, Fmp4Error, InitInfo};

use crate::error::TranscodeError;

/// A complete part.
#[derive(Debug, Clone, PartialEq)]
pub struct CutPart {
    pub msn: u64,
    pub index: u32,
    pub data: Bytes,
    /// Video seconds.
    pub duration: f64,
    /// Starts with a sync sample (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Video decode time of the first sample, seconds since the first fragment of the stream.
    pub start: f64,
    /// Video start − audio start of the part, seconds on the tracks' own timelines (`tfdt`);
    /// `None` without audio samples in it. Near 0 when the muxer interleaves the tracks; a
    /// positive value is audio carried late (`ringcast_proto::live::rules::check_audio_skew`).
    pub audio_skew: Option<f64>,
}

/// A complete segment.
#[derive(Debug, Clone, PartialEq)]
pub struct CutSegment {
    pub msn: u64,
    pub data: Bytes,
    /// Video seconds (`EXTINF`).
    pub duration: f64,
    /// Seconds since the first fragment of the stream.
    pub start: f64,
    /// Parts announced for it.
    pub parts: u32,
}

/// What [`Cutter::push`] produced, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    Init { data: Bytes, info: InitInfo },
    Part(CutPart),
    SegmentEnd(CutSegment),
}

#[derive(Debug)]
struct Open {
    msn: u64,
    data: BytesMut,
    duration_ticks: u64,
    start_ticks: Option<u64>,
    parts: u32,
    /// Video frames so far.
    frames: u64,
}

/// Sans-IO cutter of one rendition.
#[derive(Debug)]
pub struct Cutter {
    rendition: String,
    splitter: BoxSplitter,
    before_moov: Vec<Bytes>,
    init: Option<InitInfo>,
    video_track_id: u32,
    timescale: u32,
    /// `tfdt` of the first video sample of the stream: time zero.
    origin_ticks: Option<u64>,
    fragment_head: Vec<Bytes>,
    moof: Option<Bytes>,
    open: Option<Open>,
    next_msn: u64,
    /// Close a segment once it holds this many video frames (a whole number of the encoder's
    /// fixed GOPs); keyframes in between do not start segments.
    segment_frames: Option<u32>,
    /// A segment was closed by frame count: the next video fragment should be a keyframe.
    expect_sync: bool,
    /// Audio decode time (s) of the first audio sample since the last part: the audio start
    /// of the next part.
    pending_audio_start: Option<f64>,
}

impl Cutter {
    pub fn new(rendition: &str) -> Self {
        Self {
            rendition: rendition.to_string(),
            splitter: BoxSplitter::new(),
            before_moov: Vec::new(),
            init: None,
            video_track_id: 0,
            timescale: 1,
            origin_ticks: None,
            fragment_head: Vec::new(),
            moof: None,
            open: None,
            next_msn: 0,
            segment_frames: None,
            expect_sync: false,
            pending_audio_start: None,
        }
    }

    /// End each segment as soon as it holds `frames` video frames, a whole number of the
    /// encoder's fixed GOPs (`-g N -keyint_min N -sc_threshold 0`), without waiting for the
    /// next keyframe; keyframes inside a segment start independent parts, not segments.
    pub fn with_segment_frames(mut self, frames: u32) -> Self {
        self.segment_frames = Some(frames).filter(|f| *f > 0);
        self
    }

    fn output_err(&self, message: impl Into<String>) -> TranscodeError {
        TranscodeError::Output {
            rendition: self.rendition.clone(),
            message: message.into(),
        }
    }

    fn fmp4_err(&self, source: Fmp4Error) -> TranscodeError {
        TranscodeError::Package {
            rendition: self.rendition.clone(),
            source,
        }
    }

    /// Sequence number of the segment in progress, or of the next one.
    pub fn current_msn(&self) -> u64 {
        self.open.as_ref().map_or(self.next_msn, |o| o.msn)
    }

    /// Whether a segment is in progress (has at least one fragment).
    pub fn segment_open(&self) -> bool {
        self.open.is_some()
    }

    /// Feed stream bytes; returns everything that became complete, in order.
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
                    let mut pieces = std::mem::take(&mut self.fragment_head);
                    pieces.push(bytes);
                    self.add_fragment(&moof, pieces, &mut out)?;
                }
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
        self.timescale = video.timescale.max(1);
        self.init = Some(info.clone());
        Ok(Cut::Init { data, info })
    }

    fn seconds(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.timescale)
    }

    fn add_fragment(
        &mut self,
        moof: &[u8],
        pieces: Vec<Bytes>,
        out: &mut Vec<Cut>,
    ) -> Result<(), TranscodeError> {
        let init = self
            .init
            .as_ref()
            .ok_or_else(|| self.output_err("fragment before init"))?;
        let frag = parse_fragment(moof, init).map_err(|e| self.fmp4_err(e))?;
        let video = frag
            .track(self.video_track_id)
            .filter(|v| v.sample_count > 0)
            .cloned();
        let sync = video.as_ref().is_some_and(|v| v.starts_with_sync_sample);
        // Both tracks' decode times in seconds, for the skew of the part (ffmpeg puts a part's
        // audio in its moof; an audio-only fragment counts for the next part).
        let video_secs = video
            .as_ref()
            .map(|v| v.base_decode_time as f64 / f64::from(self.timescale));
        let audio_secs = init.audio().and_then(|a| {
            frag.track(a.track_id)
                .filter(|t| t.sample_count > 0)
                .map(|t| t.base_decode_time as f64 / f64::from(a.timescale.max(1)))
        });
        if let Some(a) = audio_secs {
            self.pending_audio_start.get_or_insert(a);
        }
        if video.is_some() && std::mem::take(&mut self.expect_sync) && !sync {
            tracing::warn!(rendition = %self.rendition, msn = self.next_msn,
                "a segment closed by GOP frame count is followed by a fragment without a keyframe");
        }
        // By frame count, a keyframe starts a segment only when the previous one was closed
        // (then `open` is empty); otherwise every keyframe does.
        if (sync && self.segment_frames.is_none()) || self.open.is_none() {
            if let Some(done) = self.close() {
                out.push(Cut::SegmentEnd(done));
            }
            self.open = Some(Open {
                msn: self.next_msn,
                data: BytesMut::new(),
                duration_ticks: 0,
                start_ticks: None,
                parts: 0,
                frames: 0,
            });
            self.next_msn += 1;
        }
        let mut data = BytesMut::new();
        for p in &pieces {
            data.extend_from_slice(p);
        }
        let data = data.freeze();
        let origin = match (&video, self.origin_ticks) {
            (_, Some(o)) => Some(o),
            (Some(v), None) => {
                self.origin_ticks = Some(v.base_decode_time);
                Some(v.base_decode_time)
            }
            (None, None) => None,
        };
        let timescale = self.timescale;
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.data.extend_from_slice(&data);
        if let (Some(v), Some(origin)) = (video, origin) {
            let rel = v.base_decode_time.saturating_sub(origin);
            open.start_ticks.get_or_insert(rel);
            open.duration_ticks = open.duration_ticks.saturating_add(v.duration);
            let audio_start = self.pending_audio_start.take();
            let part = CutPart {
                msn: open.msn,
                index: open.parts,
                data,
                duration: v.duration as f64 / f64::from(timescale),
                independent: v.starts_with_sync_sample,
                start: rel as f64 / f64::from(timescale),
                audio_skew: video_secs.zip(audio_start).map(|(v, a)| v - a),
            };
            open.parts += 1;
            open.frames += u64::from(v.sample_count);
            let full = self
                .segment_frames
                .is_some_and(|g| open.frames >= u64::from(g));
            out.push(Cut::Part(part));
            if full {
                if let Some(done) = self.close() {
                    out.push(Cut::SegmentEnd(done));
                }
                self.expect_sync = true;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Option<CutSegment> {
        let open = self.open.take()?;
        if open.parts == 0 {
            // Only video-less fragments: nothing a playlist could list. Its number is reused.
            self.next_msn = open.msn;
            return None;
        }
        Some(CutSegment {
            msn: open.msn,
            data: open.data.freeze(),
            duration: self.seconds(open.duration_ticks),
            start: self.seconds(open.start_ticks.unwrap_or(0)),
            parts: open.parts,
        })
    }

    /// End of a stream that must be whole (VOD: ffmpeg exited cleanly): the last segment, or an
    /// error if the stream stopped mid-box, between `moof` and `mdat`, or before the init
    /// segment. Leftover non-fragment boxes (a trailer such as `mfra`) are not media: dropped.
    pub fn finish_whole(&mut self) -> Result<Option<CutSegment>, TranscodeError> {
        self.splitter.finish().map_err(|e| self.fmp4_err(e))?;
        if self.init.is_none() {
            return Err(self.output_err("stream ended before the init segment"));
        }
        if self.moof.is_some() {
            return Err(self.output_err("stream ended between moof and mdat"));
        }
        self.fragment_head.clear();
        Ok(self.close())
    }

    /// End of stream: the last segment, if it has parts. A stream cut mid-box or between `moof`
    /// and `mdat` (ffmpeg killed) still ends cleanly with what was complete: live output is
    /// already public, the tail is lost either way.
    pub fn finish(&mut self) -> Result<Option<CutSegment>, TranscodeError> {
        if self.init.is_none() {
            return Err(self.output_err("stream ended before the init segment"));
        }
        if let Err(e) = self.splitter.finish() {
            tracing::warn!(rendition = %self.rendition, error = %e, "live stream ended mid-box");
        }
        self.moof = None;
        self.fragment_head.clear();
        Ok(self.close())
    }
}

/// The announced targets of a rendition (live: [`Targets::new`]; VOD: [`Targets::for_vod`]),
/// derived from the frame rate so that every part is a whole number of frames (ffmpeg cuts
/// fragments on frame boundaries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Targets {
    pub frames_per_part: u32,
    pub parts_per_segment: u32,
    /// The encoder's fixed GOP (keyframe interval) in frames: a whole number of parts, so
    /// every keyframe starts a part (`INDEPENDENT=YES`).
    pub gop_frames: u32,
    /// Frames per segment: a whole number of GOPs, so every segment starts with a keyframe.
    pub segment_frames: u32,
    /// `PART-TARGET`: the part duration rounded up to the 5 decimals playlists carry, so a
    /// part of exactly `frames_per_part` frames is never "longer" than it.
    pub part_target: f64,
    /// `EXT-X-TARGETDURATION`: the segment duration rounded half up (RFC 8216 §4.3.3.1 compares
    /// the rounded `EXTINF`).
    pub target_duration: u64,
    /// ffmpeg `-frag_duration` in µs: one millisecond under the part, so the frame that
    /// completes a part always triggers the cut despite timestamp rounding.
    pub frag_duration_us: u64,
}

impl Targets {
    /// Live targets with a keyframe every segment (GOP = segment).
    pub fn new(part_seconds: f64, segment_seconds: f64, fps: f64) -> Self {
        Self::live(part_seconds, segment_seconds, segment_seconds, fps)
    }

    /// Live targets: parts of whole frames, a GOP of whole parts (`keyframe_seconds` rounded to
    /// parts, at least one), a segment of whole GOPs (`segment_seconds` rounded to GOPs).
    pub fn live(part_seconds: f64, keyframe_seconds: f64, segment_seconds: f64, fps: f64) -> Self {
        let frames_per_part = (part_seconds * fps).round().max(1.0) as u32;
        let part = f64::from(frames_per_part) / fps;
        let parts_per_gop = (keyframe_seconds / part).round().max(1.0) as u32;
        let gop_frames = frames_per_part * parts_per_gop;
        let gop = f64::from(gop_frames) / fps;
        let gops_per_segment = (segment_seconds / gop).round().max(1.0) as u32;
        let parts_per_segment = parts_per_gop * gops_per_segment;
        let segment_frames = gop_frames * gops_per_segment;
        let part_target = (part * 1e5).ceil() / 1e5;
        let segment = f64::from(segment_frames) / fps;
        Self {
            frames_per_part,
            parts_per_segment,
            gop_frames,
            segment_frames,
            part_target,
            target_duration: ((segment + 0.5).floor() as u64).max(1),
            frag_duration_us: ((part * 1e6).round() as u64).saturating_sub(1000).max(1),
        }
    }
}

impl Targets {
    /// The announced targets of a VOD transcode packaged while it runs (EVENT playlist). Its
    /// ffmpeg command ([`crate::ffmpeg::args::build_args`]) cuts fragments at `-frag_duration`
    /// = `part_seconds` exactly and puts a keyframe every `round(segment_seconds × fps)`
    /// frames, so a fragment may end one frame after the part duration (timestamp rounding):
    /// `PART-TARGET` allows that frame, and `EXT-X-TARGETDURATION` is the GOP rounded half up.
    pub fn for_vod(part_seconds: f64, segment_seconds: f64, fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            30.0
        };
        let frames_per_part = (part_seconds * fps).round().max(1.0) as u32;
        let gop_frames = crate::ffmpeg::rung::gop_frames(segment_seconds, fps);
        let part_target = ((f64::from(frames_per_part) + 1.0) / fps * 1e5).ceil() / 1e5;
        let segment = f64::from(gop_frames) / fps;
        let target_duration = ((segment + 0.5).floor() as u64).max(1);
        Self {
            frames_per_part,
            parts_per_segment: (gop_frames / frames_per_part).max(1),
            gop_frames,
            segment_frames: gop_frames,
            // PART-TARGET may not exceed the target duration (a part as long as a segment).
            part_target: part_target.min(target_duration as f64),
            target_duration,
            frag_duration_us: (part_seconds * 1e6).round() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::live::PartTiming;
    use std::path::Path;
    use std::process::Command;

    /// 6 s of 30 fps video with audio, encoded exactly as the live pipeline does (zerolatency,
    /// GOP = segment, fragments = parts).
    fn live_clip(dir: &Path, t: &Targets) -> Vec<u8> {
        live_clip_audio_at(dir, t, 0.0)
    }

    /// [`live_clip`] with the audio input starting `audio_start` seconds after the video, as
    /// the live input did when `-fflags nobuffer` dropped the probed packets: the muxer then
    /// interleaves each audio packet that much after its video, and movenc (moov first, no
    /// edit list) starts the audio track at 0 all the same.
    fn live_clip_audio_at(dir: &Path, t: &Targets, audio_start: f64) -> Vec<u8> {
        let out = dir.join(format!("live-{audio_start}.mp4"));
        let gop = t.gop_frames.to_string();
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=640x360:rate=30:duration=6")
            .args(["-itsoffset", &audio_start.to_string()])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=6",
            ])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-g",
                &gop,
                "-keyint_min",
                &gop,
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-f", "mp4"])
            .args(["-movflags", crate::ffmpeg::rung::CMAF_MOVFLAGS])
            .args(["-frag_duration", &t.frag_duration_us.to_string()])
            .arg(&out)
            .status()
            .expect("run ffmpeg");
        assert!(status.success());
        std::fs::read(&out).expect("read clip")
    }

    fn cut(data: &[u8], chunk: usize) -> Vec<Cut> {
        cut_with(Cutter::new("360p"), data, chunk)
    }

    fn cut_with(mut c: Cutter, data: &[u8], chunk: usize) -> Vec<Cut> {
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            out.extend(c.push(piece).expect("push"));
        }
        out.extend(c.finish().expect("finish").map(Cut::SegmentEnd));
        out
    }

    /// `(push call, "p{msn}.{i}" | "s{msn}")` for the clip fed in 1 KiB pieces: in which call
    /// each part and segment end became available.
    fn emitted(mut c: Cutter, data: &[u8]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (call, piece) in data.chunks(1024).enumerate() {
            for cut in c.push(piece).expect("push") {
                match cut {
                    Cut::Part(p) => out.push((call, format!("p{}.{}", p.msn, p.index))),
                    Cut::SegmentEnd(s) => out.push((call, format!("s{}", s.msn))),
                    Cut::Init { .. } => {}
                }
            }
        }
        out
    }

    #[test]
    fn a_whole_gop_ends_the_segment_with_its_last_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Targets::new(0.333, 2.0, 30.0);
        let clip = live_clip(dir.path(), &t);
        // The same parts and segments (same bytes)...
        let sorted = |cuts: Vec<Cut>| {
            let mut v: Vec<String> = cuts.iter().map(|c| format!("{c:?}")).collect();
            v.sort();
            v
        };
        assert_eq!(
            sorted(cut(&clip, 64 * 1024)),
            sorted(cut_with(
                Cutter::new("360p").with_segment_frames(t.segment_frames),
                &clip,
                64 * 1024
            ))
        );
        // ...but a segment ends together with its sixth part, not once the next segment's
        // first part arrived.
        let call = |v: &[(usize, String)], x: &str| {
            v.iter()
                .find(|(_, o)| o == x)
                .map(|(c, _)| *c)
                .unwrap_or_else(|| panic!("{x} missing: {v:?}"))
        };
        let by_count = emitted(
            Cutter::new("360p").with_segment_frames(t.segment_frames),
            &clip,
        );
        let by_keyframe = emitted(Cutter::new("360p"), &clip);
        for msn in 0..2 {
            let (seg, last, next) = (
                format!("s{msn}"),
                format!("p{msn}.5"),
                format!("p{}.0", msn + 1),
            );
            assert_eq!(
                call(&by_count, &seg),
                call(&by_count, &last),
                "{by_count:?}"
            );
            assert!(call(&by_keyframe, &next) > call(&by_keyframe, &last));
            assert_eq!(
                call(&by_keyframe, &seg),
                call(&by_keyframe, &next),
                "without the GOP count a segment ends with the next keyframe: {by_keyframe:?}"
            );
        }
    }

    /// The live defaults' shape: 0.2 s parts, a keyframe every 0.4 s, 2 s segments. Keyframes
    /// inside a segment make independent parts, not segments; every segment still starts with
    /// one and holds exactly its frames; the parts pass the LL-HLS timing rules.
    #[test]
    fn a_gop_shorter_than_the_segment_marks_independent_parts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Targets::live(0.2, 0.4, 2.0, 30.0);
        assert_eq!(
            (
                t.frames_per_part,
                t.gop_frames,
                t.segment_frames,
                t.parts_per_segment
            ),
            (6, 12, 60, 10)
        );
        assert_eq!((t.part_target, t.target_duration), (0.2, 2));
        let clip = live_clip(dir.path(), &t);
        let timing = PartTiming::new(t.target_duration, t.part_target).expect("targets");
        let cuts = cut_with(
            Cutter::new("360p").with_segment_frames(t.segment_frames),
            &clip,
            16 * 1024,
        );
        let parts: Vec<&CutPart> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::Part(p) => Some(p),
                _ => None,
            })
            .collect();
        let segments: Vec<&CutSegment> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::SegmentEnd(s) => Some(s),
                _ => None,
            })
            .collect();
        // 6 s: three full segments of ten parts.
        assert_eq!(segments.len(), 3, "{segments:?}");
        for s in &segments {
            assert_eq!(s.parts, 10);
            assert!((s.duration - 2.0).abs() < 1e-6, "{s:?}");
            timing.check_segment(s.duration).expect("segment timing");
        }
        for p in &parts {
            // Every other part starts a GOP: 0, 2, 4, … are independent, the rest are not.
            assert_eq!(p.independent, p.index % 2 == 0, "{p:?}");
            timing
                .check_part(p.duration, p.index == 9, p.independent)
                .expect("part timing");
        }
        // Without the frame count every keyframe would start a segment (0.4 s segments).
        let by_keyframe = cut(&clip, 16 * 1024);
        let n = by_keyframe
            .iter()
            .filter(|c| matches!(c, Cut::SegmentEnd(_)))
            .count();
        assert_eq!(n, 15);
    }

    /// Each part reports how far its audio is from its video: within an audio frame for an
    /// interleaved stream, the input's offset for audio that started late, which the
    /// `audio_video_skew` rule counts.
    #[test]
    fn parts_report_the_skew_of_their_audio() {
        use ringcast_proto::live::rules::{check_audio_skew, Rule};
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Targets::live(0.2, 0.4, 2.0, 30.0);
        let skews = |audio_start: f64| -> Vec<f64> {
            cut(&live_clip_audio_at(dir.path(), &t, audio_start), 16 * 1024)
                .iter()
                .filter_map(|c| match c {
                    Cut::Part(p) => p.audio_skew,
                    _ => None,
                })
                .collect()
        };
        let clean = skews(0.0);
        assert!(clean.len() >= 25, "{clean:?}");
        assert!(clean.iter().all(|s| s.abs() < 0.05), "{clean:?}");
        assert!(clean
            .iter()
            .all(|s| check_audio_skew(*s, t.part_target).is_none()));
        let late = skews(0.5);
        // After the first second every part's audio is the audio of 0.5 s earlier.
        let steady: Vec<f64> = late.iter().copied().skip(3).collect();
        assert!(steady.len() >= 20, "{late:?}");
        assert!(steady.iter().all(|s| (s - 0.5).abs() < 0.05), "{late:?}");
        assert!(steady
            .iter()
            .all(|s| check_audio_skew(*s, t.part_target) == Some(Rule::AudioVideoSkew)));
    }

    #[test]
    fn targets_follow_the_frame_grid() {
        let t = Targets::new(0.333, 2.0, 30.0);
        assert_eq!(
            (t.frames_per_part, t.parts_per_segment, t.gop_frames),
            (10, 6, 60)
        );
        assert_eq!(t.part_target, 0.33334);
        assert_eq!(t.target_duration, 2);
        assert_eq!(t.frag_duration_us, 332_333);
        let t = Targets::new(0.5, 2.0, 25.0);
        assert_eq!((t.frames_per_part, t.parts_per_segment), (13, 4));
        assert_eq!(t.part_target, 0.52);
        // 2.08 s segments round to 2 (EXTINF rounded ≤ TARGETDURATION).
        assert_eq!(t.target_duration, 2);
        assert!(PartTiming::new(t.target_duration, t.part_target).is_ok());
        let t = Targets::new(0.333, 2.0, 29.97);
        assert_eq!(t.frames_per_part, 10);
        assert!(t.part_target >= 10.0 / 29.97);
    }

    #[test]
    fn real_ffmpeg_fragments_make_valid_parts_and_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Targets::new(0.333, 2.0, 30.0);
        let clip = live_clip(dir.path(), &t);
        let timing = PartTiming::new(t.target_duration, t.part_target).expect("targets");
        let cuts = cut(&clip, 1 << 20);
        assert!(matches!(cuts[0], Cut::Init { .. }));
        let mut parts_of = std::collections::BTreeMap::<u64, Vec<CutPart>>::new();
        let mut segments = Vec::new();
        for c in &cuts[1..] {
            match c {
                Cut::Init { .. } => panic!("a second init"),
                Cut::Part(p) => {
                    // Parts arrive in order, after the previous segment ended.
                    assert!(segments.iter().all(|s: &CutSegment| s.msn < p.msn));
                    let list = parts_of.entry(p.msn).or_default();
                    assert_eq!(p.index as usize, list.len());
                    list.push(p.clone());
                }
                Cut::SegmentEnd(s) => segments.push(s.clone()),
            }
        }
        assert_eq!(segments.len(), 3, "6 s of 2 s segments");
        for s in &segments {
            let parts = &parts_of[&s.msn];
            assert_eq!(parts.len(), 6, "segment {} parts", s.msn);
            assert!(parts[0].independent, "a segment starts with a keyframe");
            assert!(parts[1..].iter().all(|p| !p.independent));
            for (i, p) in parts.iter().enumerate() {
                // Every part ≤ PART-TARGET, every non-final part ≥ 85 % of it.
                let last = i + 1 == parts.len();
                timing
                    .check_part(p.duration, last, p.independent)
                    .unwrap_or_else(|e| panic!("segment {} part {i}: {e}", s.msn));
                assert!(
                    !timing.is_short(p.duration),
                    "even the last parts are full here"
                );
            }
            timing.check_segment(s.duration).expect("segment duration");
            assert!((s.duration - 2.0).abs() < 1e-6, "{}", s.duration);
            assert!((s.start - 2.0 * s.msn as f64).abs() < 1e-6);
            // The segment holds exactly its parts' bytes (plus a trailing audio-only fragment
            // at the very end of the stream).
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.data.to_vec()).collect();
            assert!(s.data.starts_with(&joined));
        }
        // Chunking does not change anything.
        assert_eq!(cut(&clip, 4093), cuts);
    }

    #[test]
    fn no_init_or_garbage_fail_clearly() {
        assert!(Cutter::new("x").finish().is_err());
        let mut c = Cutter::new("x");
        assert!(c.push(&[0, 0, 0, 4, b'f', b't', b'y', b'p']).is_err());
    }
}
