//! fMP4 from ffmpeg (and from anyone who can make the transcoder read a crafted file): the box
//! splitter, the init-segment reader and the fragment reader never panic, and the splitter's
//! boxes do not depend on how the bytes arrived.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::fmp4::{parse_fragment, parse_init, read_box_header, BoxSplitter};

fn split(data: &[u8], step: usize) -> Result<Vec<(u64, usize)>, ()> {
    let mut s = BoxSplitter::with_max_box_size(1 << 20);
    let mut boxes = Vec::new();
    for piece in data.chunks(step.max(1)) {
        s.push(piece);
        loop {
            match s.next_box() {
                Ok(Some((header, bytes))) => boxes.push((header.total_len, bytes.len())),
                Ok(None) => break,
                Err(_) => return Err(()),
            }
        }
    }
    Ok(boxes)
}

fuzz_target!(|input: (u8, u16, &[u8])| {
    let (step, cut, data) = input;
    let _ = read_box_header(data);
    let whole = split(data, data.len());
    let pieces = split(data, usize::from(step) + 1);
    if let (Ok(a), Ok(b)) = (&whole, &pieces) {
        assert_eq!(a, b);
    }
    // The first part as an init segment, the rest as a fragment of it.
    let cut = usize::from(cut).min(data.len());
    if let Ok(init) = parse_init(&data[..cut]) {
        let _ = init.codecs_string();
        let _ = parse_fragment(&data[cut..], &init);
    }
});
