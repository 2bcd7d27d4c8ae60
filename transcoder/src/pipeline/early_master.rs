//! The early master playlists: written as soon as every rendition has reported its init
//! segment, so players can start while the job still runs (live and progressive VOD alike).
//! The VOD's final master, with measured bandwidths, is [`crate::pipeline::publish`]'s.

use bytes::Bytes;
use ringcast_proto::content_type;
use ringcast_proto::keys;
use ringcast_proto::playlist::{MasterPlaylist, Variant};
use tokio::sync::mpsc;

use crate::cmaf::names::MEDIA_PLAYLIST;
use crate::ladder::Rung;
use crate::pipeline::rendition::{Destination, VariantInfo};

/// Write `v/{video}/{version}/master.m3u8` once every rendition reported its init segment
/// (variants in ladder order), then, with `with_current` (live), the current pointer
/// `v/{video}/master.m3u8`. A VOD job passes `false`: its pointer is written when the version
/// is complete (ADR 0001).
pub(crate) async fn write_masters(
    dest: Destination,
    mut info_rx: mpsc::Receiver<VariantInfo>,
    rungs: Vec<Rung>,
    fps: f64,
    with_current: bool,
) {
    let mut infos = Vec::new();
    while let Some(i) = info_rx.recv().await {
        infos.push(i);
        if infos.len() == rungs.len() {
            break;
        }
    }
    if infos.len() < rungs.len() {
        tracing::warn!(video = %dest.video_id, "stream ended before every rendition started; no master written");
        return;
    }
    infos.sort_by_key(|i| rungs.iter().position(|r| r.name == i.name));
    let versioned = {
        let mut m = MasterPlaylist::new();
        m.variants = infos
            .iter()
            .map(|i| Variant {
                uri: format!("{}/{MEDIA_PLAYLIST}", i.name),
                bandwidth: i.bandwidth,
                average_bandwidth: None,
                codecs: i.codecs.clone(),
                resolution: (i.width > 0 && i.height > 0).then_some((i.width, i.height)),
                frame_rate: Some(fps),
                name: Some(i.name.clone()),
            })
            .collect();
        m
    };
    let current = versioned.pointer(dest.version);
    for (key, m) in [
        (
            keys::version_master(&dest.video_id, dest.version),
            versioned,
        ),
        (keys::current_master(&dest.video_id), current),
    ]
    .into_iter()
    .take(if with_current { 2 } else { 1 })
    {
        if let Err(e) = m.validate() {
            tracing::error!(error = %e, "early master playlist invalid");
            return;
        }
        if let Err(e) = dest
            .store
            .put(&key, Bytes::from(m.render()), content_type::PLAYLIST)
            .await
        {
            tracing::error!(key, error = %e, "cannot write the early master playlist");
            return;
        }
    }
    tracing::info!(video = %dest.video_id, version = dest.version, with_current, "early master playlists written");
}

#[cfg(test)]
mod tests {
    use ringcast_infra::store::ObjectStore;

    use super::*;
    use crate::config::live::LiveTranscodeConfig;
    use crate::ladder;

    async fn early_masters(with_current: bool, all_inits: bool) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(&ringcast_infra::config::StoreConfig {
            root: dir.path().to_path_buf(),
            ..Default::default()
        })
        .await
        .expect("store");
        let dest = Destination {
            store: store.clone(),
            video_id: "vid".into(),
            version: 4,
        };
        let rungs = ladder::live_rungs(&LiveTranscodeConfig::default().heights);
        let (tx, rx) = mpsc::channel(rungs.len());
        let n = if all_inits { rungs.len() } else { 1 };
        for r in rungs.iter().take(n) {
            tx.send(VariantInfo {
                name: r.name.clone(),
                codecs: "avc1.4d401e,mp4a.40.2".into(),
                width: 640,
                height: r.height,
                bandwidth: 1_000_000,
            })
            .await
            .expect("send");
        }
        drop(tx);
        write_masters(dest, rx, rungs, 30.0, with_current).await;
        store.list("v/vid/").await.expect("list")
    }

    #[tokio::test]
    async fn early_master_waits_for_every_init_and_writes_the_pointer_only_for_live() {
        assert_eq!(
            early_masters(false, true).await,
            ["v/vid/4/master.m3u8"],
            "VOD: the current pointer is publish's, written last"
        );
        assert_eq!(
            early_masters(true, true).await,
            ["v/vid/4/master.m3u8", "v/vid/master.m3u8"]
        );
        assert!(early_masters(false, false).await.is_empty());
    }
}
