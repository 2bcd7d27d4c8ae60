//! A small keep-alive HTTP/1.1 GET client on monoio, one connection per simulated player (as
//! real players hold one). Bodies are either kept (playlists) or counted and dropped (media),
//! so thousands of viewers fit in one process. The head and its framing (Content-Length, chunked,
//! close-delimited) come from `ringcast_proto::http::parse_response_head`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::{parse_response_head, BodyFraming};

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
        let head = loop {
            let parsed = parse_response_head(&self.buf, false, |_, _| {})
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let Some(head) = parsed {
                break head;
            }
            self.fill().await?;
        };
        self.buf.drain(..head.head_len);
        let mut body = Vec::new();
        let mut body_len = 0u64;
        match head.framing {
            BodyFraming::Length(len) => loop {
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
            BodyFraming::Chunked => {
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
            BodyFraming::UntilClose => loop {
                body_len += self.buf.len() as u64;
                if keep_body {
                    body.extend_from_slice(&self.buf);
                }
                self.buf.clear();
                if !self.read_more().await? {
                    break;
                }
            },
            BodyFraming::None => {}
        }
        if !head.keep_alive {
            self.stream = None;
        }
        Ok(Response {
            status: head.status,
            body_len,
            body,
        })
    }

    /// One read into the buffer; an error when the server closed the connection.
    async fn fill(&mut self) -> io::Result<()> {
        if self.read_more().await? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ))
        }
    }

    /// One read into the buffer; `false` when the server closed the connection.
    async fn read_more(&mut self) -> io::Result<bool> {
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
        Ok(res? > 0)
    }
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}
