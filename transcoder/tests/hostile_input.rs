//! Hostile sources against the real transcoder binary, redis-server and ffmpeg: manifests and
//! playlists dressed up as video (DASH, HLS, ffconcat), alone and behind every container
//! signature the ingest accepts, as VOD uploads and as a live publisher's body. Each names a
//! real video on the transcoder's disk and a URL on a local canary server. Left to pick the
//! demuxer by content, ffmpeg opens what they name and publishes it; the transcoder forces the
//! container's demuxer and the `file` (VOD) or `http,tcp` (live) protocols, so every one of
//! them must fail with nothing published and no request to the canary.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ringcast_proto::container::{self, Container};
use ringcast_proto::job::JOB_SCHEMA_VERSION;
use ringcast_proto::job::{now_ms, JobState, LiveSource, Priority, TranscodeJob};
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{Stack, TranscoderOptions};

use support::*;

/// A local HTTP server that answers every request with `body` and records the request lines.
struct HttpServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl HttpServer {
    fn start(body: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        // Lives until the test process ends; it only ever talks to loopback clients.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                reqs.lock().expect("lock").push(line.trim_end().to_string());
                // Skip the rest of the head.
                loop {
                    let mut h = String::new();
                    match reader.read_line(&mut h) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h == "\r\n" || h == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        HttpServer {
            addr,
            requests,
            connections,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A DASH manifest whose one representation is `url`.
fn dash(url: &str) -> String {
    format!(
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
         mediaPresentationDuration=\"PT2S\" minBufferTime=\"PT1S\" \
         profiles=\"urn:mpeg:dash:profile:full:2011\"><Period><AdaptationSet \
         mimeType=\"video/mp4\"><Representation id=\"1\" bandwidth=\"100000\" width=\"320\" \
         height=\"240\" codecs=\"avc1.64000d\"><BaseURL>{url}</BaseURL></Representation>\
         </AdaptationSet></Period></MPD>\n"
    )
}

/// An HLS media playlist with one segment at each of `urls`.
fn hls(urls: &[&str]) -> String {
    let mut p = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n");
    for u in urls {
        p.push_str(&format!("#EXTINF:2.0,\n{u}\n"));
    }
    p.push_str("#EXT-X-ENDLIST\n");
    p
}

/// An ffconcat list of `urls`.
fn ffconcat(urls: &[&str]) -> String {
    let mut p = String::from("ffconcat version 1.0\n");
    for u in urls {
        p.push_str(&format!("file '{u}'\n"));
    }
    p
}

/// The container signatures the ingest accepts, each as a prefix that passes its sniffing in
/// front of `text`.
fn behind_each_signature(text: &str) -> Vec<(&'static str, Container, Vec<u8>)> {
    let mut ts = vec![0x47u8];
    ts.resize(188, b' ');
    ts.push(0x47);
    vec![
        // Bytes 4..8 read `free`: the polyglot found in the wild (a comment opens the XML).
        ("bmff-comment", Container::IsoBmff, b"<!--free-->".to_vec()),
        ("bmff-box", Container::IsoBmff, b"\0\0\0\x08free".to_vec()),
        ("mkv", Container::Matroska, vec![0x1A, 0x45, 0xDF, 0xA3]),
        ("ts", Container::MpegTs, ts),
        ("avi", Container::Avi, b"RIFF\x10\0\0\0AVI ".to_vec()),
    ]
    .into_iter()
    .map(|(name, c, mut prefix)| {
        prefix.extend_from_slice(text.as_bytes());
        (name, c, prefix)
    })
    .collect()
}

/// A public job error names nothing of the transcoder's host: no path (its work directory or
/// any other), no URL (a pull URL carries a token), no raw ffmpeg/ffprobe line.
fn assert_no_host_detail(error: &str, work_dir: &std::path::Path) {
    assert!(
        !error.contains(&*work_dir.to_string_lossy()),
        "work dir in {error:?}"
    );
    for forbidden in ['/', '[', '@'] {
        assert!(!error.contains(forbidden), "{forbidden:?} in {error:?}");
    }
    assert!(
        !error.contains("token") && !error.contains("0x"),
        "{error:?}"
    );
}

#[test]
fn crafted_manifests_as_vod_uploads_publish_nothing_and_fetch_nothing() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let canary = HttpServer::start(Vec::new());
    // A real, playable video on the transcoder's disk: what the manifests try to publish.
    let secret = Clip::new(320, 240).write(stack.dir(), "secret.mp4");
    let secret_url = format!("file://{}", secret.display());
    let canary_url = format!("http://{}/x.mp4", canary.addr);

    // (video id, bytes, the job's container).
    let mut cases: Vec<(String, Vec<u8>, Option<Container>)> = Vec::new();
    for (target, url) in [("file", &secret_url), ("http", &canary_url)] {
        for (sig, detected, bytes) in behind_each_signature(&dash(url)) {
            assert_eq!(
                container::detect(&bytes),
                Some(detected),
                "{sig} passes sniffing"
            );
            cases.push((
                format!("dash-{target}-{sig}"),
                bytes.clone(),
                Some(detected),
            ));
            // The same file in a job from before jobs carried the container.
            cases.push((format!("dash-{target}-{sig}-old"), bytes, None));
        }
    }
    let lists = [
        ("hls", hls(&[&secret_url, &canary_url])),
        (
            "ffconcat",
            ffconcat(&[&secret.display().to_string(), &canary_url]),
        ),
        ("dash", dash(&secret_url)),
    ];
    for (name, text) in &lists {
        assert_eq!(
            container::detect(text.as_bytes()),
            None,
            "{name} is not sniffed as video"
        );
        cases.push((format!("{name}-plain-old"), text.clone().into_bytes(), None));
        // A job that claims a container the file does not have.
        cases.push((
            format!("{name}-plain-as-ts"),
            text.clone().into_bytes(),
            Some(Container::MpegTs),
        ));
        cases.push((
            format!("{name}-plain-as-mp4"),
            text.clone().into_bytes(),
            Some(Container::IsoBmff),
        ));
        for (sig, detected, bytes) in behind_each_signature(text) {
            cases.push((format!("{name}-{sig}"), bytes, Some(detected)));
        }
    }

    let t = stack.spawn(TranscoderOptions::new().name("tc-hostile").workers(2));
    let mut jobs = Vec::new();
    for (video, bytes, c) in &cases {
        let path = stack.dir().join(format!("{video}.src"));
        std::fs::write(&path, bytes).expect("write");
        jobs.push((video, submit_as(&rt, &store, &queue, video, &path, *c)));
    }
    for (video, job) in &jobs {
        let status = wait_finished(&rt, &queue, &t, &job.job_id);
        assert_eq!(status.state, JobState::Failed, "{video}: {status:?}");
        // The forced demuxer refuses the file, or (AVI) reads an empty header with no stream.
        // The uploader sees a short reason: never the work directory, the names the file
        // points at, or ffprobe's `[demuxer @ 0x…]` lines.
        let error = status.error.unwrap_or_default();
        assert!(
            error.starts_with("not a readable video") || error == "no video stream",
            "{video}: {error}"
        );
        assert_no_host_detail(&error, &t.state_dir);
        let published = rt
            .block_on(store.list(&format!("v/{video}/")))
            .expect("list");
        assert!(published.is_empty(), "{video} published {published:?}");
    }
    assert_eq!(canary.connections(), 0, "requests: {:?}", canary.requests());
    assert_eq!(t.value("ringcast_transcoder_jobs_retried_total"), 0.0);
    assert!(t.leftover_job_dirs().is_empty());
}

#[test]
fn crafted_manifests_as_a_live_body_publish_nothing_and_fetch_nothing() {
    let stack = Stack::builder().redis().start();
    let (rt, store, queue) = clients(&stack);
    let canary = HttpServer::start(Vec::new());
    let secret = Clip::new(320, 240).write(stack.dir(), "secret.mp4");
    let secret_url = format!("file://{}", secret.display());
    let canary_url = format!("http://{}/x.ts", canary.addr);
    // The ingest relays a publisher's body to the pull URL unchanged; these servers stand in
    // for it, each relaying one crafted body.
    let bodies = [
        ("hls", hls(&[&canary_url, &secret_url])),
        ("dash", dash(&canary_url)),
        ("ffconcat", ffconcat(&[&canary_url])),
    ];
    let t = stack.spawn(TranscoderOptions::new().name("tc-live-hostile"));
    for (name, body) in bodies {
        let pull = HttpServer::start(body.into_bytes());
        let video = format!("live-{name}");
        let job = TranscodeJob {
            v: JOB_SCHEMA_VERSION,
            job_id: format!("job-{video}"),
            video_id: video.clone(),
            version: 1,
            source_key: String::new(),
            priority: Priority::High,
            created_ms: now_ms(),
            live: Some(LiveSource {
                pull_url: format!("http://{}/live/k/pull?token=t", pull.addr),
            }),
            container: None,
        };
        rt.block_on(queue.enqueue(&job)).expect("enqueue");
        let status = wait_finished(&rt, &queue, &t, &job.job_id);
        assert_eq!(status.state, JobState::Failed, "{video}: {status:?}");
        let error = status.error.unwrap_or_default();
        // ffmpeg's own failure on the body (not the renditions' view of an empty stream).
        assert!(
            error.starts_with("not a readable video: "),
            "{video}: {error}"
        );
        assert_no_host_detail(&error, &t.state_dir);
        assert_eq!(
            pull.requests(),
            vec!["GET /live/k/pull?token=t HTTP/1.1".to_string()],
            "{video}: ffmpeg reads the one pull URL once"
        );
        let published = rt
            .block_on(store.list(&format!("v/{video}/")))
            .expect("list");
        assert!(published.is_empty(), "{video} published {published:?}");
    }
    assert_eq!(canary.connections(), 0, "requests: {:?}", canary.requests());
}
