//! Tests of the fMP4 reader: hand-built boxes for every parsing rule, a real ffmpeg CMAF
//! stream end to end, and property tests that no input makes a parser panic.

use super::*;
use proptest::prelude::*;

// ---- box builders -------------------------------------------------------------------

fn bx(ty: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&u32::try_from(payload.len() + 8).unwrap().to_be_bytes());
    v.extend_from_slice(ty);
    v.extend_from_slice(payload);
    v
}

fn full(ty: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![version];
    p.extend_from_slice(&flags.to_be_bytes()[1..]);
    p.extend_from_slice(payload);
    bx(ty, &p)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn be32(vals: &[u32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn trak(track_id: u32, timescale: u32, handler: &[u8; 4], entry: &[u8]) -> Vec<u8> {
    let tkhd = full(
        b"tkhd",
        0,
        3,
        &cat(&[&be32(&[0, 0, track_id, 0, 0]), &[0u8; 60]]),
    );
    let mdhd = full(
        b"mdhd",
        0,
        0,
        &cat(&[&be32(&[0, 0, timescale, 0]), &[0x55, 0xc4, 0, 0]]),
    );
    let hdlr = full(b"hdlr", 0, 0, &cat(&[&be32(&[0]), handler, &[0u8; 13]]));
    let stsd = full(b"stsd", 0, 0, &cat(&[&be32(&[1]), entry]));
    let stbl = bx(b"stbl", &stsd);
    let minf = bx(b"minf", &stbl);
    let mdia = bx(b"mdia", &cat(&[&mdhd, &hdlr, &minf]));
    bx(b"trak", &cat(&[&tkhd, &mdia]))
}

fn visual_entry(ty: &[u8; 4], w: u16, h: u16, config: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 6];
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&[0u8; 16]);
    p.extend_from_slice(&w.to_be_bytes());
    p.extend_from_slice(&h.to_be_bytes());
    p.extend_from_slice(&[0u8; 50]);
    p.extend_from_slice(config);
    bx(ty, &p)
}

fn avc1(w: u16, h: u16, profile: u8, compat: u8, level: u8) -> Vec<u8> {
    let avcc = bx(b"avcC", &[1, profile, compat, level, 0xff, 0xe0, 0x00]);
    visual_entry(b"avc1", w, h, &avcc)
}

/// `esds` with ffmpeg's padded 4-byte descriptor lengths.
fn esds(oti: u8, asc: &[u8]) -> Vec<u8> {
    fn desc(tag: u8, body: &[u8]) -> Vec<u8> {
        let n = u8::try_from(body.len()).unwrap();
        cat(&[&[tag, 0x80, 0x80, 0x80, n], body])
    }
    let dsi = desc(0x05, asc);
    let dcd = desc(
        0x04,
        &cat(&[&[oti, 0x15, 0, 0, 0], &be32(&[128_000, 128_000]), &dsi]),
    );
    let sl = desc(0x06, &[0x02]);
    let es = desc(0x03, &cat(&[&[0, 2, 0], &dcd, &sl]));
    full(b"esds", 0, 0, &es)
}

fn mp4a(oti: u8, asc: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 6];
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&[0u8; 8]);
    p.extend_from_slice(&2u16.to_be_bytes());
    p.extend_from_slice(&16u16.to_be_bytes());
    p.extend_from_slice(&[0u8; 4]);
    p.extend_from_slice(&(48_000u32 << 16).to_be_bytes());
    p.extend_from_slice(&esds(oti, asc));
    bx(b"mp4a", &p)
}

fn trex(track_id: u32, duration: u32, size: u32, flags: u32) -> Vec<u8> {
    full(b"trex", 0, 0, &be32(&[track_id, 1, duration, size, flags]))
}

/// ftyp + moov with video track 1 (90 kHz) and audio track 2 (48 kHz).
fn init_segment(trexes: &[Vec<u8>]) -> Vec<u8> {
    let ftyp = bx(b"ftyp", b"iso6\0\0\x02\0iso6cmfc");
    let mvhd = full(b"mvhd", 0, 0, &[0u8; 96]);
    let v = trak(1, 90_000, b"vide", &avc1(320, 240, 0x64, 0x00, 0x1f));
    let a = trak(2, 48_000, b"soun", &mp4a(0x40, &[0x11, 0x90]));
    let mvex = bx(b"mvex", &trexes.concat());
    let moov = bx(b"moov", &cat(&[&mvhd, &v, &a, &mvex]));
    cat(&[&ftyp, &moov])
}

fn default_init() -> InitInfo {
    parse_init(&init_segment(&[
        trex(1, 3000, 0, 0x0101_0000),
        trex(2, 1024, 0, 0),
    ]))
    .unwrap()
}

struct TrunSpec<'a> {
    first_flags: Option<u32>,
    durations: Option<&'a [u32]>,
    sizes: Option<&'a [u32]>,
    flags: Option<&'a [u32]>,
    count: u32,
}

fn trun(s: &TrunSpec<'_>) -> Vec<u8> {
    let mut f = 0x1; // data offset present, as ffmpeg writes it
    let mut p = be32(&[s.count, 0]);
    if let Some(ff) = s.first_flags {
        f |= 0x4;
        p.extend_from_slice(&ff.to_be_bytes());
    }
    f |= if s.durations.is_some() { 0x100 } else { 0 };
    f |= if s.sizes.is_some() { 0x200 } else { 0 };
    f |= if s.flags.is_some() { 0x400 } else { 0 };
    for i in 0..s.count as usize {
        for col in [s.durations, s.sizes, s.flags].into_iter().flatten() {
            p.extend_from_slice(&col[i].to_be_bytes());
        }
    }
    full(b"trun", 0, f, &p)
}

/// tfhd with default-base-is-moof and the given optional defaults.
fn tfhd(track_id: u32, dur: Option<u32>, size: Option<u32>, flags: Option<u32>) -> Vec<u8> {
    let mut f = 0x02_0000;
    let mut p = be32(&[track_id]);
    for (bit, v) in [(0x8, dur), (0x10, size), (0x20, flags)] {
        if let Some(v) = v {
            f |= bit;
            p.extend_from_slice(&v.to_be_bytes());
        }
    }
    full(b"tfhd", 0, f, &p)
}

fn tfdt_v1(t: u64) -> Vec<u8> {
    full(b"tfdt", 1, 0, &t.to_be_bytes())
}

fn moof(seq: u32, trafs: &[Vec<u8>]) -> Vec<u8> {
    let mfhd = full(b"mfhd", 0, 0, &be32(&[seq]));
    bx(b"moof", &cat(&[&mfhd, &trafs.concat()]))
}

// ---- headers and splitter -----------------------------------------------------------

#[test]
fn header_32bit() {
    let b = bx(b"free", &[1, 2, 3]);
    let h = read_box_header(&b).unwrap().unwrap();
    assert_eq!(
        h,
        BoxHeader {
            box_type: *b"free",
            header_len: 8,
            total_len: 11
        }
    );
    assert_eq!(h.payload_len(), 3);
}

#[test]
fn header_largesize() {
    let mut b = be32(&[1]);
    b.extend_from_slice(b"mdat");
    b.extend_from_slice(&(5_000_000_000u64).to_be_bytes());
    let h = read_box_header(&b).unwrap().unwrap();
    assert_eq!(h.box_type, *b"mdat");
    assert_eq!(h.header_len, 16);
    assert_eq!(h.total_len, 5_000_000_000);
    // largesize cut off after the 8-byte compact header: need more.
    assert_eq!(read_box_header(&b[..12]).unwrap(), None);
}

#[test]
fn header_truncated_needs_more() {
    let b = bx(b"moov", &[0; 4]);
    for n in 0..8 {
        assert_eq!(read_box_header(&b[..n]).unwrap(), None, "len {n}");
    }
    // The header alone is enough even though the payload is missing.
    assert!(read_box_header(&b[..8]).unwrap().is_some());
}

#[test]
fn header_uuid_includes_usertype() {
    let b = bx(b"uuid", &[7u8; 20]);
    assert_eq!(read_box_header(&b[..20]).unwrap(), None);
    let h = read_box_header(&b).unwrap().unwrap();
    assert_eq!((h.header_len, h.total_len), (24, 28));
}

#[test]
fn header_rejects_size_zero_and_too_small() {
    let mut b = be32(&[0]);
    b.extend_from_slice(b"mdat");
    assert_eq!(read_box_header(&b), Err(Fmp4Error::SizeToEnd(*b"mdat")));
    let mut b = be32(&[7]);
    b.extend_from_slice(b"free");
    assert!(matches!(
        read_box_header(&b),
        Err(Fmp4Error::InvalidSize { size: 7, .. })
    ));
    let mut b = be32(&[1]);
    b.extend_from_slice(b"mdat");
    b.extend_from_slice(&15u64.to_be_bytes());
    assert!(matches!(
        read_box_header(&b),
        Err(Fmp4Error::InvalidSize {
            size: 15,
            header_len: 16,
            ..
        })
    ));
}

#[test]
fn splitter_one_byte_at_a_time() {
    let a = bx(b"ftyp", b"iso6\0\0\0\0");
    let mut big = be32(&[1]);
    big.extend_from_slice(b"mdat");
    big.extend_from_slice(&(16u64 + 3).to_be_bytes());
    big.extend_from_slice(&[9, 9, 9]);
    let c = bx(b"moof", &[1; 40]);
    let stream = cat(&[&a, &big, &c]);

    let mut s = BoxSplitter::new();
    let mut out = Vec::new();
    for byte in &stream {
        s.push(std::slice::from_ref(byte));
        while let Some((h, b)) = s.next_box().unwrap() {
            assert_eq!(h.total_len, b.len() as u64);
            out.push((h.box_type, b));
        }
    }
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], (*b"ftyp", Bytes::from(a)));
    assert_eq!(out[1], (*b"mdat", Bytes::from(big)));
    assert_eq!(out[2], (*b"moof", Bytes::from(c)));
    assert_eq!(s.buffered_len(), 0);
    s.finish().unwrap();
}

#[test]
fn splitter_size_guard_and_sticky_error() {
    let mut s = BoxSplitter::with_max_box_size(1024);
    let mut h = be32(&[4096]);
    h.extend_from_slice(b"mdat");
    s.push(&h);
    let e = s.next_box().unwrap_err();
    assert!(matches!(
        e,
        Fmp4Error::TooLarge {
            size: 4096,
            max: 1024,
            ..
        }
    ));
    s.push(&bx(b"free", &[]));
    assert_eq!(s.next_box().unwrap_err(), e);
    assert_eq!(s.finish().unwrap_err(), e);
}

#[test]
fn splitter_finish_reports_partial_box() {
    let mut s = BoxSplitter::new();
    s.push(&bx(b"moof", &[0; 10])[..12]);
    assert_eq!(s.next_box().unwrap(), None);
    assert!(s.finish().is_err());
}

// ---- init segment -------------------------------------------------------------------

#[test]
fn init_tracks_codecs_and_trex() {
    let init = default_init();
    let v = init.video().unwrap();
    assert_eq!(
        (v.track_id, v.kind, v.timescale, v.width, v.height),
        (1, TrackKind::Video, 90_000, 320, 240)
    );
    assert_eq!(v.codec, "avc1.64001f");
    assert_eq!(v.default_sample_duration, Some(3000));
    assert_eq!(v.default_sample_flags, Some(0x0101_0000));
    let a = init.audio().unwrap();
    assert_eq!(
        (a.track_id, a.kind, a.timescale),
        (2, TrackKind::Audio, 48_000)
    );
    assert_eq!(a.codec, "mp4a.40.2");
    assert_eq!(init.codecs_string(), "avc1.64001f,mp4a.40.2");
}

#[test]
fn init_accepts_moov_alone_and_skips_leading_boxes() {
    let full_init = init_segment(&[]);
    let moov_only = &full_init[read_box_header(&full_init).unwrap().unwrap().total_len as usize..];
    let a = parse_init(moov_only).unwrap();
    assert_eq!(a.tracks.len(), 2);
    assert_eq!(a.video().unwrap().default_sample_duration, None);
    assert_eq!(
        parse_init(&bx(b"ftyp", b"iso6")),
        Err(Fmp4Error::MissingBox("moov"))
    );
}

#[test]
fn avcc_codec_strings() {
    for (p, c, l, want) in [
        (0x42, 0xc0, 0x1e, "avc1.42c01e"),
        (0x4d, 0x40, 0x28, "avc1.4d4028"),
        (0x64, 0x00, 0x33, "avc1.640033"),
    ] {
        let t = trak(1, 90_000, b"vide", &avc1(1920, 1080, p, c, l));
        let init = parse_init(&bx(b"moov", &t)).unwrap();
        assert_eq!(init.tracks[0].codec, want);
    }
}

#[test]
fn hvcc_codec_string() {
    // Main profile, compat flags 0x60000000, level 93, constraint byte 0xB0.
    let mut hvcc = vec![1, 0x01];
    hvcc.extend_from_slice(&0x6000_0000u32.to_be_bytes());
    hvcc.extend_from_slice(&[0xb0, 0, 0, 0, 0, 0, 93]);
    let entry = visual_entry(b"hvc1", 1280, 720, &bx(b"hvcC", &hvcc));
    let init = parse_init(&bx(b"moov", &trak(1, 90_000, b"vide", &entry))).unwrap();
    assert_eq!(init.tracks[0].codec, "hvc1.1.6.L93.B0");
    assert_eq!((init.tracks[0].width, init.tracks[0].height), (1280, 720));
}

#[test]
fn esds_audio_object_types() {
    for (oti, asc, want) in [
        (0x40, &[0x11, 0x90][..], "mp4a.40.2"),       // AAC-LC
        (0x40, &[0x2b, 0x92, 0x08][..], "mp4a.40.5"), // HE-AAC (SBR)
        (0x40, &[0xf8, 0x40][..], "mp4a.40.34"),      // escape: 32 + 2 = MPEG-1 Layer 3
        (0x6b, &[][..], "mp4a.6b"),                   // MP3 via object type indication
    ] {
        let t = trak(2, 48_000, b"soun", &mp4a(oti, asc));
        let init = parse_init(&bx(b"moov", &t)).unwrap();
        assert_eq!(init.tracks[0].codec, want);
        assert_eq!(init.tracks[0].kind, TrackKind::Audio);
    }
}

#[test]
fn init_rejects_zero_timescale() {
    let t = trak(1, 0, b"vide", &avc1(2, 2, 0x64, 0, 0x1f));
    assert_eq!(
        parse_init(&bx(b"moov", &t)),
        Err(Fmp4Error::Invalid("mdhd timescale is 0"))
    );
}

// ---- fragments ----------------------------------------------------------------------

#[test]
fn trun_with_per_sample_fields() {
    let init = default_init();
    let traf = bx(
        b"traf",
        &cat(&[
            &tfhd(1, None, None, None),
            &tfdt_v1(180_000),
            &trun(&TrunSpec {
                first_flags: None,
                durations: Some(&[3000, 3000, 3003]),
                sizes: Some(&[1000, 200, 300]),
                flags: Some(&[0x0200_0000, 0x0101_0000, 0x0101_0000]),
                count: 3,
            }),
        ]),
    );
    let frag = cat(&[&moof(7, &[traf]), &bx(b"mdat", &[0; 1500])]);
    let f = parse_fragment(&frag, &init).unwrap();
    assert_eq!(f.sequence_number, 7);
    let t = f.track(1).unwrap();
    assert_eq!(t.base_decode_time, 180_000);
    assert_eq!(t.sample_count, 3);
    assert_eq!(t.duration, 9003);
    assert_eq!(t.data_size, 1500);
    // Sample 0's own flags (sync) beat the non-sync trex default.
    assert!(t.starts_with_sync_sample);
}

#[test]
fn trun_first_sample_flags_without_per_sample_fields() {
    let init = default_init();
    let run = trun(&TrunSpec {
        first_flags: Some(0x0200_0000),
        durations: None,
        sizes: Some(&[10, 20]),
        flags: None,
        count: 2,
    });
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &run]),
    );
    let f = parse_fragment(&moof(1, &[traf]), &init).unwrap();
    let t = f.track(1).unwrap();
    // Durations fall back to the trex default of 3000.
    assert_eq!((t.sample_count, t.duration, t.data_size), (2, 6000, 30));
    assert!(t.starts_with_sync_sample);
}

#[test]
fn tfhd_defaults_override_trex() {
    let init = default_init();
    let run = trun(&TrunSpec {
        first_flags: None,
        durations: None,
        sizes: None,
        flags: None,
        count: 4,
    });
    // tfhd says: duration 1500, size 100, flags sync — all beat the trex defaults.
    let traf = bx(
        b"traf",
        &cat(&[
            &tfhd(1, Some(1500), Some(100), Some(0)),
            &full(b"tfdt", 0, 0, &be32(&[42])),
            &run,
        ]),
    );
    let f = parse_fragment(&moof(2, &[traf]), &init).unwrap();
    let t = f.track(1).unwrap();
    assert_eq!(
        (t.base_decode_time, t.duration, t.data_size),
        (42, 6000, 400)
    );
    assert!(t.starts_with_sync_sample);

    // Same with a non-sync tfhd default flag.
    let traf = bx(
        b"traf",
        &cat(&[
            &tfhd(1, Some(1500), Some(100), Some(0x0001_0000)),
            &tfdt_v1(0),
            &run,
        ]),
    );
    let f = parse_fragment(&moof(3, &[traf]), &init).unwrap();
    assert!(!f.track(1).unwrap().starts_with_sync_sample);
}

#[test]
fn trex_fallback_for_flags_and_duration() {
    // trex: video non-sync by default, size 50.
    let init = parse_init(&init_segment(&[
        trex(1, 3000, 50, 0x0101_0000),
        trex(2, 1024, 0, 0),
    ]))
    .unwrap();
    let run = trun(&TrunSpec {
        first_flags: None,
        durations: None,
        sizes: None,
        flags: None,
        count: 5,
    });
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, None, None, None), &tfdt_v1(9), &run]),
    );
    let f = parse_fragment(&moof(4, &[traf]), &init).unwrap();
    let t = f.track(1).unwrap();
    assert_eq!((t.duration, t.data_size), (15_000, 250));
    assert!(!t.starts_with_sync_sample);
}

#[test]
fn audio_always_starts_with_sync_and_multiple_truns_add_up() {
    let init = default_init();
    let runs: Vec<Vec<u8>> = [2u32, 3]
        .iter()
        .map(|&n| {
            trun(&TrunSpec {
                first_flags: Some(0x0001_0000),
                durations: None,
                sizes: Some(&[6, 6, 6][..n as usize]),
                flags: None,
                count: n,
            })
        })
        .collect();
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(2, None, None, None), &tfdt_v1(1024), &runs.concat()]),
    );
    let f = parse_fragment(&moof(5, &[traf]), &init).unwrap();
    let t = f.track(2).unwrap();
    assert_eq!((t.sample_count, t.duration, t.data_size), (5, 5 * 1024, 30));
    assert!(t.starts_with_sync_sample);
}

#[test]
fn fragment_errors() {
    let init = default_init();
    let run = trun(&TrunSpec {
        first_flags: None,
        durations: None,
        sizes: None,
        flags: None,
        count: 1,
    });
    let unknown = bx(
        b"traf",
        &cat(&[&tfhd(9, None, None, None), &tfdt_v1(0), &run]),
    );
    assert_eq!(
        parse_fragment(&moof(1, &[unknown]), &init),
        Err(Fmp4Error::UnknownTrack(9))
    );
    let no_tfdt = bx(b"traf", &cat(&[&tfhd(1, None, None, None), &run]));
    assert_eq!(
        parse_fragment(&moof(1, &[no_tfdt]), &init),
        Err(Fmp4Error::MissingBox("tfdt"))
    );
    // Claims a million per-sample records with no bytes behind them.
    let mut lying = trun(&TrunSpec {
        first_flags: None,
        durations: Some(&[1]),
        sizes: None,
        flags: None,
        count: 1,
    });
    lying[12..16].copy_from_slice(&1_000_000u32.to_be_bytes());
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &lying]),
    );
    assert_eq!(
        parse_fragment(&moof(1, &[traf]), &init),
        Err(Fmp4Error::Truncated("trun sample table"))
    );
    assert_eq!(
        parse_fragment(&bx(b"mdat", &[1, 2]), &init),
        Err(Fmp4Error::MissingBox("moof"))
    );
    // Without trex there is no duration to fall back to.
    let bare = parse_init(&init_segment(&[])).unwrap();
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, None, Some(1), None), &tfdt_v1(0), &run]),
    );
    assert!(matches!(
        parse_fragment(&moof(1, &[traf]), &bare),
        Err(Fmp4Error::Invalid(_))
    ));
}

#[test]
fn fragment_accepts_moof_with_partial_mdat() {
    let init = default_init();
    let run = trun(&TrunSpec {
        first_flags: None,
        durations: None,
        sizes: Some(&[4]),
        flags: None,
        count: 1,
    });
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, None, None, None), &tfdt_v1(0), &run]),
    );
    let whole = cat(&[&moof(1, &[traf]), &bx(b"mdat", &[0; 4])]);
    assert!(parse_fragment(&whole[..whole.len() - 3], &init).is_ok());
}

// ---- real ffmpeg output -------------------------------------------------------------

#[test]
fn real_ffmpeg_cmaf_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-f",
            "mp4",
            "-movflags",
            "cmaf+frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration",
            "500000",
        ])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs ffmpeg (with libx264 and aac) on PATH; \
                 install it (scripts/ do in CI): spawning `ffmpeg` failed: {e}"
            )
        });
    assert!(status.success(), "ffmpeg failed: {status}");
    let bytes = std::fs::read(&out).unwrap();

    // Feed the file in awkward chunks, as a pipe would deliver it.
    let mut splitter = BoxSplitter::new();
    let mut boxes = Vec::new();
    for chunk in bytes.chunks(4093) {
        splitter.push(chunk);
        while let Some(b) = splitter.next_box().unwrap() {
            boxes.push(b);
        }
    }
    splitter.finish().unwrap();

    let init_end = boxes
        .iter()
        .position(|(h, _)| &h.box_type == b"moov")
        .unwrap()
        + 1;
    let init_bytes: Vec<u8> = boxes[..init_end]
        .iter()
        .flat_map(|(_, b)| b.to_vec())
        .collect();
    let init = parse_init(&init_bytes).unwrap();
    let v = init.video().expect("video track");
    assert_eq!((v.width, v.height), (320, 240));
    assert!(v.codec.starts_with("avc1."), "{}", v.codec);
    assert_eq!(init.audio().expect("audio track").codec, "mp4a.40.2");

    let mut video = Vec::new();
    let mut seqs = Vec::new();
    for (i, (h, b)) in boxes.iter().enumerate() {
        if &h.box_type != b"moof" {
            continue;
        }
        // moof + its mdat, as the packager hands them over.
        let mut frag = b.to_vec();
        if let Some((mh, m)) = boxes.get(i + 1) {
            assert_eq!(&mh.box_type, b"mdat");
            frag.extend_from_slice(m);
            let f = parse_fragment(&frag, &init).unwrap();
            let total: u64 = f.tracks.iter().map(|t| t.data_size).sum();
            assert_eq!(total, mh.payload_len(), "trun sizes cover the mdat");
        }
        let f = parse_fragment(&frag, &init).unwrap();
        seqs.push(f.sequence_number);
        if let Some(t) = f.track(v.track_id) {
            video.push(t.clone());
        }
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(video.len() >= 4, "{video:?}");

    let ts = f64::from(v.timescale);
    let mut expected_next = video[0].base_decode_time;
    for t in &video {
        assert_eq!(
            t.base_decode_time, expected_next,
            "fragments are contiguous"
        );
        expected_next += t.duration;
        let start = (t.base_decode_time - video[0].base_decode_time) as f64 / ts;
        // Keyframes every 30 frames at 30 fps: whole seconds start with one, the
        // 0.5 s cuts forced by -frag_duration do not.
        let on_keyframe = (start - start.round()).abs() < 1e-3;
        assert_eq!(
            t.starts_with_sync_sample, on_keyframe,
            "fragment at {start:.3} s"
        );
    }
    let starts: Vec<f64> = video
        .iter()
        .filter(|t| t.starts_with_sync_sample)
        .map(|t| (t.base_decode_time - video[0].base_decode_time) as f64 / ts)
        .collect();
    assert_eq!(starts, [0.0, 1.0]);
    let total = video.iter().map(|t| t.duration).sum::<u64>() as f64 / ts;
    assert!((total - 2.0).abs() < 0.05, "video lasts {total} s");
}

// ---- robustness ---------------------------------------------------------------------

fn sample_fragment() -> Vec<u8> {
    let run = trun(&TrunSpec {
        first_flags: Some(0x0200_0000),
        durations: Some(&[3000, 3000]),
        sizes: Some(&[5, 6]),
        flags: Some(&[0, 0x0101_0000]),
        count: 2,
    });
    let traf = bx(
        b"traf",
        &cat(&[&tfhd(1, Some(1), Some(2), Some(3)), &tfdt_v1(0), &run]),
    );
    cat(&[&moof(1, &[traf]), &bx(b"mdat", &[0; 11])])
}

proptest! {
    #[test]
    fn splitter_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048),
                             chunk in 1usize..64) {
        let mut s = BoxSplitter::with_max_box_size(1 << 20);
        for c in data.chunks(chunk) {
            s.push(c);
            while let Ok(Some((h, b))) = s.next_box() {
                prop_assert_eq!(h.total_len, b.len() as u64);
            }
        }
        let _ = s.finish();
    }

    #[test]
    fn parsers_never_panic_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_init(&data);
        let _ = parse_fragment(&data, &default_init());
    }

    #[test]
    fn parsers_never_panic_on_mutated_boxes(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        // Random bytes rarely get past the first header; mutating valid boxes reaches the
        // field readers.
        let mut init = init_segment(&[trex(1, 3000, 0, 0x0101_0000), trex(2, 1024, 0, 0)]);
        let mut frag = sample_fragment();
        for (i, v) in &edits {
            let n = init.len();
            init[i % n] = *v;
            let n = frag.len();
            frag[i % n] = *v;
        }
        let _ = parse_init(&init[..cut % (init.len() + 1)]);
        let _ = parse_init(&init);
        let _ = parse_fragment(&frag, &default_init());
        let _ = parse_fragment(&frag[..cut % (frag.len() + 1)], &default_init());
    }
}
