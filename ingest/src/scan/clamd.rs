//! A clamd client on the worker's own runtime (monoio): one connection per scan, the spool
//! file read in chunks and streamed as `INSTREAM` frames, the whole exchange bounded by the
//! configured timeout. Memory per scan is one chunk.

use std::io;
use std::path::Path;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt as _};
use ringcast_proto::clamd::{self as proto, Verdict};

use crate::scan::config::Endpoint;

/// Bytes read from the spool and sent per frame.
const CHUNK: usize = 256 * 1024;
/// Longest reply accepted (clamd's are one short line).
const MAX_REPLY: usize = 4096;

/// Scan the file at `path`; `Err` when there is no answer (connect failure, I/O error,
/// timeout).
pub async fn scan_file(endpoint: &Endpoint, path: &Path, timeout: Duration) -> io::Result<Verdict> {
    let scan = async {
        match endpoint {
            Endpoint::Unix(sock) => {
                let s = monoio::net::UnixStream::connect(sock).await?;
                stream(s, path).await
            }
            Endpoint::Tcp(addr) => {
                let s = monoio::net::TcpStream::connect(addr.as_str()).await?;
                stream(s, path).await
            }
        }
    };
    match monoio::time::timeout(timeout, scan).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("clamd gave no verdict within {} s", timeout.as_secs()),
        )),
    }
}

async fn stream<S: AsyncReadRent + AsyncWriteRent>(mut s: S, path: &Path) -> io::Result<Verdict> {
    let sent = send(&mut s, path).await;
    // clamd answers (and closes) early when the stream passes its StreamMaxLength: a failed
    // write is judged by the reply, if there is one.
    let reply = read_reply(&mut s).await;
    match (sent, reply) {
        (_, Ok(reply)) if !reply.is_empty() => Ok(proto::parse_reply(&reply)),
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(_)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "clamd closed the connection without a verdict",
        )),
    }
}

async fn send<S: AsyncWriteRent>(s: &mut S, path: &Path) -> io::Result<()> {
    let (res, _) = s.write_all(proto::INSTREAM.to_vec()).await;
    res?;
    let file = monoio::fs::File::open(path).await?;
    let mut pos = 0u64;
    let mut buf = Vec::with_capacity(CHUNK);
    let mut frame = Vec::with_capacity(CHUNK + 4);
    loop {
        buf.clear();
        let (res, b) = file.read_at(buf, pos).await;
        buf = b;
        let n = res?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        frame.clear();
        proto::frame_chunk(&buf[..n], &mut frame);
        let (res, f) = s.write_all(frame).await;
        frame = f;
        res?;
    }
    let _ = file.close().await;
    let (res, _) = s.write_all(proto::END_OF_STREAM.to_vec()).await;
    res?;
    Ok(())
}

/// Read until the reply's NUL, EOF or [`MAX_REPLY`] bytes.
async fn read_reply<S: AsyncReadRent>(s: &mut S) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = Vec::with_capacity(512);
    while reply.len() < MAX_REPLY && !reply.contains(&0) {
        buf.clear();
        let (res, b) = s.read(buf).await;
        buf = b;
        match res? {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    Ok(reply)
}
