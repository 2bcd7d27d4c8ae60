//! What a rendition is to the rest of the pipeline: where its objects go ([`Destination`]),
//! what packaging it produced ([`RenditionOutput`], [`SegmentStat`]) and what it tells the
//! early master writer once it has started ([`VariantInfo`]). Shared by the packager, the
//! playlists and both pipelines.

use ringcast_infra::store::ObjectStore;
use ringcast_proto::keys;

use crate::cmaf::cutter::Cut;

/// Where a rendition's objects go.
#[derive(Clone)]
pub struct Destination {
    pub store: ObjectStore,
    pub video_id: String,
    pub version: u32,
}

impl Destination {
    /// Object key of `file` in `rendition`.
    pub fn key(&self, rendition: &str, file: &str) -> String {
        keys::rendition_file(&self.video_id, self.version, rendition, file)
    }
}

/// One uploaded segment, as the playlists need it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStat {
    pub msn: u64,
    /// `EXTINF` seconds.
    pub duration: f64,
    pub bytes: u64,
}

/// A packaged rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionOutput {
    pub name: String,
    /// HLS `CODECS`, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// Coded size of the video track (RESOLUTION).
    pub width: u32,
    pub height: u32,
    pub init_bytes: u64,
    pub segments: Vec<SegmentStat>,
}

impl RenditionOutput {
    /// An empty output for `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            codecs: String::new(),
            width: 0,
            height: 0,
            init_bytes: 0,
            segments: Vec::new(),
        }
    }

    /// Bytes of the init segment and the segments (the parts repeat the segments' bytes).
    pub fn total_bytes(&self) -> u64 {
        self.init_bytes + self.segments.iter().map(|s| s.bytes).sum::<u64>()
    }

    /// Take the init segment's facts (codecs, size) for the master playlist.
    pub fn record_init(&mut self, cut: &Cut) {
        if let Cut::Init { data, info } = cut {
            if let Some(v) = info.video() {
                self.width = u32::from(v.width);
                self.height = u32::from(v.height);
            }
            self.codecs = info.codecs_string();
            self.init_bytes = data.len() as u64;
        }
    }
}

/// What a rendition reports to the master writer once its init segment is stored.
#[derive(Debug, Clone)]
pub struct VariantInfo {
    pub name: String,
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    /// Estimated peak bit rate (`BANDWIDTH`) before any segment is measured.
    pub bandwidth: u64,
}
