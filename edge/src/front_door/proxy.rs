//! Moving one request through the front door: pick a node, connect, send the re-framed head,
//! stream the body up, stream the answer back. Nothing is buffered whole: request bodies go up
//! in pieces of at most [`BODY_PIECE`] as they arrive (`Content-Length` or chunked, re-chunked),
//! response bodies come back the same way (a live push is an endless chunked PUT, the progress
//! stream an endless chunked answer).
//!
//! - `Expect: 100-continue` passes to the node; the client gets its `100 Continue` (from the
//!   shell, on the first body read) only after the node sent one, and a node's early final
//!   answer (401, 413…) is relayed without reading the body at all. Without `Expect`, every
//!   wait for the client's next body bytes also watches the node: an answer before the body is
//!   complete (a busy stream key's 409 to a publisher that waits for it) is relayed at once.
//! - A refused or timed-out connection marks the node down at once and, unless the request is
//!   bound to that node (a tagged upload: 503), tries the next one: nothing of the request was
//!   read or sent yet, so any request is safe to retry there. When every healthy node was tried,
//!   the ones marked down are tried too (a mark can be older than a node's recovery); all
//!   failing: 502 (refused) or 504 (timed out).
//! - After the connection: a failure before the response head is 502 (504 when the node took
//!   longer than `response_timeout_ms`); a failure inside the response body cuts the client's
//!   connection (a short body must never pass as complete).
//! - Keep-alive towards the nodes ([`Upstreams`]): only requests without a body reuse idle
//!   connections (a stale one is detected before anything was answered and the request is
//!   sent again on a fresh connection, which is safe only without a body); requests with a body
//!   get a fresh connection and `Connection: close`.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringcast_proto::front_door::headers::{
    chunk_header, request_head, response_head, RequestFraming, ResponseFraming, LAST_CHUNK,
};
use ringcast_proto::front_door::route::Target;
use ringcast_proto::http::chunked::ChunkedDecoder;
use ringcast_proto::http::persistence::expects_continue;
use ringcast_proto::http::{parse_response_head, BodyFraming, Method, ParsedResponse, RequestHead};
use ringcast_server::{Conn, Response};

use super::error::FrontDoorError;
use super::FrontDoor;
use crate::nodes::pool::{InFlight, Node};

/// Largest piece of a body read before it is passed on.
pub const BODY_PIECE: usize = 256 * 1024;
/// Longest upstream response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One worker's idle keep-alive connections, per node.
pub struct Upstreams {
    idle: RefCell<Vec<Vec<TcpStream>>>,
    max_per_node: usize,
}

impl Upstreams {
    pub fn new(nodes: usize, max_per_node: usize) -> Self {
        Self {
            idle: RefCell::new((0..nodes).map(|_| Vec::new()).collect()),
            max_per_node,
        }
    }

    fn take(&self, node: usize) -> Option<TcpStream> {
        self.idle.borrow_mut().get_mut(node)?.pop()
    }

    fn give_back(&self, node: usize, stream: TcpStream) {
        if let Some(list) = self.idle.borrow_mut().get_mut(node) {
            if list.len() < self.max_per_node {
                list.push(stream);
            }
        }
    }
}

/// What one attempt on one node came to.
enum Attempt {
    /// Answered (a relayed response, a front-door error, or `None`: the client connection
    /// must close, e.g. the client vanished or the node's body broke off).
    Done(Option<Response>),
    /// A reused idle connection turned out closed before anything was answered: send the
    /// (bodiless) request again on a fresh one.
    Stale,
}

/// Forward `req` to the pool.
pub async fn forward(
    fd: &FrontDoor,
    upstreams: &Upstreams,
    req: &RequestHead,
    conn: &mut Conn,
) -> Option<Response> {
    let is_tag = |t: &str| fd.pool.has_tag(t);
    let creation = matches!(req.path(), "/files" | "/files/") && req.method == Method::Post;
    let target = creation
        .then(|| {
            ringcast_proto::front_door::route::creation_target(
                req.header("upload-concat"),
                req.header("authorization"),
                is_tag,
            )
        })
        .flatten()
        .unwrap_or_else(|| ringcast_proto::front_door::route::target(req.path(), is_tag));
    let framing = if req.chunked {
        RequestFraming::Chunked
    } else if req.header("content-length").is_some() {
        RequestFraming::Length(req.body_len())
    } else {
        RequestFraming::NoBody
    };
    let bodiless = matches!(framing, RequestFraming::NoBody | RequestFraming::Length(0));
    let reuse = bodiless && upstreams.max_per_node > 0;
    let mut tried = vec![false; fd.pool.nodes.len()];
    let mut last_failure: Option<FrontDoorError> = None;
    loop {
        // A request any node could take tries the nodes marked down too when no other is
        // left (right after start-up, or when every mark is stale); an upload's node only
        // while it is up.
        let chosen = fd
            .pool
            .choose(target, &tried, false)
            .or_else(|| match target {
                Target::Node(_) => None,
                _ => fd.pool.choose(target, &tried, true),
            });
        let Some(i) = chosen else {
            if let Target::Node(tag) = target {
                if let Some(n) = fd.pool.nodes.iter().find(|n| n.tag == tag) {
                    n.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            return Some(Response::error(&match (target, last_failure) {
                (Target::Node(tag), _) => FrontDoorError::NodeDown {
                    tag: tag.to_string(),
                    retry_after_secs: fd.retry_after_secs(),
                },
                (_, Some(failure)) => failure,
                (_, None) => FrontDoorError::NoNode {
                    retry_after_secs: fd.retry_after_secs(),
                },
            }));
        };
        tried[i] = true;
        let node = &fd.pool.nodes[i];
        let mut pooled = if reuse { upstreams.take(i) } else { None };
        loop {
            let reused = pooled.is_some();
            let stream = match pooled.take() {
                Some(s) => s,
                None => match connect(node, fd.connect_timeout).await {
                    Ok(s) => {
                        // As good as a passed health check: a node marked down by a check that
                        // ran before it listened (start-up) takes its uploads again at once.
                        node.set_healthy(true, "connected");
                        s
                    }
                    Err(e) => {
                        node.connect_failures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        node.set_healthy(false, &e.to_string());
                        last_failure = Some(e);
                        break;
                    }
                },
            };
            let _in_flight = InFlight::new(node);
            let up = Upstream {
                stream,
                buf: Vec::with_capacity(16 * 1024),
            };
            let ex = Exchange {
                fd,
                node,
                req,
                framing,
                keep_alive: reuse,
            };
            match ex
                .run(up, conn, reused, |s| upstreams.give_back(i, s))
                .await
            {
                Attempt::Done(resp) => {
                    if resp.as_ref().is_some_and(|r| !r.sent && r.status >= 500) {
                        node.errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    return resp;
                }
                Attempt::Stale => continue,
            }
        }
    }
}

async fn connect(node: &Node, timeout: Duration) -> Result<TcpStream, FrontDoorError> {
    match monoio::time::timeout(timeout, TcpStream::connect_addr(node.addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(FrontDoorError::BadGateway {
            tag: node.tag.clone(),
            detail: format!("connect: {e}"),
        }),
        Err(_) => Err(FrontDoorError::Timeout {
            tag: node.tag.clone(),
            what: "connect",
        }),
    }
}

/// A connection to a node and the bytes read from it but not used yet.
struct Upstream {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Upstream {
    /// Append one read to `buf` within `idle`; returns the bytes read (0 = closed).
    async fn read_more(&mut self, idle: Duration) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 8 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        let owned = std::mem::take(&mut self.buf);
        let (len, cap) = (owned.len(), owned.capacity());
        let read = self
            .stream
            .read(monoio::buf::IoBufMut::slice_mut(owned, len..cap));
        match monoio::time::timeout(idle, read).await {
            Ok((res, slice)) => {
                self.buf = slice.into_inner();
                res
            }
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    async fn write(&mut self, data: Vec<u8>, idle: Duration) -> io::Result<Vec<u8>> {
        match monoio::time::timeout(idle, self.stream.write_all(data)).await {
            Ok((Ok(_), data)) => Ok(data),
            Ok((Err(e), _)) => Err(e),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// The next final response head (1xx interim answers are skipped, except a `100` when
    /// `stop_at_continue`), with its header fields as sent.
    async fn response_head(
        &mut self,
        head_request: bool,
        stop_at_continue: bool,
        within: Duration,
    ) -> Result<(ParsedResponse, Vec<(String, Vec<u8>)>), HeadError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let mut headers = Vec::new();
            let parsed = parse_response_head(&self.buf, head_request, |n, v| {
                headers.push((n.to_string(), v.to_vec()))
            })
            .map_err(|e| HeadError::Bad(e.to_string()))?;
            match parsed {
                Some(p) if (100..200).contains(&p.status) => {
                    if p.status == 101 {
                        return Err(HeadError::Bad("protocol switch not supported".into()));
                    }
                    self.buf.drain(..p.head_len);
                    if p.status == 100 && stop_at_continue {
                        return Ok((p, headers));
                    }
                }
                Some(p) => return Ok((p, headers)),
                None => {
                    if self.buf.len() > MAX_HEAD {
                        return Err(HeadError::Bad("response head too large".into()));
                    }
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match self.read_more(left).await {
                        Ok(0) if self.buf.is_empty() => return Err(HeadError::ClosedEarly),
                        Ok(0) => return Err(HeadError::Bad("closed inside the head".into())),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            return Err(HeadError::TimedOut)
                        }
                        Err(_) if self.buf.is_empty() => return Err(HeadError::ClosedEarly),
                        Err(e) => return Err(HeadError::Bad(e.to_string())),
                    }
                }
            }
        }
    }
}

enum HeadError {
    /// Closed (or reset) before a single byte: a stale keep-alive connection, or a node that
    /// dropped the request.
    ClosedEarly,
    TimedOut,
    Bad(String),
}

/// One request on one connection.
struct Exchange<'a> {
    fd: &'a FrontDoor,
    node: &'a Node,
    req: &'a RequestHead,
    framing: RequestFraming,
    /// Ask the node to keep the connection (bodiless requests, pooling on).
    keep_alive: bool,
}

impl Exchange<'_> {
    fn bad(&self, detail: impl Into<String>) -> Attempt {
        Attempt::Done(Some(Response::error(&FrontDoorError::BadGateway {
            tag: self.node.tag.clone(),
            detail: detail.into(),
        })))
    }

    fn timed_out(&self, what: &'static str) -> Attempt {
        Attempt::Done(Some(Response::error(&FrontDoorError::Timeout {
            tag: self.node.tag.clone(),
            what,
        })))
    }

    fn head_failed(&self, e: HeadError, reused: bool) -> Attempt {
        match e {
            HeadError::ClosedEarly if reused => Attempt::Stale,
            HeadError::ClosedEarly => self.bad("closed without answering"),
            HeadError::TimedOut => self.timed_out("response"),
            HeadError::Bad(d) => self.bad(d),
        }
    }

    async fn run(
        &self,
        mut up: Upstream,
        conn: &mut Conn,
        reused: bool,
        give_back: impl FnOnce(TcpStream),
    ) -> Attempt {
        let fd = self.fd;
        let req = self.req;
        let head = request_head(
            req.method.as_str(),
            &req.target,
            &req.headers,
            self.framing,
            conn.peer_ip(),
            self.keep_alive,
        );
        if let Err(e) = up.write(head, fd.idle_timeout).await {
            return if reused {
                Attempt::Stale
            } else {
                self.bad(format!("send: {e}"))
            };
        }
        let head_request = req.method == Method::Head;
        let has_body = !matches!(
            self.framing,
            RequestFraming::NoBody | RequestFraming::Length(0)
        );
        if has_body && expects_continue(req) {
            match up
                .response_head(head_request, true, fd.response_timeout)
                .await
            {
                Ok((p, _)) if p.status == 100 => {}
                // A final answer before the body: relay it; the body is never read.
                Ok((p, headers)) => {
                    return Attempt::Done(relay(conn, up, p, headers, req, fd).await.0)
                }
                Err(e) => return self.head_failed(e, false),
            }
        }
        if has_body {
            match send_body(conn, &mut up, self.framing, fd.idle_timeout).await {
                BodySent::Done => {}
                BodySent::ClientGone => return Attempt::Done(None),
                BodySent::NodeAnswered => {
                    return match up
                        .response_head(head_request, false, fd.response_timeout)
                        .await
                    {
                        Ok((p, headers)) => {
                            Attempt::Done(relay(conn, up, p, headers, req, fd).await.0)
                        }
                        Err(e) => self.head_failed(e, false),
                    };
                }
                BodySent::NodeFailed(e) => {
                    // The node may have answered early (and closed): relay that answer.
                    return match up
                        .response_head(head_request, false, Duration::from_secs(1))
                        .await
                    {
                        Ok((p, headers)) => {
                            Attempt::Done(relay(conn, up, p, headers, req, fd).await.0)
                        }
                        Err(_) => self.bad(format!("send body: {e}")),
                    };
                }
            }
        }
        match up
            .response_head(head_request, false, fd.response_timeout)
            .await
        {
            Ok((p, headers)) => {
                let (resp, reusable) = relay(conn, up, p, headers, req, fd).await;
                if let Some(stream) = reusable.filter(|_| self.keep_alive) {
                    give_back(stream);
                }
                Attempt::Done(resp)
            }
            Err(e) => self.head_failed(e, reused && !has_body),
        }
    }
}

enum BodySent {
    Done,
    ClientGone,
    NodeFailed(io::Error),
    /// The node sent something (an early answer, or its end) before the body was complete.
    NodeAnswered,
}

/// Stream the client's body to the node, re-framed.
async fn send_body(
    conn: &mut Conn,
    up: &mut Upstream,
    framing: RequestFraming,
    idle: Duration,
) -> BodySent {
    match framing {
        RequestFraming::Length(_) => {
            let mut piece = Vec::with_capacity(BODY_PIECE);
            loop {
                // The node may answer before it wants the body (401, 409, 413): then the rest
                // of the client's body does not matter (the client connection closes after the
                // answer), and a client that waits for the answer before sending must get it.
                let read = monoio::select! {
                    r = conn.read_body(piece, BODY_PIECE) => r,
                    _ = up.stream.readable(false) => return BodySent::NodeAnswered,
                };
                let (res, buf) = read;
                piece = buf;
                match res {
                    Ok(0) => return BodySent::Done,
                    Ok(_) => match up.write(piece, idle).await {
                        Ok(buf) => piece = buf,
                        Err(e) => return BodySent::NodeFailed(e),
                    },
                    Err(_) => return BodySent::ClientGone,
                }
            }
        }
        RequestFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut data = Vec::with_capacity(BODY_PIECE);
            loop {
                let read = monoio::select! {
                    r = conn.read_chunked(&mut decoder, &mut data) => r,
                    _ = up.stream.readable(false) => return BodySent::NodeAnswered,
                };
                match read {
                    Ok(true) => {
                        let mut frame = chunk_header(data.len());
                        frame.extend_from_slice(&data);
                        frame.extend_from_slice(b"\r\n");
                        if let Err(e) = up.write(frame, idle).await {
                            return BodySent::NodeFailed(e);
                        }
                    }
                    Ok(false) => {
                        return match up.write(LAST_CHUNK.to_vec(), idle).await {
                            Ok(_) => BodySent::Done,
                            Err(e) => BodySent::NodeFailed(e),
                        }
                    }
                    Err(_) => return BodySent::ClientGone,
                }
            }
        }
        RequestFraming::NoBody => BodySent::Done,
    }
}

/// Relay the node's response to the client. Returns the response for the shell (`sent`, or
/// `None` when the client connection must close at once) and the node's connection when it
/// can carry another request.
async fn relay(
    conn: &mut Conn,
    mut up: Upstream,
    parsed: ParsedResponse,
    headers: Vec<(String, Vec<u8>)>,
    req: &RequestHead,
    fd: &FrontDoor,
) -> (Option<Response>, Option<TcpStream>) {
    let idle = fd.idle_timeout;
    let http11 = req.version_minor >= 1;
    let body_read = conn.body_remaining() == Some(0);
    let framing = match parsed.framing {
        BodyFraming::None => ResponseFraming::NoBody,
        BodyFraming::Length(n) => ResponseFraming::Length(n),
        BodyFraming::Chunked | BodyFraming::UntilClose if http11 => ResponseFraming::Chunked,
        BodyFraming::Chunked | BodyFraming::UntilClose => ResponseFraming::UntilClose,
    };
    let close = !req.keep_alive
        || !http11
        || !body_read
        || conn.draining()
        || framing == ResponseFraming::UntilClose;
    let mut out = response_head(parsed.status, &headers, framing, close);
    up.buf.drain(..parsed.head_len.min(up.buf.len()));
    let chunked_out = framing == ResponseFraming::Chunked;
    let frame = |out: &mut Vec<u8>, data: &[u8]| {
        if data.is_empty() {
            return;
        }
        if chunked_out {
            out.extend_from_slice(&chunk_header(data.len()));
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(data);
        }
    };
    let complete = match parsed.framing {
        BodyFraming::None => conn.write_raw(out).await.is_ok(),
        BodyFraming::Length(n) => {
            let mut left = n;
            let first = (left as usize).min(up.buf.len());
            out.extend_from_slice(&up.buf[..first]);
            up.buf.drain(..first);
            left -= first as u64;
            if conn.write_raw(out).await.is_err() {
                return (None, None);
            }
            while left > 0 {
                match up.read_more(idle).await {
                    Ok(n) if n > 0 => {
                        let take = (left as usize).min(up.buf.len());
                        let piece: Vec<u8> = up.buf.drain(..take).collect();
                        left -= take as u64;
                        if conn.write_raw(piece).await.is_err() {
                            return (None, None);
                        }
                    }
                    _ => return (None, None),
                }
            }
            true
        }
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut data = Vec::new();
            loop {
                data.clear();
                let Ok(used) = decoder.decode(&up.buf, &mut data) else {
                    return (None, None);
                };
                up.buf.drain(..used);
                frame(&mut out, &data);
                if decoder.is_done() {
                    if chunked_out {
                        out.extend_from_slice(LAST_CHUNK);
                    }
                    break conn.write_raw(out).await.is_ok();
                }
                if !out.is_empty() && conn.write_raw(std::mem::take(&mut out)).await.is_err() {
                    return (None, None);
                }
                match up.read_more(idle).await {
                    Ok(n) if n > 0 => {}
                    _ => return (None, None),
                }
            }
        }
        BodyFraming::UntilClose => loop {
            let data = std::mem::take(&mut up.buf);
            frame(&mut out, &data);
            if !out.is_empty() && conn.write_raw(std::mem::take(&mut out)).await.is_err() {
                return (None, None);
            }
            match up.read_more(idle).await {
                Ok(0) => {
                    if chunked_out && conn.write_raw(LAST_CHUNK.to_vec()).await.is_err() {
                        return (None, None);
                    }
                    break false;
                }
                Ok(_) => {}
                Err(_) => return (None, None),
            }
        },
    };
    let mut resp = Response::sent(parsed.status);
    resp.close = close;
    let reusable = (complete && parsed.keep_alive && up.buf.is_empty()).then_some(up.stream);
    (Some(resp), reusable)
}
