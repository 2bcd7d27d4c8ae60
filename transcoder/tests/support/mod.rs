//! Shared pieces of the transcoder integration tests (the transcoders themselves and their clips
//! come from the testkit): job submission and polling, and readers for what it publishes.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringcast_infra::queue::Queue;
use ringcast_infra::store::ObjectStore;
use ringcast_proto::container::{self, Container};
use ringcast_proto::job::{
    now_ms, JobState, JobStatus, Priority, TranscodeJob, JOB_SCHEMA_VERSION,
};
use ringcast_proto::keys;
use ringcast_proto::playlist::{MediaPlaylist, Segment};
use ringcast_testkit::{wait_until, Service, Stack};

/// `exec ffmpeg -re "$@"`: the job's ffmpeg (same pid, a child of the transcoder) reads its
/// source at real-time speed, so a job is certainly still running when a test acts on it.
pub fn realtime_ffmpeg(dir: &Path) -> PathBuf {
    let path = dir.join("ffmpeg-realtime");
    std::fs::write(&path, "#!/bin/sh\nexec ffmpeg -re \"$@\"\n").expect("write wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

/// A current-thread runtime for the async clients (they run on common's side runtime, so
/// blocking this thread in `wait_until` stalls nothing).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The clients a test drives a stack's transcoder with: a runtime, the stack's object store and
/// its job queue.
pub fn clients(stack: &Stack) -> (tokio::runtime::Runtime, ObjectStore, Queue) {
    let rt = rt();
    let store = rt
        .block_on(ObjectStore::open(stack.store()))
        .expect("store");
    let queue = rt
        .block_on(Queue::connect(stack.redis_url()))
        .expect("queue");
    (rt, store, queue)
}

/// What the tests read from a running transcoder beyond the kit's [`Service`].
pub trait WorkDir {
    /// Job scratch directories left behind (should be none once a job ends).
    fn leftover_job_dirs(&self) -> Vec<PathBuf>;
}

impl WorkDir for Service {
    fn leftover_job_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.state_dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}

/// Upload `source` as version 1 of `video` and enqueue its job, with the container the ingest
/// would detect in it.
pub fn submit(
    rt: &tokio::runtime::Runtime,
    store: &ObjectStore,
    queue: &Queue,
    video: &str,
    source: &Path,
) -> TranscodeJob {
    let prefix = std::fs::read(source).expect("read source");
    let detected = container::detect(&prefix[..prefix.len().min(container::SNIFF_LEN)]);
    submit_as(rt, store, queue, video, source, detected)
}

/// [`submit`] with the job's `container` chosen by the caller (`None`: a job from before jobs
/// carried it).
pub fn submit_as(
    rt: &tokio::runtime::Runtime,
    store: &ObjectStore,
    queue: &Queue,
    video: &str,
    source: &Path,
    container: Option<Container>,
) -> TranscodeJob {
    let job = TranscodeJob {
        v: JOB_SCHEMA_VERSION,
        job_id: format!("job-{video}"),
        video_id: video.into(),
        version: 1,
        source_key: keys::source(video, 1),
        priority: Priority::Normal,
        created_ms: now_ms(),
        live: None,
        container,
    };
    rt.block_on(async {
        store
            .put_file(&job.source_key, source, "video/mp4")
            .await
            .expect("upload source");
        queue.enqueue(&job).await.expect("enqueue");
    });
    job
}

/// Poll the job hash until `done(status)`; panics with the transcoder log on timeout.
pub fn wait_for_job(
    rt: &tokio::runtime::Runtime,
    queue: &Queue,
    t: &Service,
    job_id: &str,
    timeout: Duration,
    done: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    let mut last = None;
    let what = format!("job {job_id}");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(timeout, &what, || {
            last = rt.block_on(queue.job_status(job_id)).expect("job_status");
            last.as_ref().is_some_and(&done)
        })
    }));
    if result.is_err() {
        panic!(
            "job {job_id} never reached the expected state (last {last:?}); transcoder log:\n{}",
            t.log_text()
        );
    }
    last.expect("status")
}

/// Wait until the job is done or failed.
pub fn wait_finished(
    rt: &tokio::runtime::Runtime,
    queue: &Queue,
    t: &Service,
    job_id: &str,
) -> JobStatus {
    wait_for_job(rt, queue, t, job_id, Duration::from_secs(600), |s| {
        matches!(s.state, JobState::Done | JobState::Failed)
    })
}

/// Text of an object that must exist.
pub fn get_text(rt: &tokio::runtime::Runtime, store: &ObjectStore, key: &str) -> String {
    let bytes = rt
        .block_on(store.get(key))
        .expect("get")
        .unwrap_or_else(|| panic!("{key} missing"));
    String::from_utf8(bytes.to_vec()).expect("utf-8 playlist")
}

/// One `EXT-X-STREAM-INF` of a master playlist: attributes and URI.
#[derive(Debug)]
pub struct StreamInf {
    pub attrs: HashMap<String, String>,
    pub uri: String,
}

/// Parse the variants of a master playlist (attribute values with quotes removed).
pub fn parse_master(text: &str) -> Vec<StreamInf> {
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") else {
            continue;
        };
        let mut attrs = HashMap::new();
        let mut rest = list;
        while !rest.is_empty() {
            let (name, after) = rest.split_once('=').expect("attribute");
            let (value, after) = if let Some(q) = after.strip_prefix('"') {
                let end = q.find('"').expect("closing quote");
                (&q[..end], &q[end + 1..])
            } else {
                match after.find(',') {
                    Some(i) => (&after[..i], &after[i..]),
                    None => (after, ""),
                }
            };
            attrs.insert(name.to_string(), value.to_string());
            rest = after.strip_prefix(',').unwrap_or(after);
        }
        let uri = lines.next().expect("URI line").to_string();
        out.push(StreamInf { attrs, uri });
    }
    out
}

/// Parse a VOD media playlist back into the model, check that rendering the model gives the
/// same text (so the model is an exact reading), and validate it.
pub fn parse_and_validate_media(text: &str) -> MediaPlaylist {
    let mut td = None;
    let mut map = None;
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            td = Some(v.parse::<u64>().expect("target duration"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:URI=") {
            map = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            pending = Some(v.trim_end_matches(',').parse().expect("EXTINF"));
        } else if !line.starts_with('#') && !line.is_empty() {
            segments.push(Segment::new(
                line,
                pending.take().expect("EXTINF before URI"),
            ));
        }
    }
    let mut p = MediaPlaylist::vod(td.expect("TARGETDURATION"), map.expect("EXT-X-MAP"));
    p.segments = segments;
    p.validate().expect("media playlist validates");
    assert_eq!(
        p.render(),
        text,
        "playlist is exactly the VOD model's rendering"
    );
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    p
}

/// ffprobe's video height and decoded frame count for `init.mp4` + one segment.
pub fn probe_init_plus_segment(dir: &Path, init: &[u8], segment: &[u8]) -> (u32, u32) {
    let path = dir.join(format!("probe-{}.mp4", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, [init, segment].concat()).expect("write");
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let (h, n) = text.trim().split_once(',').expect("height,frames");
    (h.parse().expect("height"), n.parse().expect("frames"))
}
