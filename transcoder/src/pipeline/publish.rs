//! Playlists of a finished job: one VOD media playlist per rendition, the versioned master,
//! and last of all the video's mutable master that points at this version.
//!
//! Publication order is the consistency guarantee: every segment is already uploaded when its
//! media playlist is written, and the mutable `v/{video}/master.m3u8` is written after
//! everything else, so a player that finds a version through it never sees a partial one.
//! Building is pure (tested on packaged results); [`publish`] only uploads.

use bytes::Bytes;
use ringcast_proto::content_type;
use ringcast_proto::keys;
use ringcast_proto::playlist::{MasterPlaylist, MediaPlaylist, Segment, Variant};

use crate::cmaf::names::{INIT_NAME, MEDIA_PLAYLIST};
use crate::error::TranscodeError;
use crate::pipeline::rendition::{Destination, RenditionOutput, SegmentStat};

/// Peak bit rate: the largest segment `bytes x 8 / duration` (RFC 8216 §4.3.4.2 `BANDWIDTH`),
/// rounded up. Segments without duration are skipped (they carry no time to divide by).
pub fn peak_bandwidth(segments: &[SegmentStat]) -> u64 {
    segments
        .iter()
        .filter(|s| s.duration > 0.0)
        .map(|s| (s.bytes as f64 * 8.0 / s.duration).ceil() as u64)
        .max()
        .unwrap_or(0)
}

/// Average bit rate over the whole rendition (`AVERAGE-BANDWIDTH`), rounded up.
pub fn average_bandwidth(segments: &[SegmentStat]) -> u64 {
    let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    let seconds: f64 = segments.iter().map(|s| s.duration).sum();
    if seconds > 0.0 {
        (bytes as f64 * 8.0 / seconds).ceil() as u64
    } else {
        0
    }
}

/// The VOD media playlist of a rendition, validated.
pub fn media_playlist(r: &RenditionOutput) -> Result<MediaPlaylist, TranscodeError> {
    let mut p = MediaPlaylist::vod(1, INIT_NAME);
    p.segments = r
        .segments
        .iter()
        .map(|s| Segment::new(keys::segment_name(s.msn), s.duration))
        .collect();
    p.target_duration = p.required_target_duration();
    p.validate().map_err(|source| TranscodeError::Playlist {
        what: format!("rendition {}", r.name),
        source,
    })?;
    Ok(p)
}

/// The versioned master playlist over `renditions`, highest resolution first; each variant's
/// URI is `{rendition}/index.m3u8`. Validated. The current pointer is made from it with
/// [`MasterPlaylist::pointer`] (the same rendering a rollback uses).
pub fn master_playlist(
    renditions: &[RenditionOutput],
    frame_rate: f64,
) -> Result<MasterPlaylist, TranscodeError> {
    let mut ordered: Vec<&RenditionOutput> = renditions.iter().collect();
    ordered.sort_by_key(|r| std::cmp::Reverse((r.height, r.width)));
    let mut m = MasterPlaylist::new();
    m.variants = ordered
        .into_iter()
        .map(|r| Variant {
            uri: format!("{}/{MEDIA_PLAYLIST}", r.name),
            bandwidth: peak_bandwidth(&r.segments),
            average_bandwidth: Some(average_bandwidth(&r.segments)),
            codecs: r.codecs.clone(),
            resolution: (r.width > 0 && r.height > 0).then_some((r.width, r.height)),
            frame_rate: Some(frame_rate),
            name: Some(r.name.clone()),
        })
        .collect();
    m.validate().map_err(|source| TranscodeError::Playlist {
        what: "master".into(),
        source,
    })?;
    Ok(m)
}

/// Upload the media playlists, the versioned master, then the current master.
pub async fn publish(
    dest: &Destination,
    renditions: &[RenditionOutput],
    frame_rate: f64,
) -> Result<(), TranscodeError> {
    // Build everything first: an invalid playlist must fail the job before anything is
    // published.
    let media: Vec<(String, MediaPlaylist)> = renditions
        .iter()
        .map(|r| Ok((r.name.clone(), media_playlist(r)?)))
        .collect::<Result<_, TranscodeError>>()?;
    let versioned = master_playlist(renditions, frame_rate)?;
    let current = versioned.pointer(dest.version);

    for (name, playlist) in media {
        put_playlist(dest, &dest.key(&name, MEDIA_PLAYLIST), playlist.render()).await?;
    }
    let versioned_key = keys::version_master(&dest.video_id, dest.version);
    put_playlist(dest, &versioned_key, versioned.render()).await?;
    put_playlist(
        dest,
        &keys::current_master(&dest.video_id),
        current.render(),
    )
    .await
}

async fn put_playlist(dest: &Destination, key: &str, text: String) -> Result<(), TranscodeError> {
    dest.store
        .put(key, Bytes::from(text), content_type::PLAYLIST)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_infra::config::StoreConfig;
    use ringcast_infra::store::ObjectStore;

    fn seg(msn: u64, duration: f64, bytes: u64) -> SegmentStat {
        SegmentStat {
            msn,
            duration,
            bytes,
        }
    }

    fn rendition(name: &str, w: u32, h: u32, segs: Vec<SegmentStat>) -> RenditionOutput {
        RenditionOutput {
            name: name.into(),
            codecs: "avc1.64001f,mp4a.40.2".into(),
            width: w,
            height: h,
            init_bytes: 800,
            segments: segs,
        }
    }

    fn ladder() -> Vec<RenditionOutput> {
        vec![
            // Deliberately out of order: the master sorts highest first.
            rendition(
                "360p",
                640,
                360,
                vec![seg(0, 2.0, 200_000), seg(1, 2.0, 250_000)],
            ),
            rendition(
                "720p",
                1280,
                720,
                vec![
                    seg(0, 2.0, 700_000),
                    seg(1, 2.0, 800_000),
                    seg(2, 0.5, 150_000),
                ],
            ),
        ]
    }

    #[test]
    fn bandwidth_math() {
        let segs = [
            seg(0, 2.0, 700_000),
            seg(1, 2.0, 800_000),
            seg(2, 0.5, 150_000),
        ];
        // Peaks: 2.8 Mb/s, 3.2 Mb/s, 2.4 Mb/s.
        assert_eq!(peak_bandwidth(&segs), 3_200_000);
        // 1.65 MB over 4.5 s.
        assert_eq!(average_bandwidth(&segs), 2_933_334);
        assert_eq!(peak_bandwidth(&[seg(0, 0.0, 10)]), 0);
        assert_eq!(average_bandwidth(&[]), 0);
    }

    #[test]
    fn media_playlist_is_vod_with_map_and_endlist() {
        let p = media_playlist(&ladder()[1]).expect("valid");
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:2.00000,\nseg0.m4s\n#EXTINF:2.00000,\nseg1.m4s\n#EXTINF:0.50000,\nseg2.m4s\n\
             #EXT-X-ENDLIST\n"
        );
        // A 2.5 s segment (a late keyframe) raises the target duration to 3, never below.
        let long = rendition("x", 2, 2, vec![seg(0, 2.5, 1)]);
        assert_eq!(media_playlist(&long).expect("valid").target_duration, 3);
    }

    #[test]
    fn masters_order_variants_and_prefix_uris() {
        let versioned = master_playlist(&ladder(), 30.0).expect("valid");
        assert_eq!(
            versioned.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3200000,AVERAGE-BANDWIDTH=2933334,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,NAME=\"720p\"\n\
             720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1000000,AVERAGE-BANDWIDTH=900000,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,NAME=\"360p\"\n\
             360p/index.m3u8\n"
        );
        let current = master_playlist(&ladder(), 29.97).expect("valid").pointer(7);
        let uris: Vec<&str> = current.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, ["7/720p/index.m3u8", "7/360p/index.m3u8"]);
        assert!(master_playlist(&[], 30.0).is_err(), "no variants");
    }

    #[tokio::test]
    async fn publish_writes_current_master_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(&StoreConfig {
            root: dir.path().to_path_buf(),
            ..StoreConfig::default()
        })
        .await
        .expect("store");
        let dest = Destination {
            store: store.clone(),
            video_id: "vid".into(),
            version: 2,
        };
        publish(&dest, &ladder(), 30.0).await.expect("publish");
        assert_eq!(
            store.list("v/vid/").await.expect("list"),
            [
                "v/vid/2/360p/index.m3u8",
                "v/vid/2/720p/index.m3u8",
                "v/vid/2/master.m3u8",
                "v/vid/master.m3u8"
            ]
        );
        let current = store
            .get("v/vid/master.m3u8")
            .await
            .expect("get")
            .expect("exists");
        assert!(String::from_utf8_lossy(&current).contains("\n2/720p/index.m3u8\n"));

        // An invalid rendition name fails before anything is written.
        let mut bad = ladder();
        bad[0].name = "bad\"name".into();
        let dest2 = Destination { version: 3, ..dest };
        let err = publish(&dest2, &bad, 30.0).await.expect_err("invalid");
        assert!(err.is_permanent(), "{err}");
        assert!(store.list("v/vid/3/").await.expect("list").is_empty());
    }
}
