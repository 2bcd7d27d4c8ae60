//! The object store failing under a serving edge, against a real S3 server (s3s-fs) that the
//! test freezes (SIGSTOP: connections accepted, never answered — a hung store) and kills
//! (SIGKILL: connections refused — a crashed one): cached objects keep being served, misses get
//! a 504 within `origin_timeout_ms` or a fast 502, nothing of the failure is cached, and service
//! comes back by itself once the store does. The edge itself SIGKILLed while it fills its disk
//! tier under load: after a restart nothing half-written is ever served. The disk tier's
//! directory full: objects are still served (origin, memory), nothing corrupt is cached. Both
//! drivers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_infra::config::StoreBackend;
use ringcast_infra::store::ObjectStore;
use ringcast_testkit::{wait_until, Stack, Tmpfs};
use support::{error_code, options, pattern, Edge};

/// `origin_timeout_ms` of the edge under test.
const ORIGIN_TIMEOUT: Duration = Duration::from_millis(1500);

fn put_all(edge: &Edge, objects: &[(&str, &[u8])]) {
    let cfg = edge.stack().store().clone();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = ObjectStore::open(&cfg).await.expect("open S3 store");
            for (key, body) in objects {
                store
                    .put(key, body.to_vec().into(), "video/iso.segment")
                    .await
                    .expect("put");
            }
        });
}

fn store_outage_spares_hits_and_recovers(legacy: bool) {
    let mut edge = Edge::start_on(
        Stack::builder().store(StoreBackend::S3),
        options(legacy).toml(format!(
            "origin_timeout_ms = {}",
            ORIGIN_TIMEOUT.as_millis()
        )),
    );
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| pattern(50_000, i)).collect();
    let keys = [
        "v/f/1/720p/seg0.m4s",
        "v/f/1/720p/seg1.m4s",
        "v/f/1/720p/seg2.m4s",
    ];
    put_all(
        &edge,
        &[
            (keys[0], &bodies[0]),
            (keys[1], &bodies[1]),
            (keys[2], &bodies[2]),
        ],
    );
    let get = |edge: &Edge, i: usize| edge.get(&format!("/{}", keys[i]));
    assert_eq!(get(&edge, 0).header("x-cache"), Some("MISS"));
    assert_eq!(get(&edge, 0).header("x-cache"), Some("HIT"));

    // A hung store: the hit is unaffected, a miss ends in 504 within the timeout.
    edge.stack_mut().s3().pause(true);
    let r = get(&edge, 0);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
    assert!(r.body == bodies[0]);
    let started = Instant::now();
    let r = get(&edge, 1);
    let waited = started.elapsed();
    assert_eq!((r.status, error_code(&r).as_str()), (504, "origin_timeout"));
    assert!(
        waited >= ORIGIN_TIMEOUT && waited < ORIGIN_TIMEOUT + Duration::from_secs(3),
        "504 after {waited:?}"
    );
    // Back: the failure was not cached, the object is whole.
    edge.stack_mut().s3().pause(false);
    let r = get(&edge, 1);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == bodies[1]);

    // A crashed store: hits unaffected, misses a quick 502.
    edge.stack_mut().s3().stop();
    assert_eq!(get(&edge, 0).status, 200);
    assert_eq!(get(&edge, 1).header("x-cache"), Some("HIT"));
    let started = Instant::now();
    let r = get(&edge, 2);
    assert_eq!((r.status, error_code(&r).as_str()), (502, "origin_error"));
    assert!(started.elapsed() < ORIGIN_TIMEOUT + Duration::from_secs(3));
    // Restarted on the same port with its data: the edge reconnects by itself.
    edge.stack_mut().s3().restart();
    let r = get(&edge, 2);
    assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
    assert!(r.body == bodies[2]);
    assert!(edge.counter("ringcast_edge_origin_errors_total") >= 2);
}

/// Files under `{dir}/{sub}`, recursively, as paths relative to it.
fn files_under(dir: &Path, sub: &str) -> Vec<PathBuf> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &e.path(), out);
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .expect("under root")
                        .to_path_buf(),
                );
            }
        }
    }
    let root = dir.join(sub);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// GET `target` on a fresh connection with raw I/O, tolerating a connection the edge drops
/// (it is being killed): the status and body when a whole response arrived.
fn raw_get(addr: std::net::SocketAddr, target: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.get(9..12)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })?
        .parse()
        .ok()?;
    let body = raw[split..].to_vec();
    (body.len() == len).then_some((status, body))
}

const SEG_KEYS: usize = 24;

fn seg_key(i: usize) -> String {
    format!("v/k/1/720p/seg{i}.m4s")
}

fn killed_while_filling_the_disk_tier_never_serves_a_half_written_file(legacy: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let opts = options(legacy).disk_cache(cache.path(), 1 << 30, 64 * 1024);
    let mut edge = Edge::start_with(opts.clone());
    // Large objects, so each fill's write takes a while.
    let bodies: Vec<Vec<u8>> = (0..SEG_KEYS)
        .map(|i| pattern(4 * 1024 * 1024 + i * 4099, i as u8))
        .collect();
    for (i, b) in bodies.iter().enumerate() {
        edge.put(&seg_key(i), b);
    }
    // Clients fetch every object, all at once, and check whatever they get in full.
    let addr = edge.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, bodies) = (stop.clone(), bodies.clone());
            std::thread::spawn(move || {
                for i in (c..SEG_KEYS).step_by(4) {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some((status, body)) = raw_get(addr, &format!("/{}", seg_key(i))) {
                        assert_eq!(status, 200);
                        assert!(body == bodies[i], "seg{i}: wrong body while filling");
                    }
                }
            })
        })
        .collect();
    // Kill the edge while a fill is being written: a file in tmp/ (or, at the latest, once a
    // few fills are done).
    let mut caught = false;
    wait_until(Duration::from_secs(60), "fills under way", || {
        caught = !files_under(cache.path(), "tmp").is_empty();
        caught || files_under(cache.path(), "objects").len() >= SEG_KEYS / 2
    });
    edge.process.signal(libc::SIGKILL);
    edge.process.wait();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    eprintln!("killed with a fill in tmp/: {caught}");
    // What a crash in the middle of a write leaves: a partial temp file.
    std::fs::write(cache.path().join("tmp/999999"), &bodies[0][..1000]).expect("partial");
    // objects/ holds only complete files.
    for f in files_under(cache.path(), "objects") {
        let key = f.to_string_lossy().to_string();
        let i = (0..SEG_KEYS)
            .find(|&i| seg_key(i) == key)
            .unwrap_or_else(|| panic!("unknown file {key} in objects/"));
        let on_disk = std::fs::read(cache.path().join("objects").join(&f)).expect("read");
        assert!(on_disk == bodies[i], "{key}: a partial file in objects/");
    }
    drop(edge);

    // Restarted on the same directory: the leftovers are gone, everything served is whole,
    // from disk or the store, on every request.
    let edge = Edge::start_with(opts);
    // (A new stack: its store gets the same objects.)
    for (i, b) in bodies.iter().enumerate() {
        edge.put(&seg_key(i), b);
    }
    assert!(
        files_under(cache.path(), "tmp").is_empty(),
        "{:?}",
        files_under(cache.path(), "tmp")
    );
    for round in 0..2 {
        for (i, b) in bodies.iter().enumerate() {
            let r = edge.get(&format!("/{}", seg_key(i)));
            assert_eq!(r.status, 200, "seg{i} round {round}");
            assert!(
                r.body == *b,
                "seg{i} round {round}: served bytes differ from the store"
            );
        }
    }
    assert!(edge.counter("ringcast_edge_disk_hits_total") >= SEG_KEYS as u64);
}

fn a_full_disk_tier_still_serves_and_caches_nothing_corrupt(legacy: bool) {
    let Some(disk) = Tmpfs::mount(2 << 20) else {
        return;
    };
    let opts = options(legacy).disk_cache(disk.path(), 64 << 20, 64 * 1024);
    let edge = Edge::start_with(opts.clone());
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| pattern(300 * 1024 + i, i as u8)).collect();
    for (i, b) in bodies.iter().enumerate() {
        edge.put(&seg_key(i), b);
    }
    // Room for the first object only, then nothing.
    let r = edge.get(&format!("/{}", seg_key(0)));
    assert!(r.body == bodies[0]);
    assert_eq!(edge.counter("ringcast_edge_disk_fills_total"), 1);
    disk.fill();
    for (i, body) in bodies.iter().enumerate().skip(1) {
        let r = edge.get(&format!("/{}", seg_key(i)));
        assert_eq!((r.status, r.header("x-cache")), (200, Some("MISS")));
        assert!(r.body == *body, "seg{i} from the origin");
        // Kept in memory instead.
        let r = edge.get(&format!("/{}", seg_key(i)));
        assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
        assert_eq!(r.header("x-cache-tier"), None);
        assert!(r.body == *body, "seg{i} from memory");
    }
    assert_eq!(edge.counter("ringcast_edge_disk_fill_errors_total"), 2);
    assert_eq!(edge.counter("ringcast_edge_disk_fills_total"), 1);
    // The failed fills left nothing behind; the one complete file is intact and still served.
    assert!(files_under(disk.path(), "tmp").is_empty());
    assert_eq!(
        files_under(disk.path(), "objects"),
        vec![PathBuf::from(seg_key(0))]
    );
    let r = edge.get(&format!("/{}", seg_key(0)));
    assert_eq!(r.header("x-cache-tier"), Some("disk"));
    assert!(r.body == bodies[0]);

    // Space back: a restart fills the tier again, every object whole.
    disk.free();
    drop(edge);
    let edge = Edge::start_with(opts);
    for (i, b) in bodies.iter().enumerate() {
        edge.put(&seg_key(i), b);
    }
    for (i, b) in bodies.iter().enumerate() {
        assert!(edge.get(&format!("/{}", seg_key(i))).body == *b);
    }
    for f in files_under(disk.path(), "objects") {
        let key = f.to_string_lossy().to_string();
        let i = (0..3).find(|&i| seg_key(i) == key).expect("known key");
        assert!(std::fs::read(disk.path().join("objects").join(&f)).expect("read") == bodies[i]);
    }
    assert_eq!(files_under(disk.path(), "objects").len(), 3);
    drop(edge);
    drop(disk);
}

both_drivers!(
    store_outage_spares_hits_and_recovers,
    killed_while_filling_the_disk_tier_never_serves_a_half_written_file,
    a_full_disk_tier_still_serves_and_caches_nothing_corrupt,
);
