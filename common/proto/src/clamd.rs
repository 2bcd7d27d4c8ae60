//! The clamd protocol bits the ingest's virus scan needs, sans-IO: the `INSTREAM` command and
//! its chunk framing, and the parsing of clamd's one-line reply (clamd(8), "INSTREAM").
//!
//! A scan is `zINSTREAM\0`, then the file as chunks each preceded by its length as a 4-byte
//! big-endian integer, then a zero length; clamd answers one NUL-terminated line:
//! `stream: OK`, `stream: {signature} FOUND`, or `{message} ERROR` (e.g. `INSTREAM size limit
//! exceeded. ERROR` once the stream passes clamd's `StreamMaxLength`).

/// The command that starts a streamed scan (`z` prefix: NUL-terminated command and reply).
pub const INSTREAM: &[u8] = b"zINSTREAM\0";

/// `zPING\0`: clamd answers `PONG`.
pub const PING: &[u8] = b"zPING\0";

/// The zero-length chunk that ends the stream.
pub const END_OF_STREAM: [u8; 4] = [0, 0, 0, 0];

/// Largest chunk clamd takes in one frame (its limit is `StreamMaxLength`, but a single frame
/// is read into one buffer; 1 MiB keeps both sides' buffers small).
pub const MAX_CHUNK: usize = 1024 * 1024;

/// The 4-byte length prefix of a chunk of `len` bytes (`len` ≤ [`MAX_CHUNK`]).
pub fn chunk_header(len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_CHUNK);
    (len as u32).to_be_bytes()
}

/// Append one framed chunk (length prefix + data) to `out`. Empty data is skipped: a zero
/// length would end the stream early.
pub fn frame_chunk(data: &[u8], out: &mut Vec<u8>) {
    for piece in data.chunks(MAX_CHUNK) {
        out.extend_from_slice(&chunk_header(piece.len()));
        out.extend_from_slice(piece);
    }
}

/// clamd's verdict on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature matched.
    Clean,
    /// A signature matched; its name as clamd reports it (e.g. `Eicar-Signature`,
    /// `Ringcast.Test.EICAR.UNOFFICIAL`).
    Infected(String),
    /// The stream was longer than clamd's `StreamMaxLength`: no verdict on the whole file.
    SizeLimitExceeded,
    /// clamd failed (its message), or the reply was not understood: no verdict.
    Error(String),
}

/// Parse clamd's reply to `INSTREAM` (with or without the trailing NUL / newline).
pub fn parse_reply(reply: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(reply);
    let line = text.trim_end_matches(['\0', '\n', '\r']).trim();
    if line.contains("size limit exceeded") {
        return Verdict::SizeLimitExceeded;
    }
    if let Some(msg) = line.strip_suffix(" ERROR") {
        return Verdict::Error(msg.trim().to_string());
    }
    // With session ids clamd prefixes `{n}: `; the stream's name is `stream` (older versions
    // may say `fd[...]`): take what follows the last `: ` before the verdict.
    let body = line.rsplit_once(": ").map_or(line, |(_, b)| b);
    if body == "OK" {
        return Verdict::Clean;
    }
    if let Some(name) = body.strip_suffix(" FOUND") {
        let name = name.trim();
        if !name.is_empty() {
            return Verdict::Infected(name.to_string());
        }
    }
    Verdict::Error(format!("unexpected clamd reply {line:?}"))
}

/// Whether a `PING` reply is clamd's `PONG`.
pub fn is_pong(reply: &[u8]) -> bool {
    String::from_utf8_lossy(reply).trim_end_matches(['\0', '\n', '\r']) == "PONG"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decode a framed stream back into its bytes; `None` if the framing is broken.
    fn unframe(mut framed: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let (len, rest) = framed.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            if len == 0 {
                return rest.is_empty().then_some(out);
            }
            if len > MAX_CHUNK || rest.len() < len {
                return None;
            }
            out.extend_from_slice(&rest[..len]);
            framed = &rest[len..];
        }
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0"), Verdict::Clean);
        assert_eq!(parse_reply(b"stream: OK\n"), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Ringcast.Test.EICAR.UNOFFICIAL FOUND\0"),
            Verdict::Infected("Ringcast.Test.EICAR.UNOFFICIAL".into())
        );
        assert_eq!(
            parse_reply(b"1: stream: Eicar-Signature FOUND\0"),
            Verdict::Infected("Eicar-Signature".into())
        );
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Verdict::SizeLimitExceeded
        );
        assert_eq!(
            parse_reply(b"Can't allocate memory ERROR\0"),
            Verdict::Error("Can't allocate memory".into())
        );
        assert!(matches!(parse_reply(b""), Verdict::Error(_)));
        assert!(matches!(parse_reply(b"stream:  FOUND"), Verdict::Error(_)));
        assert!(is_pong(b"PONG\0"));
        assert!(is_pong(b"PONG\n"));
        assert!(!is_pong(b"PANG\0"));
    }

    #[test]
    fn framing() {
        let mut out = Vec::new();
        frame_chunk(b"", &mut out);
        assert!(out.is_empty(), "no zero-length frame before the end");
        frame_chunk(b"abc", &mut out);
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }

    proptest! {
        #[test]
        fn framed_chunks_round_trip(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..8)
        ) {
            let mut framed = Vec::new();
            for p in &pieces {
                frame_chunk(p, &mut framed);
            }
            framed.extend_from_slice(&END_OF_STREAM);
            let whole: Vec<u8> = pieces.concat();
            prop_assert_eq!(unframe(&framed), Some(whole));
        }

        #[test]
        fn any_reply_parses_without_panicking(reply in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_reply(&reply);
        }

        #[test]
        fn signature_names_survive(name in "[A-Za-z0-9._-]{1,60}") {
            let reply = format!("stream: {name} FOUND\0");
            prop_assert_eq!(parse_reply(reply.as_bytes()), Verdict::Infected(name));
        }
    }
}
