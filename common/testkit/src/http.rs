//! A tiny blocking HTTP/1.1 client for test assertions (one request per connection unless a
//! [`Conn`] is reused). The head and its framing come from
//! `ringcast_proto::http::parse_response_head`; bodies are read by Content-Length, chunked
//! (decoded) or until the server closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::{parse_response_head, BodyFraming};

/// A response as the test sees it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
        })
    }

    /// Send raw bytes (for malformed-request tests).
    pub fn send_raw(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(raw)
    }

    /// Send a request with optional extra headers and body; read the response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.read_response(method == "HEAD")
    }

    /// Read one response (no body for HEAD, 1xx, 204 and 304).
    pub fn read_response(&mut self, head_only: bool) -> std::io::Result<Response> {
        let mut headers = Vec::new();
        let head = loop {
            headers.clear();
            let parsed = parse_response_head(&self.buf, head_only, |name, value| {
                headers.push((
                    name.to_ascii_lowercase(),
                    String::from_utf8_lossy(value).trim().to_string(),
                ));
            })
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if let Some(head) = parsed {
                break head;
            }
            self.fill()?;
        };
        self.buf.drain(..head.head_len);
        let body = match head.framing {
            BodyFraming::None => Vec::new(),
            BodyFraming::Length(len) => {
                let len = usize::try_from(len).map_err(std::io::Error::other)?;
                while self.buf.len() < len {
                    self.fill()?;
                }
                self.buf.drain(..len).collect()
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                let mut body = Vec::new();
                loop {
                    let used = decoder
                        .decode(&self.buf, &mut body)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    self.buf.drain(..used);
                    if decoder.is_done() {
                        break body;
                    }
                    self.fill()?;
                }
            }
            BodyFraming::UntilClose => {
                while self.read_more()? {}
                std::mem::take(&mut self.buf)
            }
        };
        Ok(Response {
            status: head.status,
            headers,
            body,
        })
    }

    /// One read into the buffer; an error when the server closed the connection.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.read_more()? {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ))
        }
    }

    /// One read into the buffer; `false` when the server closed the connection.
    fn read_more(&mut self) -> std::io::Result<bool> {
        let mut tmp = [0u8; 64 * 1024];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n > 0)
    }
}
/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, target: &str) -> std::io::Result<Response> {
    Conn::connect(addr)?.request("GET", target, &[], b"")
}
