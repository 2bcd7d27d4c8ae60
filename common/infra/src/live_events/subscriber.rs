//! The edge's side of live events: reading one rendition's stream
//! (`rc:events:{video}:{version}:{rendition}`). What to do with the entries (the follower's
//! state machine, resyncs, publishing to cores) stays with the caller.
//!
//! - One dedicated connection per subscriber, without redis-rs's response timeout: a blocking
//!   `XREAD` would stall every other command of a shared connection and outlasts that timeout.
//!   Every read is bounded by its own deadline instead (`BLOCK` + [`READ_SLACK`]).
//! - [`EventSubscriber::probe`]: `TYPE` of the stream key and `playlist_type` of
//!   `rc:live:{video}:{version}` in one round trip.
//! - [`EventSubscriber::read`]: `XREAD COUNT [BLOCK]` after an entry id (catch-up and tailing).
//! - [`EventSubscriber::read_all`]: `XRANGE - + COUNT` (a full re-read).
//!
//! redis-rs is tokio code: a monoio service runs a subscriber on the side runtime.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig};
use ringcast_proto::keys;
use ringcast_proto::live::{events_stream_key, EVENT_FIELD};

use super::error::LiveEventsError;
use super::fields::{PLAYLIST_TYPE_EVENT, PLAYLIST_TYPE_FIELD};

/// Slack on top of `BLOCK` before a read is considered lost (also the whole deadline of a read
/// that does not block).
pub const READ_SLACK: Duration = Duration::from_secs(5);

/// What a probe found for a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamProbe {
    /// No event stream: the store serves the rendition.
    Missing,
    /// A live stream: a sliding-window playlist.
    Live,
    /// An EVENT playlist (`playlist_type` = `event`): every segment is kept.
    EventPlaylist,
}

/// One stream entry: its id and the event payload (the `e` field; `None` when the entry has
/// none, which the caller counts as skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub event: Option<String>,
}

impl StreamEntry {
    fn from_redis(entry: StreamId) -> Self {
        let event = entry.get(EVENT_FIELD);
        Self {
            id: entry.id,
            event,
        }
    }
}

/// Reads one rendition's event stream on its own connection.
pub struct EventSubscriber {
    conn: MultiplexedConnection,
    stream: String,
    settings: String,
}

impl EventSubscriber {
    /// Opens the dedicated connection (within `connect_timeout`) for the rendition's stream.
    pub async fn connect(
        client: &redis::Client,
        connect_timeout: Duration,
        video: &str,
        version: u32,
        rendition: &str,
    ) -> Result<Self, LiveEventsError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        let conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        Ok(Self {
            conn,
            stream: events_stream_key(video, version, rendition),
            settings: keys::live_stream(video, version),
        })
    }

    /// The stream key (`rc:events:{video}:{version}:{rendition}`).
    pub fn stream_key(&self) -> &str {
        &self.stream
    }

    /// Whether the stream exists, and which playlist it makes. Not bounded here: the caller
    /// bounds connect and probe together.
    pub async fn probe(&mut self) -> Result<StreamProbe, LiveEventsError> {
        let (kind, playlist_type): (String, Option<String>) = redis::pipe()
            .cmd("TYPE")
            .arg(&self.stream)
            .hget(&self.settings, PLAYLIST_TYPE_FIELD)
            .query_async(&mut self.conn)
            .await?;
        Ok(if kind != "stream" {
            StreamProbe::Missing
        } else if playlist_type.as_deref() == Some(PLAYLIST_TYPE_EVENT) {
            StreamProbe::EventPlaylist
        } else {
            StreamProbe::Live
        })
    }

    /// Up to `count` entries after the id `after` (`0-0` for the start); with `block`, waits up
    /// to that long for the first one (`XREAD BLOCK`). Bounded by `block` + [`READ_SLACK`].
    pub async fn read(
        &mut self,
        after: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<StreamEntry>, LiveEventsError> {
        let mut opts = StreamReadOptions::default().count(count);
        if let Some(b) = block {
            opts = opts.block(usize::try_from(b.as_millis()).unwrap_or(usize::MAX).max(1));
        }
        let limit = block.unwrap_or_default() + READ_SLACK;
        let keys = [self.stream.as_str()];
        let ids = [after];
        let read = self
            .conn
            .xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &opts);
        let reply = tokio::time::timeout(limit, read)
            .await
            .map_err(|_| LiveEventsError::Timeout { command: "XREAD" })??;
        Ok(reply
            .map(|r| {
                r.keys
                    .into_iter()
                    .flat_map(|k| k.ids)
                    .map(StreamEntry::from_redis)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The whole stream, oldest first, at most `max` entries (`XRANGE - + COUNT`). Bounded by
    /// [`READ_SLACK`].
    pub async fn read_all(&mut self, max: usize) -> Result<Vec<StreamEntry>, LiveEventsError> {
        let read =
            self.conn
                .xrange_count::<_, _, _, _, StreamRangeReply>(&self.stream, "-", "+", max);
        let all = tokio::time::timeout(READ_SLACK, read)
            .await
            .map_err(|_| LiveEventsError::Timeout { command: "XRANGE" })??;
        Ok(all.ids.into_iter().map(StreamEntry::from_redis).collect())
    }
}
