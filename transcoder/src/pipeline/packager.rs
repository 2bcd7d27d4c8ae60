//! CMAF → HLS packager for one VOD rendition, published progressively while it transcodes:
//! the same cutter and announcer as the live path ([`crate::cmaf::cutter`],
//! [`crate::cmaf::announcer`]) turn ffmpeg's fragmented MP4 byte stream into the init segment,
//! LL-HLS parts `part{msn}.{i}.m4s` and segments `seg{msn}.m4s`; each object is uploaded as
//! soon as it is complete and then announced on `rc:events:{video}:{version}:{rendition}`, so
//! an edge serves an EVENT playlist (the version's `playlist_type` = `event`) and playback can
//! start before the transcode ends. The stream ends with `end`; the VOD media playlist itself
//! is written by [`crate::pipeline::publish`] once every rendition is complete.
//!
//! Stream layout (ffmpeg `-movflags cmaf+frag_keyframe+empty_moov+default_base_moof`):
//! `ftyp` `moov` then (`moof` `mdat`)*, each fragment about `-frag_duration` long, a new one at
//! every keyframe; the cutting rules are [`crate::cmaf::cutter`]'s. Unlike live, a VOD stream
//! must be whole: one that stops mid-box or mid-fragment fails the rendition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringcast_proto::job::now_ms;
use ringcast_proto::keys;
use ringcast_proto::live::LiveEvent;
use tokio::sync::mpsc;

use crate::cmaf::announcer::{Action, Announcer};
use crate::cmaf::cutter::{Cut, Cutter};
use crate::error::TranscodeError;
use crate::ffmpeg::fifo::Chunk;
use crate::pipeline::rendition::{Destination, RenditionOutput, SegmentStat, VariantInfo};
use ringcast_infra::live_events::EventPublisher;

/// How one VOD rendition is packaged and announced.
pub struct RenditionPackaging {
    pub name: String,
    /// Decides uploads and events ([`Announcer::without_final_playlist`]: the VOD
    /// playlist is [`crate::pipeline::publish`]'s).
    pub announcer: Announcer,
    /// Where events go; `None` stores the objects without announcing them (packaging alone).
    pub events: Option<EventPublisher>,
    /// Told once the init segment is stored, for the early master playlist.
    pub variants: Option<mpsc::Sender<VariantInfo>>,
    /// `BANDWIDTH` of the early master.
    pub bandwidth_estimate: u64,
    /// Raised to the end (milliseconds of media) of every part cut: how far the renditions
    /// got, for the progress bar (ffmpeg prints no stats until all its outputs started).
    pub packaged_ms: Arc<AtomicU64>,
}

/// Read one rendition's CMAF stream from `rx` to its end, uploading and announcing `init.mp4`,
/// every part and every segment as it completes, then `end`.
pub async fn package_rendition(
    p: RenditionPackaging,
    mut rx: mpsc::Receiver<Chunk>,
    dest: Destination,
) -> Result<RenditionOutput, TranscodeError> {
    let RenditionPackaging {
        name,
        mut announcer,
        events,
        variants,
        bandwidth_estimate,
        packaged_ms,
    } = p;
    let mut cutter = Cutter::new(&name);
    let mut out = RenditionOutput::new(&name);
    while let Some(chunk) = rx.recv().await {
        let chunk =
            chunk.map_err(|e| TranscodeError::io(format!("reading {name} from ffmpeg"), e))?;
        for cut in cutter.push(&chunk)? {
            let is_init = matches!(cut, Cut::Init { .. });
            if let Cut::Part(part) = &cut {
                let end_ms = ((part.start + part.duration) * 1000.0).max(0.0) as u64;
                packaged_ms.fetch_max(end_ms, Ordering::Relaxed);
            }
            out.record_init(&cut);
            let actions = announcer.on_cut(cut, now_ms());
            execute(&dest, events.as_ref(), &name, actions, &mut out).await?;
            if let (true, Some(tx)) = (is_init, &variants) {
                // The master writer may be gone (it gave up); the rendition goes on.
                let _ = tx
                    .send(VariantInfo {
                        name: name.clone(),
                        codecs: out.codecs.clone(),
                        width: out.width,
                        height: out.height,
                        bandwidth: bandwidth_estimate,
                    })
                    .await;
            }
        }
    }
    drop(variants);
    let last = cutter.finish_whole()?;
    let actions = announcer.finish(last);
    execute(&dest, events.as_ref(), &name, actions, &mut out).await?;
    if out.segments.is_empty() {
        return Err(TranscodeError::Output {
            rendition: name,
            message: "no media fragments in the stream".into(),
        });
    }
    Ok(out)
}

/// When the last part of an [`execute`] batch was stored and announced (the live latency
/// histograms, [`crate::metrics::live`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Executed {
    pub part_stored: Option<Instant>,
    pub part_announced: Option<Instant>,
}

/// Execute the announcer's actions in order (object first, event after) and record every
/// announced segment in `out` with the size of its object.
pub async fn execute(
    dest: &Destination,
    events: Option<&EventPublisher>,
    rendition: &str,
    actions: Vec<Action>,
    out: &mut RenditionOutput,
) -> Result<Executed, TranscodeError> {
    let mut last_put: Option<(String, u64)> = None;
    let mut stored_at = None;
    let mut done = Executed::default();
    for action in actions {
        match action {
            Action::Put {
                file,
                data,
                content_type,
            } => {
                let len = data.len() as u64;
                put(dest, rendition, &file, data, content_type).await?;
                stored_at = Some(Instant::now());
                last_put = Some((file, len));
            }
            Action::Announce(event) => {
                let part = matches!(event, LiveEvent::Part { .. });
                if let LiveEvent::SegmentEnd { msn, duration, .. } = &event {
                    let name = keys::segment_name(*msn);
                    let bytes = match &last_put {
                        Some((file, len)) if *file == name => *len,
                        _ => 0,
                    };
                    out.segments.push(SegmentStat {
                        msn: *msn,
                        duration: *duration,
                        bytes,
                    });
                }
                if let Some(sink) = events {
                    sink.announce(&dest.video_id, dest.version, rendition, &event)
                        .await?;
                }
                if part {
                    done.part_stored = stored_at;
                    done.part_announced = Some(Instant::now());
                }
            }
        }
    }
    Ok(done)
}

async fn put(
    dest: &Destination,
    rendition: &str,
    file: &str,
    data: Bytes,
    content_type: &'static str,
) -> Result<(), TranscodeError> {
    dest.store
        .put(&dest.key(rendition, file), data, content_type)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::cutter::{CutPart, CutSegment, Targets};
    use ringcast_infra::config::StoreConfig;
    use ringcast_infra::store::ObjectStore;
    use ringcast_proto::fmp4::InitInfo;
    use ringcast_proto::live::PartTiming;
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
                crate::ffmpeg::rung::CMAF_MOVFLAGS,
                "-frag_duration",
                "500000",
            ])
            .arg(&out)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg failed to make the test clip");
        std::fs::read(&out).expect("read clip")
    }

    fn cut_all(data: &[u8], chunk: usize) -> (InitInfo, Vec<CutPart>, Vec<CutSegment>) {
        let mut c = Cutter::new("360p");
        let mut init = None;
        let mut parts = Vec::new();
        let mut segs = Vec::new();
        for piece in data.chunks(chunk) {
            for cut in c.push(piece).expect("push") {
                match cut {
                    Cut::Init { info, .. } => init = Some(info),
                    Cut::Part(p) => parts.push(p),
                    Cut::SegmentEnd(s) => segs.push(s),
                }
            }
        }
        segs.extend(c.finish_whole().expect("finish"));
        (init.expect("init"), parts, segs)
    }

    #[test]
    fn cuts_keyframe_aligned_segments_and_parts_within_the_vod_targets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = cmaf_clip(dir.path());
        let (init, parts, segs) = cut_all(&clip, 1 << 20);
        let v = init.video().expect("video track");
        assert_eq!((v.width, v.height), (640, 360));
        assert!(
            init.codecs_string().starts_with("avc1.")
                && init.codecs_string().ends_with(",mp4a.40.2")
        );
        assert_eq!(segs.len(), 2, "{segs:?}");
        let t = Targets::for_vod(0.5, 2.0, 30.0);
        let timing = PartTiming::new(t.target_duration, t.part_target).expect("targets");
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s.msn, i as u64);
            assert!(
                (s.duration - 2.0).abs() < 0.05,
                "segment {i} lasts {}",
                s.duration
            );
            timing.check_segment(s.duration).expect("segment duration");
            assert!(s.parts >= 4, "0.5 s fragments: {}", s.parts);
            assert_eq!(&s.data[4..8], b"moof");
            // The segment holds the bytes of its parts, in order.
            let mine: Vec<&CutPart> = parts.iter().filter(|p| p.msn == s.msn).collect();
            assert_eq!(mine.len() as u32, s.parts);
            assert!(mine[0].independent, "segment {i} starts with a keyframe");
            let joined: Vec<u8> = mine.iter().flat_map(|p| p.data.to_vec()).collect();
            assert!(s.data.starts_with(&joined));
            for (j, p) in mine.iter().enumerate() {
                let last = j + 1 == mine.len();
                timing
                    .check_part(p.duration, last, p.independent)
                    .unwrap_or_else(|e| panic!("part {}.{}: {e}", p.msn, p.index));
            }
        }
        assert!((segs[1].start - segs[0].duration).abs() < 1e-9);
        // Splitting the stream at odd places changes nothing.
        let (_, odd_parts, odd) = cut_all(&clip, 997);
        assert_eq!((odd_parts, odd), (parts, segs));
    }

    #[test]
    fn corrupt_or_truncated_streams_fail_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = cmaf_clip(dir.path());
        // Truncated mid-box.
        let mut c = Cutter::new("360p");
        c.push(&clip[..clip.len() - 10]).expect("push");
        let err = c.finish_whole().expect_err("truncated");
        assert!(
            err.is_permanent() && err.to_string().contains("360p"),
            "{err}"
        );
        // Garbage where the stream should start: a box that declares 4 bytes, less than its header.
        let mut c = Cutter::new("360p");
        let err = c
            .push(&[0, 0, 0, 4, b'f', b't', b'y', b'p'])
            .expect_err("bad size");
        assert!(matches!(err, TranscodeError::Package { .. }), "{err}");
        // Nothing at all.
        let err = Cutter::new("x").finish_whole().expect_err("empty");
        assert!(err.to_string().contains("before the init segment"), "{err}");
    }

    fn packaging(name: &str) -> RenditionPackaging {
        RenditionPackaging {
            name: name.into(),
            announcer: Announcer::new(name, Targets::for_vod(0.5, 2.0, 30.0), 0, 5)
                .without_final_playlist(),
            events: None,
            variants: None,
            bandwidth_estimate: 1,
            packaged_ms: Arc::default(),
        }
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
        let task = tokio::spawn(package_rendition(packaging("360p"), rx, dest));
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
        let listed = store.list("v/vid/3/360p/").await.expect("list");
        let mut want = vec!["v/vid/3/360p/init.mp4".to_string()];
        for s in &out.segments {
            want.push(format!("v/vid/3/360p/seg{}.m4s", s.msn));
        }
        for w in &want {
            assert!(listed.contains(w), "{w} missing: {listed:?}");
        }
        let parts = listed.iter().filter(|k| k.contains("/part")).count();
        assert!(parts >= 8, "0.5 s parts of 4 s: {listed:?}");
        assert_eq!(listed.len(), want.len() + parts, "{listed:?}");
        assert!(
            !listed.iter().any(|k| k.ends_with("index.m3u8")),
            "the VOD playlist is publish's"
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
        let err = package_rendition(packaging("720p"), rx, dest)
            .await
            .expect_err("fails");
        assert!(
            !err.is_permanent() && err.to_string().contains("pipe broke"),
            "{err}"
        );
    }
}
