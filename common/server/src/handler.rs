//! The interface between the shell and a service: the edge and the ingest each implement
//! [`Handler`]; the shell owns sockets, framing, persistence, timeouts and limits.

use std::future::Future;

use ringcast_proto::http::{HttpError, RequestHead};

use crate::conn::Conn;
use crate::{Driver, Response};

/// What a worker's handler is built with.
#[derive(Debug, Clone, Copy)]
pub struct WorkerInfo {
    /// 0-based worker index.
    pub id: usize,
    pub driver: Driver,
}

/// Requests the shell answers itself, before (or instead of) the handler.
#[derive(Debug)]
pub enum Refusal {
    /// The head broke the syntax or the limits (400/414/431/501/505).
    BadHead(HttpError),
    /// Part of a head arrived but not the rest within the header timeout (408).
    HeadTimeout,
    /// The worker is at `max_connections` (503, sent with `Retry-After: 1`).
    TooManyConnections,
}

/// A service on the shell. One instance per worker thread (built on it, so it may hold `Rc`s
/// and spawn tasks on the worker's runtime).
pub trait Handler: 'static {
    /// Answer one request. The body, if any, is read incrementally through `conn`; what the
    /// handler leaves unread is drained (up to `drain_max`) or the connection closes after
    /// the response. `None`: the handler wrote its own (streamed) response or the client is
    /// gone; the connection then closes.
    fn handle(&self, req: &RequestHead, conn: &mut Conn) -> impl Future<Output = Option<Response>>;

    /// Whether answering `req` needs HTTP/1.1: a body streamed through the handler in either
    /// direction (a proxy, an upload, an event stream), which an HTTP/2 stream here cannot
    /// carry (its body is buffered, ≤ `h2.max_request_body`, and `write_raw` is not
    /// available). On HTTP/2 such a stream is refused with `HTTP_1_1_REQUIRED` (RFC 9113
    /// §7) before the handler runs, so nothing has happened yet, and clients (browsers, curl)
    /// send the request again over HTTP/1.1. The default: no request needs it.
    fn needs_http1(&self, _req: &RequestHead) -> bool {
        false
    }

    /// The response for a request the shell refuses. The default is [`default_refusal`].
    fn refuse(&self, why: Refusal) -> Response {
        default_refusal(why)
    }

    /// Called once per worker after its drain (e.g. to flush buffered logs).
    fn on_stop(&self) {}
}

/// The project's JSON error for a refusal (codes as the edge and the ingest always sent them).
pub fn default_refusal(why: Refusal) -> Response {
    match why {
        Refusal::BadHead(e) => {
            let code = match e.status() {
                414 => "uri_too_long",
                431 => "headers_too_large",
                501 => "not_implemented",
                505 => "version_not_supported",
                _ => "bad_request",
            };
            Response::error_parts(e.status(), code, &e.to_string())
        }
        Refusal::HeadTimeout => {
            Response::error_parts(408, "request_timeout", "request head not received in time")
        }
        Refusal::TooManyConnections => Response::error_parts(
            503,
            "too_many_connections",
            "too many connections; retry later",
        ),
    }
}
