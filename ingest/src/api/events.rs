//! `GET /v1/videos/{id}/events`: the progress of a video as server-sent events
//! (`text/event-stream`, WHATWG HTML §9.2) — upload offset while an upload for the video is in
//! progress, then the transcode's state and progress, ending (the server closes) with `ready`
//! or `failed` (or `duplicate`). The events and when the stream ends are decided by the pure
//! [`ringcast_proto::progress::Tracker`].
//!
//! How it watches: every `events.poll_interval_ms` (default 250 ms, at most 500) one side-runtime
//! round trip reads the video hash, the upload-progress hash and the latest job's hash
//! ([`Versions::progress_snapshot`]). Polling was chosen over a Redis notification: the job
//! hash is written by transcoders (every progress tick) and the upload hash by whichever ingest
//! holds the spool, neither publishes anything, and keyspace notifications are off by default
//! and fleet-wide noise when on. Three HGETALLs per stream per tick cost 12 Redis commands a
//! second per open stream (measured: 200 streams on one debug-build worker, 4.9 % of a core and
//! 1 564 commands/s before the video had a job); the per-worker cap bounds the total
//! (`events.max_streams_per_worker`, default 256: at most ~3 000 commands/s per core).
//!
//! Keeping the stream healthy: `retry:` first, an `id:` on every event, a `: keepalive`
//! comment after `events.heartbeat_secs` (15) of silence for proxies, and the stream is closed
//! after `events.max_lifetime_secs` (1 h; the client reconnects and gets the current state
//! again). A client that goes away must free its slot promptly, but nothing is read from it
//! after the request, so every second of silence an empty comment (`:` + newline, 3 bytes) is
//! written: the first write after the peer closed draws a reset, the next one fails, and the
//! stream ends within about two seconds of the client leaving.

use std::cell::Cell;
use std::time::{Duration, Instant};

use ringcast_infra::platform::versions::Versions;
use ringcast_proto::http::{Method, RequestHead};
use ringcast_proto::keys;
use ringcast_proto::progress::{comment, retry_hint, Snapshot, Tracker};

use crate::api::videos::{self, ended_job_status};
use crate::app::App;
use crate::auth::authenticate;
use crate::error::IngestError;
use crate::redis_call::with_timeout;
use ringcast_server::{Conn, Response};

/// Silence after which the liveness comment is written (see the module docs).
const PROBE_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    /// Open streams on this worker (each worker is one thread).
    static OPEN: Cell<usize> = const { Cell::new(0) };
}

/// One open stream's place under the per-worker cap; freed on drop, whatever ended the stream.
struct Slot;

impl Slot {
    fn acquire(max: usize) -> Option<Slot> {
        OPEN.with(|open| {
            if open.get() >= max {
                None
            } else {
                open.set(open.get() + 1);
                Some(Slot)
            }
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.with(|open| open.set(open.get().saturating_sub(1)));
    }
}

/// Open streams on the calling worker (for tests and metrics).
pub fn open_streams() -> usize {
    OPEN.with(Cell::get)
}

/// Serve the stream. `Ok(None)`: the response was written here (streamed).
pub async fn handle(
    app: &App,
    head: &RequestHead,
    method: &Method,
    id: &str,
    conn: &mut Conn,
) -> Result<Option<Response>, IngestError> {
    let caller = authenticate(app, head).await?;
    if *method != Method::Get {
        return Err(IngestError::MethodNotAllowed {
            method: method.as_str().to_string(),
            allow: "GET, OPTIONS",
        });
    }
    if !keys::is_valid_id(id) {
        return Err(IngestError::InvalidId(id.to_string()));
    }
    let versions = Versions::new(&app.queue);
    let video = with_timeout(app.queue.video(id)).await?;
    if videos::is_video(&video) {
        videos::check(&caller, id, &video, videos::Access::Read)?;
    } else {
        // A video whose first upload is still arriving has no hash yet: its upload says whose
        // it is.
        let Some(owner) = with_timeout(versions.upload_owner(id)).await? else {
            return Err(IngestError::NotFound(format!("video {id}")));
        };
        if !caller.may_read(Some(&owner)) {
            return Err(IngestError::Forbidden(format!(
                "video {id} belongs to another owner"
            )));
        }
    }
    let cfg = &app.config.events;
    let Some(_slot) = Slot::acquire(cfg.max_streams_per_worker) else {
        return Err(IngestError::Busy(format!(
            "too many progress streams open on this worker (events.max_streams_per_worker = {}); retry later",
            cfg.max_streams_per_worker
        )));
    };
    let head_bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         X-Accel-Buffering: no\r\nConnection: close\r\n\r\n{}",
        retry_hint(cfg.retry_ms)
    );
    conn.write_raw(head_bytes.into_bytes())
        .await
        .map_err(IngestError::ClientGone)?;
    let started = Instant::now();
    let mut last_write = Instant::now();
    let mut tracker = Tracker::new(id);
    let end = loop {
        if conn.draining() {
            break "server shutting down";
        }
        if started.elapsed() >= cfg.max_lifetime() {
            break "lifetime reached";
        }
        let mut out = String::new();
        match with_timeout(versions.progress_snapshot(id)).await {
            Ok((video, upload, job)) => {
                let job = job.or_else(|| ended_job_status(id, &video));
                for e in tracker.update(&Snapshot { upload, job }) {
                    out.push_str(&e.render());
                }
            }
            // A Redis blip: the stream stays, the next poll catches up.
            Err(e) => tracing::debug!(video = id, error = %e, "progress poll failed"),
        }
        if out.is_empty() {
            if last_write.elapsed() >= cfg.heartbeat() {
                out = comment("keepalive");
            } else if last_write.elapsed() >= PROBE_EVERY {
                out = ":\n".to_string();
            }
        }
        if !out.is_empty() {
            if let Err(e) = conn.write_raw(out.into_bytes()).await {
                tracing::debug!(video = id, error = %e, "progress stream client gone");
                break "client gone";
            }
            last_write = Instant::now();
        }
        if tracker.ended() {
            break "video ready or failed";
        }
        monoio::time::sleep(cfg.poll_interval()).await;
    };
    tracing::debug!(
        video = id,
        why = end,
        secs = started.elapsed().as_secs(),
        "progress stream closed"
    );
    Ok(None)
}
