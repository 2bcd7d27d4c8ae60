//! Incremental decoder for `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1), used by
//! live pushes (`ffmpeg -method PUT` streams chunked). Extensions are ignored, trailers skipped.
//!
//! Strict on purpose: a chunk size is hex digits only (no sign, no leading or inner whitespace),
//! and every line ends in CRLF. Lenient decoders that accept `+5`, ` 5` or a bare LF disagree
//! with stricter proxies in front of them about where a body ends — the basis of request
//! smuggling — so anything RFC 9112 does not allow is a 400.

/// Decoder errors (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("invalid chunk size line")]
    BadSize,
    #[error("chunk data not followed by CRLF")]
    BadTerminator,
    #[error("chunk size line too long")]
    LineTooLong,
    #[error("line not terminated by CRLF")]
    BareLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Feed input with [`ChunkedDecoder::decode`]; it returns the payload bytes found and how much of
/// the input it used.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

const MAX_LINE: usize = 1024;

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the terminating zero-size chunk and trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from `input`, appending payload to `out`. Returns bytes consumed; the caller keeps
    /// the unconsumed rest and calls again with more data.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => return Ok(pos),
                State::Size => {
                    let Some(line) = crlf_line(rest)? else {
                        if rest.len() > MAX_LINE {
                            return Err(ChunkedError::LineTooLong);
                        }
                        return Ok(pos);
                    };
                    let size = chunk_size(line)?;
                    pos += line.len() + 2;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let n = (left as usize).min(rest.len());
                    out.extend_from_slice(&rest[..n]);
                    pos += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    match rest {
                        [] | [b'\r'] => return Ok(pos),
                        [b'\r', b'\n', ..] => pos += 2,
                        _ => return Err(ChunkedError::BadTerminator),
                    }
                    self.state = State::Size;
                }
                State::Trailer => {
                    let Some(line) = crlf_line(rest)? else {
                        if rest.len() > MAX_LINE {
                            return Err(ChunkedError::LineTooLong);
                        }
                        return Ok(pos);
                    };
                    pos += line.len() + 2;
                    if line.is_empty() {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

/// The line at the start of `rest` without its CRLF, `None` while no LF has arrived; an LF
/// without CR before it is an error.
fn crlf_line(rest: &[u8]) -> Result<Option<&[u8]>, ChunkedError> {
    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
        return Ok(None);
    };
    match rest[..nl].strip_suffix(b"\r") {
        Some(line) if !line.contains(&b'\r') => Ok(Some(line)),
        _ => Err(ChunkedError::BareLf),
    }
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): 1*HEXDIG, then nothing or `*(BWS ";" …)`.
fn chunk_size(line: &[u8]) -> Result<u64, ChunkedError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(ChunkedError::BadSize);
    }
    let ext = &line[digits..];
    let ext_start = ext.iter().position(|b| *b != b' ' && *b != b'\t');
    if let Some(i) = ext_start {
        if ext[i] != b';' {
            return Err(ChunkedError::BadSize);
        }
    } else if !ext.is_empty() {
        // Whitespace after the size with no extension following it.
        return Err(ChunkedError::BadSize);
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| ChunkedError::BadSize)?;
    u64::from_str_radix(hex, 16).map_err(|_| ChunkedError::BadSize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            let used = d.decode(&buf, &mut out)?;
            buf.drain(..used);
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn decodes_in_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: y\r\n\r\n";
        for step in 1..body.len() {
            let (out, done) = decode_all(body, step).expect("decode");
            assert_eq!(out, b"hello world", "step {step}");
            assert!(done);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode_all(b"zz\r\n", 64), Err(ChunkedError::BadSize));
        assert_eq!(
            decode_all(b"2\r\nabX", 64),
            Err(ChunkedError::BadTerminator)
        );
        assert_eq!(
            decode_all(&[b'1'; 2000], 64),
            Err(ChunkedError::LineTooLong)
        );
    }

    #[test]
    fn refuses_what_lenient_decoders_accept() {
        // Signs, whitespace around the size, bare LF anywhere, CR inside a line.
        for bad in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\r\nX: y\n\r\n",
            b"5\r\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXY0\r\n\r\n",
        ] {
            for step in [1, 3, 64] {
                assert!(
                    decode_all(bad, step).is_err(),
                    "{:?} step {step}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
        // Extensions with optional whitespace before the `;` stay allowed.
        let (out, done) = decode_all(b"5 ;a=b\r\nhello\r\n0;x\r\n\r\n", 1).expect("ext");
        assert_eq!((out.as_slice(), done), (&b"hello"[..], true));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = decode_all(&data, 7);
        }
    }
}
