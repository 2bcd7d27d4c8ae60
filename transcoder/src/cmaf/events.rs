//! XADD of live events to `rc:events:{video}:{version}:{rendition}` (MAXLEN-trimmed,
//! approximately, so trimming stays O(1)). One multiplexed connection per live job, shared by
//! its renditions.
//!
//! Streams expire: every XADD pushes the stream's expiry to `idle_secs` ahead (a job that dies
//! leaves nothing behind for long), and `end` shortens it to `ended_secs` (followers still read
//! up to `end`; afterwards edges answer from the store's final playlists). `end` also records
//! `ended_ms` in `rc:live:{video}:{version}`, which outlives the stream and tells a redelivered
//! live job that the stream already ran.

use redis::aio::MultiplexedConnection;
use redis::streams::StreamMaxlen;
use redis::AsyncCommands;
use ringcast_proto::keys;
use ringcast_proto::live::{events_stream_key, LiveEvent, EVENT_FIELD};

use crate::config::live::StreamTtl;
use crate::error::TranscodeError;

/// Field of `rc:live:{video}:{version}` set when a rendition announced `end` (unix ms).
pub const ENDED_FIELD: &str = "ended_ms";

/// `playlist_type` value of `rc:live:{video}:{version}` that makes edges serve an EVENT
/// playlist (every segment kept); the edge's `live_tail::PLAYLIST_TYPE_EVENT`.
pub const PLAYLIST_TYPE_EVENT: &str = "event";

/// Where one job's live events go.
#[derive(Clone)]
pub struct EventSink {
    conn: MultiplexedConnection,
    maxlen: usize,
    ttl: StreamTtl,
}

impl EventSink {
    pub async fn connect(url: &str, maxlen: usize, ttl: StreamTtl) -> Result<Self, TranscodeError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(Self {
            conn,
            maxlen: maxlen.max(1),
            ttl,
        })
    }

    /// XADD `event` to the rendition's stream and move its expiry (see the module docs);
    /// returns the entry id (`{unix ms}-{seq}`, the Redis clock of the announcement).
    pub async fn announce(
        &self,
        video: &str,
        version: u32,
        rendition: &str,
        event: &LiveEvent,
    ) -> Result<String, TranscodeError> {
        let mut conn = self.conn.clone();
        let stream = events_stream_key(video, version, rendition);
        let ended = matches!(event, LiveEvent::End { .. });
        let ttl = if ended {
            self.ttl.ended_secs
        } else {
            self.ttl.idle_secs
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.xadd_maxlen(
            &stream,
            StreamMaxlen::Approx(self.maxlen),
            "*",
            &[(EVENT_FIELD, event.to_json())],
        )
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
    /// segments from 0 again, which only a fresh stream accepts), then set `playlist_type` =
    /// [`PLAYLIST_TYPE_EVENT`] in `rc:live:{video}:{version}` — before the first event, so an
    /// edge that finds the stream also finds the setting and keeps every segment.
    pub async fn begin_event_playlist(
        &self,
        video: &str,
        version: u32,
        renditions: &[String],
    ) -> Result<(), TranscodeError> {
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
            "playlist_type",
            PLAYLIST_TYPE_EVENT,
        )
        .ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Publishers the ingest has seen for this stream (`rc:live:{video}:{version}`
    /// `publishes`); 1 until a reconnect.
    pub async fn publishes(&self, video: &str, version: u32) -> Result<u32, TranscodeError> {
        let mut conn = self.conn.clone();
        let n: Option<u32> = conn
            .hget(keys::live_stream(video, version), "publishes")
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
    ) -> Result<bool, TranscodeError> {
        let mut conn = self.conn.clone();
        let (len, ended): (u64, bool) = redis::pipe()
            .xlen(events_stream_key(video, version, rendition))
            .hexists(keys::live_stream(video, version), ENDED_FIELD)
            .query_async(&mut conn)
            .await?;
        Ok(len > 0 || ended)
    }
}
