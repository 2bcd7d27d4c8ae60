//! Live through a Redis crash: ffmpeg pushes a live stream through the ingest and transcoder,
//! viewers follow it at the edge; Redis is killed (SIGKILL, no persistence: it comes back
//! empty) and started again on its port. The live stream must resume on its own: the edge's
//! media playlist keeps growing past where it stood, with media sequence numbers that never go
//! back (a player following it would otherwise refetch or skip), every playlist strict-valid,
//! and the segments it lists after the restart decode.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ringcast_proto::playlist::parse_media;
use ringcast_testkit::clips::Clip;
use ringcast_testkit::{
    self as testkit, hls_parser, http, EdgeOptions, IngestOptions, Process, RedisServer, Stack,
    TranscoderOptions,
};

const KEY: &str = "restart-publish-key-01";
const VIDEO: &str = "redis-restart-live";
const PUSH_SECONDS: u32 = 60;

/// `(media sequence, msn of the segment in progress)` of a live media playlist.
fn position(playlist: &str) -> (u64, u64) {
    let p = parse_media(playlist).unwrap_or_else(|e| panic!("{e:?}:\n{playlist}"));
    (p.media_sequence, p.media_sequence + p.segments.len() as u64)
}

#[test]
fn live_resumes_after_redis_restarts_empty() {
    let mut redis = RedisServer::start();
    let stack = Stack::builder()
        .redis_at(&redis.url)
        .ingest(
            IngestOptions::new()
                .live_key(KEY, VIDEO)
                .live_grace_secs(30),
        )
        .transcoder(TranscoderOptions::new().toml("[live]\npreset = \"ultrafast\""))
        .edge(EdgeOptions::new())
        .start();
    let work = stack.dir();
    let edge: SocketAddr = stack.edge().addr;
    let mut publisher = Process::spawn(
        "publisher",
        Clip::new(640, 360)
            .seconds(PUSH_SECONDS)
            .audio(true)
            .flush_packets(true)
            .live_push(&format!("{}/live/{KEY}", stack.ingest().url())),
        work,
    );
    let media_path = format!("/v/{VIDEO}/1/360p/index.m3u8");
    let playlist = || {
        http::get(edge, &media_path)
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.text())
    };
    testkit::wait_until(Duration::from_secs(90), "live segments at the edge", || {
        playlist().is_some_and(|p| p.matches("#EXTINF").count() >= 2)
    });
    let (seq_before, msn_before) = position(&playlist().expect("playlist"));

    // Redis crashes and comes back empty; the ingest notices in between (readyz 503).
    redis.stop();
    testkit::wait_until(
        Duration::from_secs(30),
        "the ingest to see Redis down",
        || http::get(stack.ingest().addr, "/readyz").is_ok_and(|r| r.status == 503),
    );
    redis.restart();

    // The stream resumes at the edge: new segments past the old hint, and the sequence never
    // goes back.
    let mut last_seq = seq_before;
    testkit::wait_until(
        Duration::from_secs(90),
        "the live playlist to grow again after the Redis restart",
        || {
            publisher.assert_running();
            let Some(p) = playlist() else { return false };
            let (seq, msn) = position(&p);
            assert!(
                seq >= last_seq,
                "media sequence went back from {last_seq} to {seq}:\n{p}"
            );
            last_seq = seq;
            hls_parser::assert_bodies(&[&p], hls_parser::Expect::Media);
            msn >= msn_before + 3
        },
    );

    // What the playlist lists now decodes (ffmpeg reads the live media playlist once).
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-live_start_index", "-2", "-i"])
        .arg(format!("http://{edge}{media_path}"))
        .args(["-t", "2", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "ffmpeg could not decode the resumed stream: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(publisher);
}
