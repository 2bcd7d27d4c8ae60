//! A small keep-alive HTTP/1.1 GET client on monoio, one connection per simulated player (as
//! real players hold one). Bodies are either kept (playlists) or counted and dropped (media),
//! so thousands of viewers fit in one process. Content-Length and chunked bodies are read.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringcast_proto::http::chunked::ChunkedDecoder;

/// An answer as the player sees it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Body bytes received (kept or not).
    pub body_len: u64,
    /// The body, when asked to keep it.
    pub body: Vec<u8>,
}

/// One keep-alive connection to `addr`, reconnecting when the server closes it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(READ_CHUNK),
            timeout,
        }
    }

    /// GET `target` (path + query). One retry on a fresh connection when a reused one turns
    /// out to be closed by the server (normal keep-alive behaviour, not an error).
    pub async fn get(&mut self, target: &str, keep_body: bool) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match monoio::time::timeout(self.timeout, self.get_once(target, keep_body)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if reused && is_closed(&e) => {
                self.stream = None;
                monoio::time::timeout(self.timeout, self.get_once(target, keep_body))
                    .await
                    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timeout")))
            }
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"))
            }
        }
    }

    async fn get_once(&mut self, target: &str, keep_body: bool) -> io::Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect_addr(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringcast-loadtest\r\n\r\n",
            self.addr
        );
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("no stream"))?;
        let (res, _) = stream.write_all(req.into_bytes()).await;
        res?;
        // Head.
        let (status, head_len, framing, close) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            self.fill().await?;
        };
        self.buf.drain(..head_len);
        let mut body = Vec::new();
        let mut body_len = 0u64;
        match framing {
            Framing::Length(len) => loop {
                // Take what the buffer holds of this body; read on until it is complete.
                let take = (self.buf.len() as u64).min(len - body_len) as usize;
                if take > 0 {
                    if keep_body {
                        body.extend_from_slice(&self.buf[..take]);
                    }
                    self.buf.drain(..take);
                    body_len += take as u64;
                }
                if body_len == len {
                    break;
                }
                self.fill().await?;
            },
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::new();
                let mut out = Vec::new();
                loop {
                    let used = dec
                        .decode(&self.buf, &mut out)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    self.buf.drain(..used);
                    body_len += out.len() as u64;
                    if keep_body {
                        body.append(&mut out);
                    } else {
                        out.clear();
                    }
                    if dec.is_done() {
                        break;
                    }
                    self.fill().await?;
                }
            }
            Framing::None => {}
        }
        if close {
            self.stream = None;
        }
        Ok(Response {
            status,
            body_len,
            body,
        })
    }

    async fn fill(&mut self) -> io::Result<()> {
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("no stream"))?;
        let mut spare = std::mem::take(&mut self.buf);
        let start = spare.len();
        spare.reserve(READ_CHUNK);
        let cap = spare.capacity();
        // A Vec's IoBufMut writes from index 0; a SliceMut writes after the bytes we keep.
        let (res, slice) = stream.read(spare.slice_mut(start..cap)).await;
        self.buf = slice.into_inner();
        let n = res?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

enum Framing {
    Length(u64),
    Chunked,
    None,
}

/// (status, head length, body framing, server closes) once the head is complete.
fn parse_head(buf: &[u8]) -> io::Result<Option<(u16, usize, Framing, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let status = resp.code.unwrap_or(0);
    let mut framing = Framing::None;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            framing = Framing::Length(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.eq_ignore_ascii_case(b"chunked")
        {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::None;
    }
    Ok(Some((status, n, framing, close)))
}
