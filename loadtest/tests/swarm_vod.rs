//! The viewer swarm against a small local HLS server (std threads, keep-alive, fixture VOD):
//! every player must fetch master → media playlist → init → every segment, once, with no
//! errors and no stalls, and stop by the deadline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_loadtest::player::Rendition;
use ringcast_loadtest::swarm::{run, SwarmConfig};

const SEGMENTS: usize = 5;

fn fixture() -> HashMap<String, (&'static str, Vec<u8>)> {
    let mut files = HashMap::new();
    let m3u8 = "application/vnd.apple.mpegurl";
    files.insert(
        "/v/x/master.m3u8".to_string(),
        (m3u8, b"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n1/360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720\n1/720p/index.m3u8\n".to_vec()),
    );
    for r in ["360p", "720p"] {
        let mut pl = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n");
        for i in 0..SEGMENTS {
            pl.push_str(&format!("#EXTINF:2.00000,\nseg{i}.m4s\n"));
            files.insert(
                format!("/v/x/1/{r}/seg{i}.m4s"),
                ("video/iso.segment", vec![7u8; 20_000]),
            );
        }
        pl.push_str("#EXT-X-ENDLIST\n");
        files.insert(format!("/v/x/1/{r}/index.m3u8"), (m3u8, pl.into_bytes()));
        files.insert(
            format!("/v/x/1/{r}/init.mp4"),
            ("video/mp4", vec![1u8; 800]),
        );
    }
    files
}

/// Serve `files` with keep-alive; count requests.
fn serve(
    files: HashMap<String, (&'static str, Vec<u8>)>,
) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let files = Arc::new(files);
    let count = Arc::new(AtomicU64::new(0));
    let c2 = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (files, count) = (Arc::clone(&files), Arc::clone(&c2));
            std::thread::spawn(move || {
                let mut w = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let resp = match files.get(path.split('?').next().unwrap_or("")) {
                        Some((ct, body)) => {
                            let mut v = format!("HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                            v.extend_from_slice(body);
                            v
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                    };
                    if w.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

#[test]
fn vod_players_fetch_everything_once_without_errors_or_stalls() {
    let files = fixture();
    // Both renditions' playlists have the same length, so every player moves the same bytes.
    let per_viewer_bytes = files["/v/x/master.m3u8"].1.len()
        + files["/v/x/1/360p/index.m3u8"].1.len()
        + files["/v/x/1/360p/init.mp4"].1.len()
        + SEGMENTS * files["/v/x/1/360p/seg0.m4s"].1.len();
    let (addr, served) = serve(files);
    let viewers = 40;
    let started = Instant::now();
    let s = run(&SwarmConfig {
        url: format!("http://{addr}/v/x/master.m3u8"),
        viewers,
        duration: Duration::from_secs(3),
        ramp: Duration::from_millis(500),
        threads: 2,
        rendition: Rendition::Random,
        max_buffer: 30.0,
        request_timeout: Duration::from_secs(5),
        progress: false,
    })
    .expect("swarm");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the swarm must stop near its deadline"
    );
    assert!(s.errors.is_empty(), "errors: {:?}", s.errors);
    assert_eq!(s.stalls, 0);
    assert_eq!(s.viewers, viewers as u64);
    // Each player: master + media playlist + init + every segment, then it plays its buffer
    // (10 s of media) past the 3 s deadline, so no second session starts.
    let per_viewer = 3 + SEGMENTS as u64;
    assert_eq!(s.requests, viewers as u64 * per_viewer);
    assert_eq!(served.load(Ordering::Relaxed), s.requests);
    let seg = s
        .by_kind
        .iter()
        .find(|k| k.kind == ringcast_loadtest::stats::Kind::Segment)
        .expect("segments");
    assert_eq!(seg.count, viewers as u64 * SEGMENTS as u64);
    assert_eq!(s.bytes, (viewers * per_viewer_bytes) as u64);
}

#[test]
fn a_missing_master_is_counted_as_404_not_a_crash() {
    let (addr, _) = serve(HashMap::new());
    let s = run(&SwarmConfig {
        url: format!("http://{addr}/nope.m3u8"),
        viewers: 3,
        duration: Duration::from_millis(800),
        ramp: Duration::ZERO,
        threads: 1,
        rendition: Rendition::Lowest,
        max_buffer: 10.0,
        request_timeout: Duration::from_secs(2),
        progress: false,
    })
    .expect("swarm");
    assert!(
        s.errors.get("404").copied().unwrap_or(0) >= 3,
        "{:?}",
        s.errors
    );
    assert_eq!(s.bytes, 0);
}
