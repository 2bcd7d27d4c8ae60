//! Fragment (`moof` [+ `mdat`]) parser: per-track decode time, sample count, duration, bytes
//! and whether the fragment starts with a sync sample — what the packager needs to cut parts
//! and segments. ISO/IEC 14496-12 `mfhd` §8.8.5, `tfhd` §8.8.7, `trun` §8.8.8, `tfdt` §8.8.12,
//! with the §8.8.3.1 defaulting chain (trun → tfhd → trex) for durations, sizes and flags.

use super::init::{InitInfo, TrackKind};
use super::{require, Boxes, Fmp4Error, Reader};

/// `sample_is_non_sync_sample` in the sample flags word (§8.8.3.1).
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// Timing of one track within a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFragment {
    pub track_id: u32,
    /// `tfdt` decode time of the first sample, in the track timescale.
    pub base_decode_time: u64,
    pub sample_count: u32,
    /// Sum of sample durations in the track timescale (per-sample from `trun`, else the `tfhd`
    /// default, else the `trex` default).
    pub duration: u64,
    /// The first sample is a sync sample (always true for audio, where every frame is one).
    pub starts_with_sync_sample: bool,
    /// Sum of sample sizes: the bytes of this track in the fragment's `mdat`.
    pub data_size: u64,
}

/// Timing of one fragment (`moof` [+ `mdat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInfo {
    /// `mfhd` sequence number.
    pub sequence_number: u32,
    pub tracks: Vec<TrackFragment>,
}

impl FragmentInfo {
    /// The (first) `traf` of track `id`; `None` when the fragment carries no samples for it
    /// (ffmpeg ends a stream with an audio-only fragment, for example).
    pub fn track(&self, id: u32) -> Option<&TrackFragment> {
        self.tracks.iter().find(|t| t.track_id == id)
    }
}

/// Parse one fragment: a `moof` box, optionally followed by its `mdat` (whole or partial; only
/// the `moof` is read). Boxes before the `moof` (`styp`, `sidx`, `prft`, `emsg`) are skipped.
/// If several `moof`s are concatenated, only the first is read.
pub fn parse_fragment(fragment: &[u8], init: &InitInfo) -> Result<FragmentInfo, Fmp4Error> {
    let mut moof = None;
    for b in Boxes::new(fragment) {
        let (ty, payload) = b?;
        if &ty == b"moof" {
            moof = Some(payload);
            break;
        }
    }
    let moof = moof.ok_or(Fmp4Error::MissingBox("moof"))?;

    let mut sequence_number = None;
    let mut tracks = Vec::new();
    for b in Boxes::new(moof) {
        let (ty, payload) = b?;
        match &ty {
            b"mfhd" => {
                let mut r = Reader::new(payload, "mfhd");
                r.full_box()?;
                sequence_number = Some(r.u32()?);
            }
            b"traf" => tracks.push(parse_traf(payload, init)?),
            _ => {}
        }
    }
    Ok(FragmentInfo {
        sequence_number: sequence_number.ok_or(Fmp4Error::MissingBox("mfhd"))?,
        tracks,
    })
}

/// `tfhd` fields the timing needs (§8.8.7).
struct Tfhd {
    track_id: u32,
    default_duration: Option<u32>,
    default_size: Option<u32>,
    default_flags: Option<u32>,
}

fn parse_tfhd(payload: &[u8]) -> Result<Tfhd, Fmp4Error> {
    let mut r = Reader::new(payload, "tfhd");
    let (_, flags) = r.full_box()?;
    let track_id = r.u32()?;
    if flags & 0x00_0001 != 0 {
        r.skip(8)?; // base_data_offset
    }
    if flags & 0x00_0002 != 0 {
        r.skip(4)?; // sample_description_index
    }
    Ok(Tfhd {
        track_id,
        default_duration: r.optional_u32(flags, 0x00_0008)?,
        default_size: r.optional_u32(flags, 0x00_0010)?,
        default_flags: r.optional_u32(flags, 0x00_0020)?,
    })
}

/// What one `trun` contributes (§8.8.8).
struct Trun {
    sample_count: u32,
    /// `first_sample_flags`, else sample 0's per-sample flags.
    first_flags: Option<u32>,
    /// Sums of the per-sample fields, `None` when the trun does not carry them.
    durations: Option<u64>,
    sizes: Option<u64>,
}

fn parse_trun(payload: &[u8]) -> Result<Trun, Fmp4Error> {
    let mut r = Reader::new(payload, "trun");
    let (_, flags) = r.full_box()?;
    let sample_count = r.u32()?;
    if flags & 0x00_0001 != 0 {
        r.skip(4)?; // data_offset
    }
    let first_sample_flags = r.optional_u32(flags, 0x00_0004)?;
    let has_duration = flags & 0x00_0100 != 0;
    let has_size = flags & 0x00_0200 != 0;
    let has_flags = flags & 0x00_0400 != 0;
    let has_cto = flags & 0x00_0800 != 0;
    let record = 4 * [has_duration, has_size, has_flags, has_cto]
        .iter()
        .filter(|&&b| b)
        .count();
    if record > 0 {
        // Check the whole table up front: sample_count is attacker-controlled and must not
        // drive a long loop over bytes that are not there.
        let table = usize::try_from(sample_count)
            .ok()
            .and_then(|n| n.checked_mul(record))
            .ok_or(Fmp4Error::Truncated("trun sample table"))?;
        if table > r.remaining() {
            return Err(Fmp4Error::Truncated("trun sample table"));
        }
    }
    let mut durations = 0u64;
    let mut sizes = 0u64;
    let mut sample0_flags = None;
    if record > 0 {
        for i in 0..sample_count {
            // Each sum stays below 2^32 * 2^32, so u64 addition cannot overflow.
            if has_duration {
                durations += u64::from(r.u32()?);
            }
            if has_size {
                sizes += u64::from(r.u32()?);
            }
            if has_flags {
                let f = r.u32()?;
                if i == 0 {
                    sample0_flags = Some(f);
                }
            }
            if has_cto {
                r.skip(4)?; // composition offset: signed in v1, irrelevant to timing here
            }
        }
    }
    Ok(Trun {
        sample_count,
        first_flags: first_sample_flags.or(sample0_flags),
        durations: has_duration.then_some(durations),
        sizes: has_size.then_some(sizes),
    })
}

/// `traf`: `tfhd` + `tfdt` + one or more `trun`s, defaults resolved through `trex`.
fn parse_traf(traf: &[u8], init: &InitInfo) -> Result<TrackFragment, Fmp4Error> {
    let tfhd = parse_tfhd(require(traf, b"tfhd", "tfhd")?)?;
    let track = init
        .track(tfhd.track_id)
        .ok_or(Fmp4Error::UnknownTrack(tfhd.track_id))?;
    let default_duration = tfhd.default_duration.or(track.default_sample_duration);
    let default_size = tfhd.default_size.or(track.default_sample_size);

    let mut base_decode_time = None;
    let mut sample_count = 0u32;
    let mut duration = 0u64;
    let mut data_size = 0u64;
    // Flags of the fragment's first sample, once a trun with samples has been seen.
    let mut first_flags: Option<Option<u32>> = None;
    for b in Boxes::new(traf) {
        let (ty, payload) = b?;
        match &ty {
            b"tfdt" => {
                let mut r = Reader::new(payload, "tfdt");
                let (version, _) = r.full_box()?;
                base_decode_time = Some(if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                });
            }
            b"trun" => {
                let run = parse_trun(payload)?;
                if run.sample_count == 0 {
                    continue;
                }
                if first_flags.is_none() {
                    first_flags = Some(run.first_flags);
                }
                let n = u64::from(run.sample_count);
                let run_duration = match (run.durations, default_duration) {
                    (Some(d), _) => d,
                    (None, Some(d)) => n * u64::from(d),
                    (None, None) => {
                        return Err(Fmp4Error::Invalid(
                            "no sample duration in trun, tfhd or trex",
                        ))
                    }
                };
                let run_size = match (run.sizes, default_size) {
                    (Some(s), _) => s,
                    (None, Some(s)) => n * u64::from(s),
                    (None, None) => {
                        return Err(Fmp4Error::Invalid("no sample size in trun, tfhd or trex"))
                    }
                };
                sample_count = sample_count
                    .checked_add(run.sample_count)
                    .ok_or(Fmp4Error::Invalid("sample count overflow"))?;
                duration = duration
                    .checked_add(run_duration)
                    .ok_or(Fmp4Error::Invalid("fragment duration overflow"))?;
                data_size = data_size
                    .checked_add(run_size)
                    .ok_or(Fmp4Error::Invalid("fragment size overflow"))?;
            }
            _ => {}
        }
    }

    let starts_with_sync_sample = match (track.kind, first_flags) {
        // Every audio frame decodes on its own; encoders do not always say so in the flags.
        (TrackKind::Audio, _) => true,
        (_, None) => false,
        (_, Some(run_first)) => {
            // §8.8.3.1 defaulting chain; with no flags anywhere the all-zero default (a sync
            // sample) applies.
            let flags = run_first
                .or(tfhd.default_flags)
                .or(track.default_sample_flags)
                .unwrap_or(0);
            flags & SAMPLE_IS_NON_SYNC == 0
        }
    };

    Ok(TrackFragment {
        track_id: tfhd.track_id,
        base_decode_time: base_decode_time.ok_or(Fmp4Error::MissingBox("tfdt"))?,
        sample_count,
        duration,
        starts_with_sync_sample,
        data_size,
    })
}
