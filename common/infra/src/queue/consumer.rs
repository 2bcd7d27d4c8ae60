//! The reading side of the job streams: one consumer of the group `transcoders`, the one the
//! transcoder's workers run. A consumer reads the streams it was made for, in the order given
//! (highest priority first): the VOD streams ([`vod_streams`]: high → normal → low) for a VOD
//! worker, the live stream ([`live_streams`]) for a live slot.
//!
//! - [`Consumer::next`]: with [`Reclaim`], an entry of its streams abandoned by another consumer
//!   first (`XAUTOCLAIM` of an entry idle longer than `min_idle_ms`: a job abandoned at shutdown
//!   or held by a crashed worker, which Redis would otherwise keep pending forever), highest
//!   priority first; then new entries by priority: a non-blocking `XREADGROUP` pass over its
//!   streams in order, then one blocking read over all of them. Entries delivered together
//!   are handed out one by one.
//! - Retry bookkeeping: a reclaimed entry carries its delivery count (`XPENDING`); one
//!   delivered more than `max_deliveries` times keeps killing or outliving its workers, and
//!   [`Consumer::is_poison`] says to dead-letter it instead of running it again.
//! - Claim heartbeat: [`Consumer::touch`] (`XCLAIM … JUSTID` to ourselves, which resets the
//!   entry's idle time without counting a delivery), and [`Consumer::keep_claimed`], which
//!   touches a running job periodically so nobody reclaims it. A touch claims the entry only
//!   while this consumer still owns it (checked and claimed in one script, [`TOUCH_IF_OWNED`]):
//!   a plain `XCLAIM` would take a job back from the worker that reclaimed it while this one
//!   was stalled, and two workers would run it. The heartbeat reports the loss instead
//!   ([`ClaimHeartbeat::lost`]), so the worker stops and neither acks nor publishes it.
//! - [`Consumer::ack`] (`XACK`) and [`Consumer::dead_letter`] (`XADD` to `rc:jobs:dlq` with the
//!   reason, trimmed to about `dlq_maxlen` entries, then `XACK`).
//!
//! Response timeout: with redis-rs's default of 500 ms a blocking read longer than that fails
//! on the client while the server may still deliver an entry to it, which then sits pending
//! until reclaimed. A blocking read here waits for its block time plus [`RESPONSE_MARGIN`],
//! every other command for the margin.
//!
//! Like the rest of the queue, all I/O runs on the side runtime.

use std::collections::VecDeque;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamMaxlen, StreamPendingCountReply,
    StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, AsyncConnectionConfig, RedisResult};
use ringcast_proto::job::{Priority, TranscodeJob};
use ringcast_proto::keys;
use tokio::sync::watch;

use crate::queue::error::QueueError;
use crate::side_runtime;

/// Slack on top of a blocking read's block time (and the whole budget of any other command)
/// before the connection counts as dead.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(10);

/// When entries abandoned by other consumers are taken over, and how many deliveries an entry
/// gets before it counts as poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reclaim {
    /// Idle time after which another consumer's pending entry is claimed (`XAUTOCLAIM`
    /// min-idle-time, ms).
    pub min_idle_ms: u64,
    /// A reclaimed entry delivered more times than this is poison ([`Consumer::is_poison`]).
    pub max_deliveries: usize,
}

/// One job delivered to this consumer; ack it when finished (or dead-letter it).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub stream: String,
    pub entry_id: String,
    /// The decoded job, or why the payload could not be decoded.
    pub job: Result<TranscodeJob, String>,
    /// How often the group has delivered the entry, this delivery included: 1 for a new entry,
    /// the `XPENDING` count for a reclaimed one.
    pub times_delivered: usize,
    /// The W3C `traceparent` the enqueuer put beside the job ([`super::Queue::enqueue_traced`]).
    pub traceparent: Option<String>,
}

/// Reads jobs of its streams for one consumer name, highest priority first. Owns its
/// connection: a blocking read would stall every other command on a shared one.
pub struct Consumer {
    conn: MultiplexedConnection,
    /// To open a new connection when the old one broke (Redis restarted, a network cut): a
    /// multiplexed connection does not reconnect by itself.
    client: redis::Client,
    name: String,
    /// The streams read, highest priority first.
    streams: Vec<String>,
    reclaim: Option<Reclaim>,
    /// Approximate MAXLEN of the dead-letter stream.
    dlq_maxlen: usize,
    /// Entries delivered together with the one returned, handed out next.
    buffered: VecDeque<Delivery>,
}

impl Consumer {
    /// Connect as consumer `name` reading `streams` (highest priority first; the groups must
    /// exist, `Queue::connect` creates them).
    pub(crate) async fn connect(
        client: &redis::Client,
        name: &str,
        streams: Vec<String>,
        dlq_maxlen: usize,
    ) -> Result<Self, QueueError> {
        let conn = open(client).await?;
        Ok(Self {
            conn,
            client: client.clone(),
            name: name.to_string(),
            streams,
            reclaim: None,
            dlq_maxlen,
            buffered: VecDeque::new(),
        })
    }

    /// Also take over entries abandoned by other consumers, as [`Consumer::next`] describes.
    pub fn reclaiming(mut self, reclaim: Reclaim) -> Self {
        self.reclaim = Some(reclaim);
        self
    }

    /// The next job: buffered, reclaimed (with [`Reclaim`]) or new, waiting up to `block` for a
    /// new one; `None` when none came.
    pub async fn next(&mut self, block: Duration) -> Result<Option<Delivery>, QueueError> {
        if self.buffered.is_empty() {
            let (conn, name, reclaim) = (self.conn.clone(), self.name.clone(), self.reclaim);
            let streams = self.streams.clone();
            let fetched = side_runtime::run(async move {
                match fetch(conn.clone(), &name, &streams, reclaim, block).await {
                    // The group is gone: Redis lost its data (restart without persistence,
                    // failover to an empty replica) or someone deleted it. Jobs queued since
                    // then sit in a stream without the group; recreate it from the start of
                    // the stream and read again, instead of failing until a restart.
                    Err(e) if e.code() == Some("NOGROUP") => {
                        tracing::warn!(
                            ?streams,
                            "job consumer group missing (Redis lost its data?); creating it again"
                        );
                        create_groups(&mut conn.clone(), &streams).await?;
                        fetch(conn, &name, &streams, reclaim, block).await
                    }
                    other => other,
                }
            })
            .await?;
            let got = match fetched {
                Ok(got) => got,
                Err(e) => {
                    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                        // Next call reads on a fresh connection (this one stays broken); if
                        // Redis is still away, the next call fails again and retries then.
                        if let Ok(conn) = open(&self.client).await {
                            tracing::info!(consumer = %self.name, "reconnected to Redis");
                            self.conn = conn;
                        }
                    }
                    return Err(e.into());
                }
            };
            self.buffered.extend(got);
        }
        Ok(self.buffered.pop_front())
    }

    /// Whether `d` has been delivered too often to be run again: dead-letter it.
    pub fn is_poison(&self, d: &Delivery) -> bool {
        self.reclaim
            .is_some_and(|r| d.times_delivered > r.max_deliveries)
    }

    /// Reset the idle time of an entry this consumer is working on, so that others do not
    /// reclaim it. Does not count as a delivery. `false` (and nothing changed) when the entry
    /// is no longer this consumer's: another worker reclaimed it, or it was acknowledged.
    pub async fn touch(&self, d: &Delivery) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let (name, stream, id) = (self.name.clone(), d.stream.clone(), d.entry_id.clone());
        Ok(side_runtime::run(async move { touch(&mut conn, &name, &stream, &id).await }).await??)
    }

    /// [`Consumer::touch`] `d` every `every` until the returned guard is dropped, or until the
    /// entry turns out to belong to another consumer ([`ClaimHeartbeat::lost`]). Keep `every`
    /// well under the other consumers' `min_idle_ms`.
    pub fn keep_claimed(&self, d: &Delivery, every: Duration) -> ClaimHeartbeat {
        let mut conn = self.conn.clone();
        let (name, stream, id) = (self.name.clone(), d.stream.clone(), d.entry_id.clone());
        let (lost_tx, lost_rx) = watch::channel(false);
        let task = side_runtime::handle().spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match touch(&mut conn, &name, &stream, &id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            entry = %id, consumer = %name,
                            "job claim lost: another worker reclaimed it; stopping the heartbeat"
                        );
                        lost_tx.send_replace(true);
                        return;
                    }
                    // Unknown: the claim may still be ours; a blip is no reason to stop work.
                    Err(e) => {
                        tracing::warn!(entry = %id, error = %e, "cannot refresh the job claim")
                    }
                }
            }
        });
        ClaimHeartbeat {
            task: task.abort_handle(),
            lost: lost_rx,
        }
    }

    /// XACK the entry: it will not be delivered again.
    pub async fn ack(&self, d: &Delivery) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (stream, id) = (d.stream.clone(), d.entry_id.clone());
        side_runtime::run(async move { ack(&mut conn, &stream, &id).await }).await??;
        Ok(())
    }

    /// Move the entry to the dead-letter stream with the reason, then ack it.
    pub async fn dead_letter(&self, d: &Delivery, reason: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let payload = match &d.job {
            Ok(j) => j.to_json(),
            Err(_) => String::new(),
        };
        let fields = [
            ("stream", d.stream.clone()),
            ("entry_id", d.entry_id.clone()),
            ("job", payload),
            ("reason", reason.to_string()),
        ];
        let (stream, id, dlq_maxlen) = (d.stream.clone(), d.entry_id.clone(), self.dlq_maxlen);
        side_runtime::run(async move {
            conn.xadd_maxlen::<_, _, _, _, String>(
                keys::JOB_DLQ,
                StreamMaxlen::Approx(dlq_maxlen),
                "*",
                &fields,
            )
            .await?;
            ack(&mut conn, &stream, &id).await
        })
        .await??;
        Ok(())
    }
}

/// Stops the claim refresh of [`Consumer::keep_claimed`] when dropped, and tells whether the
/// claim was lost to another consumer.
#[must_use = "the claim is refreshed only while the heartbeat lives"]
pub struct ClaimHeartbeat {
    task: tokio::task::AbortHandle,
    lost: watch::Receiver<bool>,
}

impl ClaimHeartbeat {
    /// Whether a touch found the entry owned by another consumer (or no longer pending).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once the claim is lost; never while the heartbeat keeps it.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // `wait_for` fails only when the heartbeat task is gone without reporting a loss
        // (aborted, or the runtime shut down): the claim is then not known to be lost.
        if rx.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for ClaimHeartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The VOD job streams, highest priority first: what a VOD worker reads.
pub fn vod_streams() -> Vec<String> {
    Priority::ALL
        .iter()
        .map(|p| keys::job_stream(p.as_str()))
        .collect()
}

/// The live job stream: what a live slot reads.
pub fn live_streams() -> Vec<String> {
    vec![keys::JOB_LIVE.to_string()]
}

/// Every job stream (live first, then VOD by priority), e.g. for a test that reads whatever
/// was queued.
pub fn all_streams() -> Vec<String> {
    let mut s = live_streams();
    s.extend(vod_streams());
    s
}

/// The stream a job is queued on: [`keys::JOB_LIVE`] for a live job (whatever its priority),
/// its priority's stream otherwise.
pub fn stream_for(job: &TranscodeJob) -> String {
    if job.live.is_some() {
        keys::JOB_LIVE.to_string()
    } else {
        keys::job_stream(job.priority.as_str())
    }
}

/// What comes first: one reclaimed entry, the new entries of the highest priority that has
/// any, or what a blocking read over all of `streams` gets within `block` (in their order).
/// A consumer's own connection, with the response timeout blocking reads need
/// ([`RESPONSE_MARGIN`]).
async fn open(client: &redis::Client) -> Result<MultiplexedConnection, QueueError> {
    let client = client.clone();
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_MARGIN));
    Ok(side_runtime::run(async move {
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    })
    .await??)
}

/// `XGROUP CREATE … MKSTREAM` from the start of each stream; an existing group is left alone.
pub(crate) async fn create_groups<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    streams: &[String],
) -> RedisResult<()> {
    for stream in streams {
        let r: RedisResult<()> = conn
            .xgroup_create_mkstream(stream, keys::JOB_GROUP, "0")
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn fetch(
    mut conn: MultiplexedConnection,
    consumer: &str,
    streams: &[String],
    reclaim: Option<Reclaim>,
    block: Duration,
) -> RedisResult<Vec<Delivery>> {
    if let Some(r) = reclaim {
        for stream in streams {
            if let Some(d) = claim_idle(&mut conn, stream, consumer, r.min_idle_ms).await? {
                return Ok(vec![d]);
            }
        }
    }
    for stream in streams {
        let got = read(&conn, consumer, std::slice::from_ref(stream), None).await?;
        if !got.is_empty() {
            return Ok(got);
        }
    }
    let mut got = read(&conn, consumer, streams, Some(block)).await?;
    got.sort_by_key(|d| streams.iter().position(|s| *s == d.stream));
    Ok(got)
}

/// `XREADGROUP` of new entries, one per stream; blocking for `block` when given.
async fn read(
    conn: &MultiplexedConnection,
    consumer: &str,
    streams: &[String],
    block: Option<Duration>,
) -> RedisResult<Vec<Delivery>> {
    let mut conn = conn.clone();
    let mut opts = StreamReadOptions::default()
        .group(keys::JOB_GROUP, consumer)
        .count(1);
    if let Some(b) = block {
        opts = opts.block(b.as_millis().max(1) as usize);
        // The server holds the reply for up to `b`.
        conn.set_response_timeout(b + RESPONSE_MARGIN);
    }
    let ids: Vec<&str> = streams.iter().map(|_| ">").collect();
    let reply: Option<StreamReadReply> = conn.xread_options(streams, &ids, &opts).await?;
    Ok(reply
        .map(|r| r.keys)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|k| {
            let stream = k.key;
            k.ids.into_iter().map(move |e| delivery(&stream, e, 1))
        })
        .collect())
}

/// Claim one entry of `stream` idle for at least `min_idle_ms`, with its delivery count.
async fn claim_idle(
    conn: &mut MultiplexedConnection,
    stream: &str,
    consumer: &str,
    min_idle_ms: u64,
) -> RedisResult<Option<Delivery>> {
    let reply: StreamAutoClaimReply = conn
        .xautoclaim_options(
            stream,
            keys::JOB_GROUP,
            consumer,
            min_idle_ms,
            "0-0",
            StreamAutoClaimOptions::default().count(1),
        )
        .await?;
    let Some(entry) = reply.claimed.into_iter().next() else {
        return Ok(None);
    };
    let pending: StreamPendingCountReply = conn
        .xpending_count(stream, keys::JOB_GROUP, &entry.id, &entry.id, 1)
        .await?;
    let times = pending.ids.first().map_or(0, |p| p.times_delivered);
    tracing::info!(stream, entry = %entry.id, times, "reclaimed an abandoned job");
    Ok(Some(delivery(stream, entry, times)))
}

/// Reset the idle time of entry `id` (ARGV[3]) of stream KEYS[1] for group ARGV[1], but only
/// if consumer ARGV[2] still owns it: `XPENDING` for that one id names its owner, and only then
/// `XCLAIM … JUSTID` with min-idle 0 (which does not count a delivery). One script, so no
/// reclaim can slip in between the check and the claim. Returns 1 when touched, 0 when the
/// entry is another consumer's or no longer pending.
pub const TOUCH_IF_OWNED: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] == nil or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
";

/// [`TOUCH_IF_OWNED`] for `consumer`: whether the entry was still ours (and touched).
async fn touch(
    conn: &mut MultiplexedConnection,
    consumer: &str,
    stream: &str,
    id: &str,
) -> RedisResult<bool> {
    let touched: i64 = redis::cmd("EVAL")
        .arg(TOUCH_IF_OWNED)
        .arg(1)
        .arg(stream)
        .arg(keys::JOB_GROUP)
        .arg(consumer)
        .arg(id)
        .query_async(conn)
        .await?;
    Ok(touched == 1)
}

async fn ack(conn: &mut MultiplexedConnection, stream: &str, id: &str) -> RedisResult<()> {
    conn.xack::<_, _, _, i64>(stream, keys::JOB_GROUP, &[id])
        .await?;
    Ok(())
}

/// Decode a stream entry; an undecodable payload stays a delivery (to be dead-lettered).
fn delivery(stream: &str, entry: StreamId, times_delivered: usize) -> Delivery {
    let job = match entry.get::<String>("job") {
        Some(s) => TranscodeJob::from_json(&s).map_err(|e| e.to_string()),
        None => Err("entry has no `job` field".to_string()),
    };
    let traceparent = entry.get::<String>(ringcast_proto::trace_context::HEADER);
    Delivery {
        stream: stream.to_string(),
        entry_id: entry.id,
        job,
        times_delivered,
        traceparent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::job::{LiveSource, JOB_SCHEMA_VERSION};

    fn job(priority: Priority, live: bool) -> TranscodeJob {
        TranscodeJob {
            v: JOB_SCHEMA_VERSION,
            job_id: "j".into(),
            video_id: "v".into(),
            version: 1,
            source_key: String::new(),
            priority,
            created_ms: 0,
            live: live.then(|| LiveSource {
                pull_url: "http://127.0.0.1:1/pull".into(),
            }),
            container: None,
        }
    }

    #[test]
    fn vod_and_live_streams_are_disjoint() {
        assert_eq!(
            vod_streams(),
            ["rc:jobs:high", "rc:jobs:normal", "rc:jobs:low"]
        );
        assert_eq!(live_streams(), ["rc:jobs:live"]);
        assert!(vod_streams().iter().all(|s| !live_streams().contains(s)));
        assert!(!vod_streams().iter().any(|s| s == keys::JOB_DLQ));
        assert_eq!(
            all_streams(),
            [
                "rc:jobs:live",
                "rc:jobs:high",
                "rc:jobs:normal",
                "rc:jobs:low"
            ]
        );
    }

    #[test]
    fn live_jobs_go_to_the_live_stream_whatever_their_priority() {
        for p in Priority::ALL {
            assert_eq!(stream_for(&job(p, true)), keys::JOB_LIVE);
            let vod = stream_for(&job(p, false));
            assert_eq!(vod, keys::job_stream(p.as_str()));
            assert!(vod_streams().contains(&vod));
            assert!(!live_streams().contains(&vod));
        }
    }
}
