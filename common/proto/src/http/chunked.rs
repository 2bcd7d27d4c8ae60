//! Incremental decoder for `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1), used by
//! live pushes (`ffmpeg -method PUT` streams chunked). Extensions are ignored, trailers skipped.

/// Decoder errors (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("invalid chunk size line")]
    BadSize,
    #[error("chunk data not followed by CRLF")]
    BadTerminator,
    #[error("chunk size line too long")]
    LineTooLong,
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
                    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                        if rest.len() > MAX_LINE {
                            return Err(ChunkedError::LineTooLong);
                        }
                        return Ok(pos);
                    };
                    let line = &rest[..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let hex = line.split(|b| *b == b';').next().unwrap_or(&[]);
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| ChunkedError::BadSize)?
                        .trim();
                    if hex.is_empty() || hex.len() > 15 {
                        return Err(ChunkedError::BadSize);
                    }
                    let size = u64::from_str_radix(hex, 16).map_err(|_| ChunkedError::BadSize)?;
                    pos += nl + 1;
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
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|b| *b != b'\r' && *b != b'\n') {
                            return Err(ChunkedError::BadTerminator);
                        }
                        if rest == b"\n" {
                            pos += 1;
                            self.state = State::Size;
                            continue;
                        }
                        return Ok(pos);
                    }
                    if rest.starts_with(b"\r\n") {
                        pos += 2;
                    } else if rest[0] == b'\n' {
                        pos += 1;
                    } else {
                        return Err(ChunkedError::BadTerminator);
                    }
                    self.state = State::Size;
                }
                State::Trailer => {
                    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                        if rest.len() > MAX_LINE {
                            return Err(ChunkedError::LineTooLong);
                        }
                        return Ok(pos);
                    };
                    let line = &rest[..nl];
                    pos += nl + 1;
                    if line.is_empty() || line == b"\r" {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
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

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = decode_all(&data, 7);
        }
    }
}
