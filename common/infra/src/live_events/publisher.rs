//! The transcoder's side of live events: XADD to `rc:events:{video}:{version}:{rendition}`
//! (MAXLEN-trimmed, approximately, so trimming stays O(1)). One multiplexed connection per job,
//! shared by its renditions.
//!
//! Streams expire ([`StreamTtl`]): every XADD pushes the stream's expiry to `idle_secs` ahead (a
//! job that dies leaves nothing behind for long), and `end` shortens it to `ended_secs`
//! (followers still read up to `end`; afterwards edges answer from the store's final playlists).
//! `end` also records `ended_ms` in `rc:live:{video}:{version}`, which outlives the stream and
//! tells a redelivered live job that the stream already ran. The XADD, its EXPIRE and `ended_ms`
//! go in one MULTI, so no stream is ever left without an expiry.
//!
//! Redis may drop away under a running live stream (a restart, a failover): the connection is a
//! [`ConnectionManager`] that reconnects by itself, and [`EventPublisher::announce`] retries a
//! failed announcement with backoff for up to [`ANNOUNCE_RETRY_FOR`] before giving up, so the
//! stream carries on (its objects are in the store already) instead of ending. A retry after a
//! reply that was lost can deliver an event twice; followers treat a repeat as a duplicate
//! (`ringcast_proto::live::state`).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamMaxlen;
use redis::AsyncCommands;
use ringcast_proto::keys;
use ringcast_proto::live::{events_stream_key, LiveEvent, EVENT_FIELD};

use super::error::LiveEventsError;
use super::fields::{ENDED_FIELD, PLAYLIST_TYPE_EVENT, PLAYLIST_TYPE_FIELD, PUBLISHES_FIELD};
use super::ttl::StreamTtl;

/// How long [`EventPublisher::announce`] keeps retrying while Redis is unreachable.
pub const ANNOUNCE_RETRY_FOR: Duration = Duration::from_secs(30);
/// First and longest pause between two announcement attempts.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Longest wait for a connection or an answer (then the attempt counts as failed).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where one job's live events go. Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    conn: ConnectionManager,
    maxlen: usize,
    ttl: StreamTtl,
    /// W3C `traceparent` of the job span: written beside each rendition's `start` event
    /// (field `traceparent`), so readers of the stream can join the upload's trace.
    traceparent: Option<String>,
}

impl EventPublisher {
    /// Connects to `url`; `maxlen` is the approximate MAXLEN of every stream (at least 1).
    pub async fn connect(
        url: &str,
        maxlen: usize,
        ttl: StreamTtl,
    ) -> Result<Self, LiveEventsError> {
        let client = redis::Client::open(url)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ANSWER_TIMEOUT))
            .set_response_timeout(Some(ANSWER_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, cfg).await?;
        Ok(Self {
            conn,
            maxlen: maxlen.max(1),
            ttl,
            traceparent: None,
        })
    }

    /// Carry `traceparent` beside every `start` event this publisher announces.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// XADD `event` to the rendition's stream and move its expiry (see the module docs);
    /// returns the entry id (`{unix ms}-{seq}`, the Redis clock of the announcement). Retried
    /// with backoff for up to [`ANNOUNCE_RETRY_FOR`] while Redis fails.
    pub async fn announce(
        &self,
        video: &str,
        version: u32,
        rendition: &str,
        event: &LiveEvent,
    ) -> Result<String, LiveEventsError> {
        let give_up = tokio::time::Instant::now() + ANNOUNCE_RETRY_FOR;
        let mut pause = RETRY_BACKOFF.0;
        loop {
            match self.announce_once(video, version, rendition, event).await {
                Ok(id) => return Ok(id),
                Err(e) if tokio::time::Instant::now() + pause < give_up => {
                    tracing::warn!(video, version, rendition, error = %e, retry_in_ms = pause.as_millis() as u64, "announcing a live event failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_BACKOFF.1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn announce_once(
        &self,
        video: &str,
        version: u32,
        rendition: &str,
        event: &LiveEvent,
    ) -> Result<String, LiveEventsError> {
        let mut conn = self.conn.clone();
        let stream = events_stream_key(video, version, rendition);
        let ended = matches!(event, LiveEvent::End { .. });
        let ttl = self.ttl.after(event);
        let mut fields = vec![(EVENT_FIELD, event.to_json())];
        if let (LiveEvent::Start { .. }, Some(tp)) = (event, &self.traceparent) {
            fields.push((ringcast_proto::trace_context::HEADER, tp.clone()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.xadd_maxlen(&stream, StreamMaxlen::Approx(self.maxlen), "*", &fields)
            .expire(&stream, ttl as i64)
            .ignore();
        if ended {
            pipe.hset(
                keys::live_stream(video, version),
                ENDED_FIELD,
                ringcast_proto::job::now_ms(),
            )
            .ignore();
        }
        let (id,): (String,) = pipe.query_async(&mut conn).await?;
        Ok(id)
    }

    /// Make `video`/`version` an EVENT playlist (a VOD packaged while it transcodes): drop
    /// the renditions' event streams an earlier attempt of the job left (a retry numbers its
    /// segments from 0 again, which only a fresh stream accepts) and its `ended_ms`, then set
    /// `playlist_type` = [`PLAYLIST_TYPE_EVENT`] in `rc:live:{video}:{version}` — before the
    /// first event, so an edge that finds the stream also finds the setting and keeps every
    /// segment.
    pub async fn begin_event_playlist(
        &self,
        video: &str,
        version: u32,
        renditions: &[String],
    ) -> Result<(), LiveEventsError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in renditions {
            pipe.del(events_stream_key(video, version, r)).ignore();
        }
        pipe.hdel(keys::live_stream(video, version), ENDED_FIELD)
            .ignore();
        pipe.hset(
            keys::live_stream(video, version),
            PLAYLIST_TYPE_FIELD,
            PLAYLIST_TYPE_EVENT,
        )
        .ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Publishers the ingest has seen for this stream (`rc:live:{video}:{version}`
    /// `publishes`); 1 until a reconnect.
    pub async fn publishes(&self, video: &str, version: u32) -> Result<u32, LiveEventsError> {
        let mut conn = self.conn.clone();
        let n: Option<u32> = conn
            .hget(keys::live_stream(video, version), PUBLISHES_FIELD)
            .await?;
        Ok(n.unwrap_or(1))
    }

    /// Whether an earlier run of the job started this stream: the rendition's event stream has
    /// entries, or the stream ended (its events may have expired since).
    pub async fn started(
        &self,
        video: &str,
        version: u32,
        rendition: &str,
    ) -> Result<bool, LiveEventsError> {
        let mut conn = self.conn.clone();
        let (len, ended): (u64, bool) = redis::pipe()
            .xlen(events_stream_key(video, version, rendition))
            .hexists(keys::live_stream(video, version), ENDED_FIELD)
            .query_async(&mut conn)
            .await?;
        Ok(len > 0 || ended)
    }
}
