//! Criterion bench of playlist rendering: a VOD media playlist of a 2-hour movie, a master, and
//! the live LL-HLS playlist (parts, preload hint, rendition reports, delta update) the edge
//! renders on every part announcement.

use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_proto::live::{LiveConfig, LiveEvent, LiveRendition, PlaylistOpts};
use ringcast_proto::playlist::{MasterPlaylist, MediaPlaylist, Segment, Variant};

/// A live rendition with 2 s segments of four 0.5 s parts, `segments` segments long, and two
/// parts of the next segment announced.
fn live_rendition(segments: u64) -> LiveRendition {
    let start = LiveEvent::Start {
        target_duration: 2,
        part_target: 0.5,
        init: "init.mp4".into(),
        started_ms: 1_795_766_400_000,
        part_hold_back: None,
    };
    let mut r = LiveRendition::new(LiveConfig::default(), &start).expect("valid start");
    let mut apply = |e| {
        r.apply(e).expect("valid event");
    };
    for msn in 0..=segments {
        let parts = if msn == segments { 2 } else { 4 };
        for part in 0..parts {
            apply(LiveEvent::Part {
                msn,
                part,
                duration: 0.5,
                independent: part == 0,
            });
        }
        if msn < segments {
            apply(LiveEvent::SegmentEnd {
                msn,
                duration: 2.0,
                program_date_time_ms: 1_795_766_400_000 + msn * 2000,
            });
        }
    }
    r
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("playlist_render");

    let mut vod = MediaPlaylist::vod(2, "init.mp4");
    vod.segments = (0..3600)
        .map(|n| Segment::new(format!("seg{n}.m4s"), 2.0))
        .collect();
    vod.end_list = true;
    g.bench_function("vod_media_3600_segments", |b| b.iter(|| vod.render()));

    let mut master = MasterPlaylist::new();
    for (h, w, bw) in [
        (1080, 1920, 5_000_000),
        (720, 1280, 2_800_000),
        (480, 854, 1_400_000),
        (360, 640, 800_000),
    ] {
        master.variants.push(Variant {
            uri: format!("1/{h}p/index.m3u8"),
            bandwidth: bw,
            average_bandwidth: Some(bw * 9 / 10),
            codecs: "avc1.640028,mp4a.40.2".into(),
            resolution: Some((w, h)),
            frame_rate: Some(30.0),
            name: Some(format!("{h}p")),
        });
    }
    g.bench_function("master_4_variants", |b| b.iter(|| master.render()));

    let live = live_rendition(30);
    let sibling = live_rendition(30);
    let opts = PlaylistOpts {
        skip: false,
        rendition_reports: ["../480p/index.m3u8", "../360p/index.m3u8"]
            .iter()
            .filter_map(|u| sibling.rendition_report(*u))
            .collect(),
    };
    g.bench_function("live_ll_hls_model_to_text", |b| {
        b.iter(|| live.playlist(&opts).render())
    });
    let delta = PlaylistOpts {
        skip: true,
        ..opts.clone()
    };
    g.bench_function("live_ll_hls_delta_update", |b| {
        b.iter(|| live.playlist(&delta).render())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
