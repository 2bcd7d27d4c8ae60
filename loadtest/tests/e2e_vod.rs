//! End to end, the way a user meets the stack: real redis-server, real object store (s3s-fs or
//! the filesystem backend), the three release-shaped binaries, a generated 1080p clip with
//! audio uploaded through tus, transcoded by ffmpeg, and played back through the edge by real
//! clients: ffmpeg decodes every rendition to the end, ffprobe reports the ladder's resolutions,
//! npm `hls-parser` accepts every playlist in strict mode, and the edge fetches a segment from
//! the origin exactly once for two requests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringcast_infra::config::{StoreBackend, StoreConfig};
use ringcast_loadtest::{tus_client, video_status};
use ringcast_testkit::{self as testkit, http, Process, RedisServer, S3Server};

/// The running stack; processes stop when it drops.
struct Stack {
    ingest: SocketAddr,
    edge: SocketAddr,
    procs: Vec<Process>,
}

/// `RINGCAST_{SVC}_…` variables that point a service at this store and Redis.
fn service_env(prefix: &str, store: &StoreConfig, redis_url: &str) -> Vec<(String, String)> {
    let mut env = vec![
        (format!("{prefix}REDIS__URL"), redis_url.to_string()),
        (
            format!("{prefix}STORE__BACKEND"),
            match store.backend {
                StoreBackend::Fs => "fs".into(),
                StoreBackend::S3 => "s3".into(),
            },
        ),
    ];
    match store.backend {
        StoreBackend::Fs => env.push((
            format!("{prefix}STORE__ROOT"),
            store.root.display().to_string(),
        )),
        StoreBackend::S3 => {
            for (k, v) in [
                ("ENDPOINT", &store.endpoint),
                ("BUCKET", &store.bucket),
                ("ACCESS_KEY", &store.access_key),
                ("SECRET_KEY", &store.secret_key),
            ] {
                env.push((format!("{prefix}STORE__{k}"), v.clone()));
            }
        }
    }
    env
}

fn start_stack(store: &StoreConfig, redis_url: &str, work: &Path) -> Stack {
    let ingest: SocketAddr = ([127, 0, 0, 1], testkit::free_port()).into();
    let edge: SocketAddr = ([127, 0, 0, 1], testkit::free_port()).into();
    let mut procs = Vec::new();

    let mut cmd = Command::new(testkit::cargo_bin("ringcast-ingest"));
    cmd.arg("--listen")
        .arg(ingest.to_string())
        .env("RINGCAST_INGEST_DATA_DIR", work.join("ingest"))
        .envs(service_env("RINGCAST_INGEST_", store, redis_url));
    procs.push(Process::spawn("ingest", cmd, work));

    let mut cmd = Command::new(testkit::cargo_bin("ringcast-transcoder"));
    cmd.env("RINGCAST_TRANSCODER_WORK_DIR", work.join("transcoder"))
        .envs(service_env("RINGCAST_TRANSCODER_", store, redis_url));
    procs.push(Process::spawn("transcoder", cmd, work));

    let mut cmd = Command::new(testkit::cargo_bin("ringcast-edge"));
    let mut edge_env = service_env("RINGCAST_EDGE_", store, redis_url);
    edge_env.retain(|(k, _)| !k.contains("REDIS"));
    cmd.arg("--listen").arg(edge.to_string()).envs(edge_env);
    procs.push(Process::spawn("edge", cmd, work));

    for (addr, name) in [(ingest, "ingest"), (edge, "edge")] {
        let ready = std::panic::catch_unwind(|| {
            testkit::wait_until(Duration::from_secs(60), &format!("{name} /healthz"), || {
                http::get(addr, "/healthz").is_ok_and(|r| r.status == 200)
            })
        });
        if ready.is_err() {
            for p in &procs {
                eprintln!("--- {} log ---\n{}", p.name, p.log_text());
            }
            panic!("{name} did not become ready");
        }
    }
    for p in &mut procs {
        p.assert_running();
    }
    Stack {
        ingest,
        edge,
        procs,
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A 1080p30 clip with a sine tone: long enough for several 2 s segments, short for CI.
fn make_clip(dir: &Path) -> PathBuf {
    let out = dir.join("clip.mp4");
    let o = run(Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ])
        .arg(&out));
    assert!(
        o.status.success(),
        "ffmpeg clip: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `(name, value)` of the metric line `name value` in Prometheus text.
fn metric(edge: SocketAddr, name: &str) -> f64 {
    let text = http::get(edge, "/metrics").expect("GET /metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

fn vod_end_to_end(store: StoreConfig, redis: &RedisServer, work: &Path) {
    let mut stack = start_stack(&store, &redis.url, work);
    let clip = make_clip(work);
    let ingest_url = format!("http://{}", stack.ingest);
    let opts = tus_client::UploadOptions {
        chunk_size: 256 * 1024, // several PATCHes, like a real client on a slow link
        ..Default::default()
    };
    let up = tus_client::upload_file(&format!("{ingest_url}/files/"), &clip, &opts, |_, _| {})
        .expect("tus upload");
    assert!(!up.video_id.is_empty(), "final PATCH carried no video id");
    let done = video_status::wait_done(&ingest_url, &up.video_id, Duration::from_secs(600), |_| {});
    if let Err(e) = &done {
        for p in &mut stack.procs {
            eprintln!("--- {} log ---\n{}", p.name, p.log_text());
        }
        panic!("transcode did not finish: {e:#}");
    }

    let master = format!("http://{}/v/{}/master.m3u8", stack.edge, up.video_id);

    // npm hls-parser, strict mode, master + every media playlist.
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/js/validate_hls.mjs");
    let o = run(Command::new("node").arg(js).arg(&master));
    assert!(
        o.status.success(),
        "hls-parser rejected a playlist: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("validator JSON");
    let uris: Vec<String> = report["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["uri"].as_str().expect("uri").to_string())
        .collect();
    assert_eq!(uris.len(), 4, "1080p source → 4 renditions: {report}");

    // Two GETs of a segment nobody asked for yet (only playlists were read so far; ffprobe and
    // ffmpeg below fetch segments) → exactly one origin fetch.
    let seg = format!(
        "/v/{}/{}",
        up.video_id,
        uris[3].replace("index.m3u8", "seg2.m4s")
    );
    let before = metric(stack.edge, "ringcast_edge_origin_fetches_total");
    let a = http::get(stack.edge, &seg).expect("segment GET");
    let b = http::get(stack.edge, &seg).expect("segment GET again");
    assert_eq!((a.status, b.status), (200, 200));
    assert!(!a.body.is_empty() && a.body == b.body);
    assert_eq!(a.header("content-type"), Some("video/iso.segment"));
    let after = metric(stack.edge, "ringcast_edge_origin_fetches_total");
    assert_eq!(
        after - before,
        1.0,
        "two GETs of {seg} must cause one origin fetch"
    );

    // ffprobe: the renditions have the ladder's heights, highest first.
    let mut heights = Vec::new();
    for uri in &uris {
        let url = format!("http://{}/v/{}/{uri}", stack.edge, up.video_id);
        let o = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height",
                "-of",
                "json",
            ])
            .arg(&url));
        assert!(
            o.status.success(),
            "ffprobe {url}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let probe: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ffprobe JSON");
        // An HLS input may list the stream once per program; every entry must agree.
        let streams = probe["streams"].as_array().expect("streams");
        assert!(!streams.is_empty(), "ffprobe found no video in {url}");
        let h = streams[0]["height"].as_u64().expect("height");
        assert!(
            streams.iter().all(|s| s["height"].as_u64() == Some(h)),
            "{probe}"
        );
        heights.push(h as u32);
    }
    assert_eq!(heights, [1080, 720, 480, 360]);

    // ffmpeg decodes every rendition (all programs' streams) to the end without an error.
    let o = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&master)
        .args(["-map", "0", "-f", "null", "-"]));
    assert!(
        o.status.success(),
        "ffmpeg playback failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "ffmpeg reported errors while decoding: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn vod_upload_transcode_play_with_filesystem_store() {
    let work = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let store = StoreConfig {
        backend: StoreBackend::Fs,
        root: work.path().join("store"),
        ..StoreConfig::default()
    };
    vod_end_to_end(store, &redis, work.path());
}

#[test]
fn vod_upload_transcode_play_with_s3_store() {
    let work = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let s3 = S3Server::start();
    vod_end_to_end(s3.store_config(), &redis, work.path());
}
