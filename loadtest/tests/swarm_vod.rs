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
        herd: None,
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
    // The time series holds the same requests and bytes, second by second.
    let pts = &s.series.points;
    assert!(
        (3..=5).contains(&pts.len()),
        "{} one-second buckets",
        pts.len()
    );
    assert_eq!(pts.iter().map(|p| p.requests).sum::<u64>(), s.requests);
    assert_eq!(pts.iter().map(|p| p.bytes).sum::<u64>(), s.bytes);
    let segs: u64 = pts
        .iter()
        .flat_map(|p| &p.kinds)
        .filter(|k| k.kind == "segment")
        .map(|k| k.count)
        .sum();
    assert_eq!(segs, seg.count);
    // Every player starts within the 0.5 s ramp and plays to the deadline, then stops.
    assert_eq!(pts[0].active, viewers as u64);
    assert_eq!(pts.last().map(|p| p.active), Some(0));
}

/// The binary end to end: `--json` carries the series, `--plot` writes an SVG with one line
/// per request kind and quantile, one point per second that had such requests.
#[test]
fn the_cli_writes_json_with_a_series_and_an_svg_plot() {
    let (addr, _) = serve(fixture());
    let dir = tempfile::tempdir().expect("tempdir");
    let svg_path = dir.path().join("run.svg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-loadtest"))
        .args([
            "viewers",
            "--url",
            &format!("http://{addr}/v/x/master.m3u8"),
        ])
        .args([
            "--viewers",
            "12",
            "--duration",
            "2500ms",
            "--ramp",
            "1500ms",
        ])
        .args(["--max-buffer", "2", "--json", "--plot"])
        .arg(&svg_path)
        .output()
        .expect("run ringcast-loadtest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let points = json["series"]["points"].as_array().expect("series.points");
    assert!((3..=4).contains(&points.len()), "{} points", points.len());
    let total: u64 = points.iter().filter_map(|p| p["requests"].as_u64()).sum();
    assert_eq!(Some(total), json["requests"].as_u64());
    // Seconds with segment requests, as the plot must draw them.
    let seconds_with = |kind: &str| {
        points
            .iter()
            .filter(|p| {
                p["kinds"]
                    .as_array()
                    .is_some_and(|ks| ks.iter().any(|k| k["kind"] == kind))
            })
            .count()
    };
    let svg = std::fs::read_to_string(&svg_path).expect("the --plot file");
    let mut reader = quick_xml::Reader::from_str(&svg);
    reader.config_mut().check_end_names = true;
    let mut lines = std::collections::HashMap::new();
    let mut texts = Vec::new();
    loop {
        match reader.read_event().expect("well-formed SVG") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Empty(e) | quick_xml::events::Event::Start(e)
                if e.name().as_ref() == b"polyline" =>
            {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .expect("attribute")
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default()
                };
                lines.insert(attr("data-series"), attr("points"));
            }
            quick_xml::events::Event::Text(t) => {
                texts.push(String::from_utf8_lossy(t.as_ref()).into_owned());
            }
            _ => {}
        }
    }
    for kind in ["master", "playlist", "init", "segment"] {
        for q in ["p50", "p99"] {
            let pts = lines
                .get(&format!("{kind} {q}"))
                .unwrap_or_else(|| panic!("no {kind} {q} line in {:?}", lines.keys()));
            assert_eq!(pts.split(' ').count(), seconds_with(kind), "{kind} {q}");
        }
    }
    assert!(lines.contains_key("requests/s"));
    assert_eq!(
        lines["active viewers"].split(' ').count(),
        points.len(),
        "one active-viewers point per second"
    );
    assert!(texts.iter().any(|t| t == "0 s"), "x axis labels: {texts:?}");
    assert!(
        texts.iter().any(|t| t.ends_with(" ms")),
        "latency labels: {texts:?}"
    );
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
        herd: None,
    })
    .expect("swarm");
    assert!(
        s.errors.get("404").copied().unwrap_or(0) >= 3,
        "{:?}",
        s.errors
    );
    assert_eq!(s.bytes, 0);
}

#[test]
fn static_herd_mode_fetches_the_pair_on_shared_ticks() {
    let files = fixture();
    let (addr, served) = serve(files);
    let viewers = 30;
    let interval = Duration::from_millis(200);
    let s = run(&SwarmConfig {
        url: format!("http://{addr}/"),
        viewers,
        duration: Duration::from_millis(1500),
        ramp: Duration::from_millis(300),
        threads: 2,
        rendition: Rendition::Lowest,
        max_buffer: 30.0,
        request_timeout: Duration::from_secs(5),
        progress: false,
        herd: Some((
            "/v/x/1/360p/index.m3u8?_HLS_msn=3&_HLS_part=1".into(),
            "/v/x/1/360p/seg0.m4s".into(),
            interval,
        )),
    })
    .expect("swarm");
    assert!(s.errors.is_empty(), "errors: {:?}", s.errors);
    let count = |kind| {
        s.by_kind
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.count)
    };
    use ringcast_loadtest::stats::Kind;
    let (playlists, parts) = (count(Kind::BlockingPlaylist), count(Kind::Part));
    assert_eq!(playlists, parts, "every tick is one playlist then one part");
    // Ticks at 200, 400, …, 1400 ms: 7 per viewer, fewer for viewers whose ramp start
    // came after the first ticks (at most 300 ms late: 1 or 2 ticks missed), none after
    // the deadline.
    let per_viewer = parts as f64 / viewers as f64;
    assert!(
        (5.0..=7.0).contains(&per_viewer),
        "{parts} pairs for {viewers} viewers"
    );
    assert_eq!(count(Kind::Master), 0, "herd mode plays nothing");
    assert_eq!(served.load(Ordering::Relaxed), s.requests);
}
