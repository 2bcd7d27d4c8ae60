//! The edge as a handler on the `ringcast-server` shell: the shell owns the connection (keep-
//! alive, pipelining, timeouts, limits, lingering close, sendfile); this reads the one body
//! the edge takes (the purge API's small JSON), hands the request to [`routes`], and writes
//! the access log.
//!
//! The interface with the routes is two functions: [`routes::wants_body`] and
//! [`routes::handle_with_body`].

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_proto::http::{Method, RequestHead};
use ringcast_server::{BodyError, Conn, Handler, Refusal, Response};

use crate::access_log::{self, Record, WorkerLog};
use crate::error::EdgeError;
use crate::readiness::ReadinessChecks;
use crate::routes;
use crate::routes::purge;
use crate::shared::Shared;

/// One worker's edge handler.
pub struct Edge {
    pub shared: Arc<Shared>,
    /// This worker's access log, when on.
    pub log: Option<Rc<WorkerLog>>,
    /// Worker index (for the access log).
    pub worker: usize,
    /// A purge body must arrive within this (as a head must).
    pub header_timeout: Duration,
    /// This worker's idle connections to the ingest nodes (with a front door).
    pub upstreams: Option<crate::front_door::Upstreams>,
    /// What `/readyz` checks.
    pub readiness: ReadinessChecks,
}

impl Handler for Edge {
    /// Front-door requests are proxied with their bodies streamed both ways.
    fn needs_http1(&self, req: &RequestHead) -> bool {
        self.shared.front_door.is_some()
            && self.upstreams.is_some()
            && crate::front_door::handles(req)
    }

    async fn handle(&self, req: &RequestHead, conn: &mut Conn) -> Option<Response> {
        // The clock is read only for the access log (one `clock_gettime` per request less
        // when it is off).
        let started = self.log.as_ref().map(|_| Instant::now());
        if let (Some(fd), Some(up)) = (&self.shared.front_door, &self.upstreams) {
            if crate::front_door::handles(req) {
                let resp = fd.handle(up, req, conn).await;
                self.log(req, resp.as_ref(), started);
                return resp;
            }
        }
        if req.path() == "/readyz" && matches!(req.method, Method::Get | Method::Head) {
            let mut resp = self
                .readiness
                .respond(&self.shared, conn.readiness_draining())
                .await;
            resp.head_only = req.method == Method::Head;
            self.log(req, Some(&resp), started);
            return Some(resp);
        }
        if req.path() == "/metrics" {
            let auth = req.header("authorization");
            if let Err(denied) = self.shared.access.metrics.check(auth, conn.peer_ip()) {
                return Some(Response::error(&EdgeError::Metrics(denied)));
            }
        }
        // The purge API reads a small Content-Length body; every other body is left unread
        // (the shell then closes the connection after the response, lingering).
        let mut body = Vec::new();
        if routes::wants_body(req) && !req.chunked {
            match conn.read_to_end(purge::MAX_BODY, self.header_timeout).await {
                Ok(b) => body = b,
                Err(BodyError::TooLarge(_)) => {
                    return Some(self.refused(EdgeError::PayloadTooLarge))
                }
                Err(BodyError::TimedOut) => return Some(self.refused(EdgeError::HeaderTimeout)),
                Err(BodyError::Io(_)) => return None,
            }
        }
        let zero_copy_files = conn.sends_files_zero_copy();
        let resp = routes::handle_with_body(req, &body, &self.shared, zero_copy_files).await;
        self.log(req, Some(&resp), started);
        Some(resp)
    }

    fn refuse(&self, why: Refusal) -> Response {
        Response::error(&match why {
            Refusal::BadHead(e) => EdgeError::Http(e),
            Refusal::HeadTimeout => EdgeError::HeaderTimeout,
            Refusal::TooManyConnections => EdgeError::TooManyConnections,
        })
    }

    fn on_stop(&self) {
        if let Some(log) = &self.log {
            log.flush(&self.shared.metrics);
        }
    }
}

impl Edge {
    /// The access-log line of a request (sampled); `None`: the client went away.
    fn log(&self, req: &RequestHead, resp: Option<&Response>, started: Option<Instant>) {
        let Some(started) = started else {
            return;
        };
        if let Some(log) = self.log.as_ref().filter(|l| l.sample()) {
            let rec = Record {
                ts_ms: access_log::unix_ms(),
                method: req.method.as_str(),
                target: &req.target,
                status: resp.map_or(0, |r| r.status),
                bytes: resp.map_or(0, |r| r.wire_body().len()),
                dur_us: access_log::micros_since(started),
                worker: self.worker,
            };
            log.record(&rec, &self.shared.metrics);
        }
    }

    /// An error answer that ends the connection (its body was not read).
    fn refused(&self, err: EdgeError) -> Response {
        let mut resp = Response::error(&err);
        resp.close = true;
        resp
    }
}

/// Hand the worker's buffered access-log lines to the logger thread at least once a second,
/// so a quiet worker's last requests still show up.
pub async fn flush_log_every_second(shared: Arc<Shared>, log: Rc<WorkerLog>) {
    loop {
        monoio::time::sleep(Duration::from_secs(1)).await;
        log.flush(&shared.metrics);
    }
}
