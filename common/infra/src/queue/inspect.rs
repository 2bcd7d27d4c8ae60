//! Read-only views of the queue, for the transcoder's `/metrics` (scraped, so every read is
//! bounded: counts come from `XINFO GROUPS`, `XPENDING` and one-entry ranges, never from
//! walking a stream) and for the operator CLI (`ringcast-transcoder jobs …`).
//!
//! - [`Queue::stats`]: per job stream, the entries waiting for a worker (the group's `lag`),
//!   the pending ones (delivered, not acknowledged: running, or held by a dead worker until
//!   reclaimed), the oldest waiting entry (its id carries its `XADD` time) and the longest a
//!   pending entry has gone untouched; and the length of the dead-letter stream.
//! - [`Queue::dead_letters`], [`Queue::pending_jobs`], [`Queue::job_hash`],
//!   [`Queue::find_entries`]: what the CLI lists and shows.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::streams::{
    StreamId as Entry, StreamInfoGroupsReply, StreamPendingCountReply, StreamRangeReply,
};
use redis::AsyncCommands;
use ringcast_proto::job::TranscodeJob;
use ringcast_proto::keys;
use ringcast_proto::stream_id::StreamId;

use crate::queue::{all_streams, Queue, QueueError};
use crate::side_runtime;

/// Pending entries read per stream (by the scrape and the CLI): far more than a fleet runs.
pub const PENDING_SCAN_LIMIT: usize = 1000;

/// When the group's `lag` is unknown (Redis cannot count it after deletions inside the
/// stream), waiting entries are counted by reading at most this many.
pub const WAITING_COUNT_LIMIT: usize = 10_000;

/// One job stream, as the consumer group `transcoders` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub stream: String,
    /// Entries not yet delivered to any worker.
    pub waiting: u64,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// The oldest entry not yet delivered.
    pub oldest_waiting: Option<StreamId>,
    /// The longest time (ms) a pending entry has gone without a delivery or heartbeat.
    pub max_pending_idle_ms: Option<u64>,
}

/// The whole queue at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Every job stream, live first then VOD by priority.
    pub streams: Vec<StreamStats>,
    /// Entries in `rc:jobs:dlq`.
    pub dead_letters: u64,
}

/// One entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its id in `rc:jobs:dlq` (its time part is when it was dead-lettered).
    pub entry_id: String,
    /// The job stream and entry it came from.
    pub stream: String,
    pub source_entry_id: String,
    /// The job, or why its payload does not decode.
    pub job: Result<TranscodeJob, String>,
    /// The payload as stored.
    pub payload: String,
    pub reason: String,
}

/// A job delivered to a worker and not acknowledged yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJob {
    pub stream: String,
    pub entry_id: String,
    pub consumer: String,
    /// Milliseconds since its last delivery or heartbeat.
    pub idle_ms: u64,
    pub deliveries: u64,
    /// The job, when the entry is still in the stream and decodes.
    pub job: Option<TranscodeJob>,
}

/// A stream entry that carries a given job (the CLI's `show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundEntry {
    pub stream: String,
    pub entry_id: String,
    pub payload: String,
}

impl Queue {
    /// Queue depth, pending, oldest ages and dead letters; see the module doc.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut conn = self.conn.clone();
        Ok(side_runtime::run(async move {
            let mut streams = Vec::new();
            for stream in all_streams() {
                streams.push(stream_stats(&mut conn, &stream).await?);
            }
            let dead_letters: u64 = conn.xlen(keys::JOB_DLQ).await?;
            Ok::<_, redis::RedisError>(QueueStats {
                streams,
                dead_letters,
            })
        })
        .await??)
    }

    /// Up to `limit` dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply =
            side_runtime::run(
                async move { conn.xrevrange_count(keys::JOB_DLQ, "+", "-", limit).await },
            )
            .await??;
        Ok(reply.ids.into_iter().map(dead_letter).collect())
    }

    /// Jobs delivered and not acknowledged, on every job stream (up to
    /// [`PENDING_SCAN_LIMIT`] per stream).
    pub async fn pending_jobs(&self) -> Result<Vec<PendingJob>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(side_runtime::run(async move {
            let mut out = Vec::new();
            for stream in all_streams() {
                for p in pending_entries(&mut conn, &stream).await? {
                    let entry: StreamRangeReply =
                        conn.xrange_count(&stream, &p.id, &p.id, 1).await?;
                    let job = entry
                        .ids
                        .first()
                        .and_then(|e| e.get::<String>("job"))
                        .and_then(|s| TranscodeJob::from_json(&s).ok());
                    out.push(PendingJob {
                        stream: stream.clone(),
                        entry_id: p.id,
                        consumer: p.consumer,
                        idle_ms: p.last_delivered_ms as u64,
                        deliveries: p.times_delivered as u64,
                        job,
                    });
                }
            }
            Ok::<_, redis::RedisError>(out)
        })
        .await??)
    }

    /// Every field of the job hash `rc:job:{id}` and its remaining TTL in seconds (`None`
    /// without one); `None` when the hash does not exist (never did, or expired).
    pub async fn job_hash(
        &self,
        job_id: &str,
    ) -> Result<Option<(HashMap<String, String>, Option<u64>)>, QueueError> {
        let mut conn = self.conn.clone();
        let key = keys::job_state(job_id);
        let (map, ttl): (HashMap<String, String>, i64) = side_runtime::run(async move {
            redis::pipe()
                .hgetall(&key)
                .ttl(&key)
                .query_async(&mut conn)
                .await
        })
        .await??;
        if map.is_empty() {
            return Ok(None);
        }
        Ok(Some((map, u64::try_from(ttl).ok())))
    }

    /// The entries of the job streams and of the dead-letter stream whose payload is job
    /// `job_id` (each stream read in pages; the streams are trimmed, so this stays bounded).
    pub async fn find_entries(&self, job_id: &str) -> Result<Vec<FoundEntry>, QueueError> {
        let mut conn = self.conn.clone();
        let job_id = job_id.to_string();
        Ok(side_runtime::run(async move {
            let mut out = Vec::new();
            let mut streams = all_streams();
            streams.push(keys::JOB_DLQ.to_string());
            for stream in streams {
                let mut start = "-".to_string();
                loop {
                    let page: StreamRangeReply =
                        conn.xrange_count(&stream, &start, "+", 1000).await?;
                    let Some(last) = page.ids.last() else { break };
                    let next = StreamId::parse(&last.id).map(|i| i.next().to_string());
                    let full = page.ids.len() == 1000;
                    for e in page.ids {
                        let Some(payload) = e.get::<String>("job") else {
                            continue;
                        };
                        let matches =
                            TranscodeJob::from_json(&payload).is_ok_and(|j| j.job_id == job_id);
                        if matches {
                            out.push(FoundEntry {
                                stream: stream.clone(),
                                entry_id: e.id,
                                payload,
                            });
                        }
                    }
                    match next {
                        Some(n) if full => start = n,
                        _ => break,
                    }
                }
            }
            Ok::<_, redis::RedisError>(out)
        })
        .await??)
    }
}

/// Stats of one job stream for the group `transcoders` (zeros when the stream or the group
/// does not exist yet).
async fn stream_stats(
    conn: &mut ConnectionManager,
    stream: &str,
) -> redis::RedisResult<StreamStats> {
    let mut stats = StreamStats {
        stream: stream.to_string(),
        waiting: 0,
        pending: 0,
        oldest_waiting: None,
        max_pending_idle_ms: None,
    };
    let exists: bool = conn.exists(stream).await?;
    if !exists {
        return Ok(stats);
    }
    let info: StreamInfoGroupsReply = conn.xinfo_groups(stream).await?;
    let Some(group) = info.groups.into_iter().find(|g| g.name == keys::JOB_GROUP) else {
        return Ok(stats);
    };
    stats.pending = group.pending as u64;
    // Entries after the last-delivered-id are the ones waiting.
    let after = format!("({}", group.last_delivered_id);
    let first: StreamRangeReply = conn.xrange_count(stream, &after, "+", 1).await?;
    stats.oldest_waiting = first.ids.first().and_then(|e| StreamId::parse(&e.id));
    stats.waiting = match group.lag {
        Some(lag) => lag as u64,
        None if stats.oldest_waiting.is_none() => 0,
        None => {
            let waiting: StreamRangeReply = conn
                .xrange_count(stream, &after, "+", WAITING_COUNT_LIMIT)
                .await?;
            waiting.ids.len() as u64
        }
    };
    if stats.pending > 0 {
        stats.max_pending_idle_ms = pending_entries(conn, stream)
            .await?
            .iter()
            .map(|p| p.last_delivered_ms as u64)
            .max();
    }
    Ok(stats)
}

/// `XPENDING` (extended form) of the group on `stream`: owner, idle time and deliveries of
/// up to [`PENDING_SCAN_LIMIT`] entries.
async fn pending_entries(
    conn: &mut ConnectionManager,
    stream: &str,
) -> redis::RedisResult<Vec<redis::streams::StreamPendingId>> {
    let exists: bool = conn.exists(stream).await?;
    if !exists {
        return Ok(Vec::new());
    }
    let reply: StreamPendingCountReply = conn
        .xpending_count(stream, keys::JOB_GROUP, "-", "+", PENDING_SCAN_LIMIT)
        .await?;
    Ok(reply.ids)
}

/// Decode a dead-letter entry (fields `stream`, `entry_id`, `job`, `reason`).
fn dead_letter(e: Entry) -> DeadLetter {
    let field = |name: &str| e.get::<String>(name).unwrap_or_default();
    let payload = field("job");
    let job = if payload.is_empty() {
        Err("the dead-lettered entry had no decodable job".to_string())
    } else {
        TranscodeJob::from_json(&payload).map_err(|err| err.to_string())
    };
    DeadLetter {
        stream: field("stream"),
        source_entry_id: field("entry_id"),
        reason: field("reason"),
        job,
        payload,
        entry_id: e.id,
    }
}
