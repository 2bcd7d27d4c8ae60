//! Where a worker's jobs come from: entries abandoned by other consumers (reclaimed first), then
//! new entries by priority (high → normal → low), plus the claim refresh that keeps a running
//! job from being reclaimed.
//!
//! - Reclaim: `XAUTOCLAIM` an entry idle longer than `reclaim_idle_ms` — a job abandoned at
//!   shutdown or held by a crashed worker; Redis would otherwise keep it pending forever. An
//!   entry delivered more than `max_deliveries` times (it keeps killing or outliving its
//!   workers) comes back as [`Incoming::Poison`], to be dead-lettered.
//! - New jobs: a non-blocking `XREADGROUP` pass over the streams in priority order, then one
//!   blocking read over all three (the same order rules as `ringcast_infra::queue::Consumer`).
//! - [`JobSource::touch`]: `XCLAIM … JUSTID` of a running job to ourselves every third of
//!   `reclaim_idle_ms`, which resets its idle time without counting a delivery.
//!
//! Why not `Consumer::next` from common: its connection keeps redis-rs's default 500 ms
//! response timeout, so any blocking read longer than that fails on the client while the
//! server may still deliver an entry to it, which then sits pending until reclaimed. This
//! connection's timeout is the block time plus a margin. Deliveries made here are acked and
//! dead-lettered through the common `Consumer` like any other.

use std::collections::VecDeque;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
    StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, AsyncConnectionConfig};
use ringcast_infra::queue::Delivery;
use ringcast_proto::job::{Priority, TranscodeJob};
use ringcast_proto::keys;

/// Slack on top of the block time before a blocking read counts as a dead connection.
const RESPONSE_MARGIN: Duration = Duration::from_secs(10);

/// A job to work on.
#[derive(Debug)]
pub enum Incoming {
    /// Process it (fresh or reclaimed).
    Job(Delivery),
    /// Delivered `times` times without being finished: dead-letter it.
    Poison { delivery: Delivery, times: usize },
}

/// One worker's view of the job streams. Clones share the connection.
#[derive(Clone)]
pub struct JobSource {
    conn: MultiplexedConnection,
    consumer: String,
    block: Duration,
    min_idle_ms: u64,
    max_deliveries: usize,
    /// Entries delivered together with the one returned, handed out next.
    buffered: VecDeque<Delivery>,
}

impl JobSource {
    /// Connect as `consumer` of the `transcoders` group (the groups must exist; `Queue::connect`
    /// creates them).
    pub async fn connect(
        url: &str,
        consumer: &str,
        block: Duration,
        min_idle_ms: u64,
        max_deliveries: usize,
    ) -> Result<Self, redis::RedisError> {
        let config =
            AsyncConnectionConfig::new().set_response_timeout(Some(block + RESPONSE_MARGIN));
        let conn = redis::Client::open(url)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Self {
            conn,
            consumer: consumer.to_string(),
            block,
            min_idle_ms,
            max_deliveries,
            buffered: VecDeque::new(),
        })
    }

    /// The next job: buffered, reclaimed, or new; `None` after `block` without any.
    pub async fn next(&mut self) -> Result<Option<Incoming>, redis::RedisError> {
        if let Some(d) = self.buffered.pop_front() {
            return Ok(Some(Incoming::Job(d)));
        }
        if let Some(r) = self.claim_one().await? {
            return Ok(Some(r));
        }
        let streams: Vec<String> = Priority::ALL
            .iter()
            .map(|p| keys::job_stream(p.as_str()))
            .collect();
        for stream in &streams {
            let got = self.read(std::slice::from_ref(stream), None).await?;
            if !got.is_empty() {
                self.buffered.extend(got);
                return Ok(self.buffered.pop_front().map(Incoming::Job));
            }
        }
        let mut got = self.read(&streams, Some(self.block)).await?;
        got.sort_by_key(|d| streams.iter().position(|s| *s == d.stream));
        self.buffered.extend(got);
        Ok(self.buffered.pop_front().map(Incoming::Job))
    }

    async fn read(
        &mut self,
        streams: &[String],
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, redis::RedisError> {
        let mut opts = StreamReadOptions::default()
            .group(keys::JOB_GROUP, &self.consumer)
            .count(1);
        if let Some(b) = block {
            opts = opts.block(b.as_millis().max(1) as usize);
        }
        let ids: Vec<&str> = streams.iter().map(|_| ">").collect();
        let reply: Option<StreamReadReply> = self.conn.xread_options(streams, &ids, &opts).await?;
        Ok(reply
            .map(|r| r.keys)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|k| {
                let stream = k.key;
                k.ids.into_iter().map(move |e| delivery(&stream, e))
            })
            .collect())
    }

    /// Claim one idle entry, highest priority first.
    async fn claim_one(&mut self) -> Result<Option<Incoming>, redis::RedisError> {
        for p in Priority::ALL {
            let stream = keys::job_stream(p.as_str());
            let reply: StreamAutoClaimReply = self
                .conn
                .xautoclaim_options(
                    &stream,
                    keys::JOB_GROUP,
                    &self.consumer,
                    self.min_idle_ms,
                    "0-0",
                    StreamAutoClaimOptions::default().count(1),
                )
                .await?;
            let Some(entry) = reply.claimed.into_iter().next() else {
                continue;
            };
            let d = delivery(&stream, entry);
            let times = self.times_delivered(&stream, &d.entry_id).await?;
            tracing::info!(stream = %stream, entry = %d.entry_id, times, "reclaimed an abandoned job");
            return Ok(Some(if times > self.max_deliveries {
                Incoming::Poison { delivery: d, times }
            } else {
                Incoming::Job(d)
            }));
        }
        Ok(None)
    }

    async fn times_delivered(
        &mut self,
        stream: &str,
        id: &str,
    ) -> Result<usize, redis::RedisError> {
        let reply: StreamPendingCountReply = self
            .conn
            .xpending_count(stream, keys::JOB_GROUP, id, id, 1)
            .await?;
        Ok(reply.ids.first().map_or(0, |p| p.times_delivered))
    }

    /// Reset the idle time of an entry this consumer is working on, so others do not reclaim
    /// it. `JUSTID` does not count as a delivery.
    pub async fn touch(&mut self, d: &Delivery) -> Result<(), redis::RedisError> {
        redis::cmd("XCLAIM")
            .arg(&d.stream)
            .arg(keys::JOB_GROUP)
            .arg(&self.consumer)
            .arg(0)
            .arg(&d.entry_id)
            .arg("JUSTID")
            .query_async::<redis::Value>(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// Decode a stream entry; an undecodable payload stays a delivery (to be dead-lettered).
fn delivery(stream: &str, entry: StreamId) -> Delivery {
    let job = match entry.get::<String>("job") {
        Some(s) => TranscodeJob::from_json(&s).map_err(|e| e.to_string()),
        None => Err("entry has no `job` field".to_string()),
    };
    Delivery {
        stream: stream.to_string(),
        entry_id: entry.id,
        job,
    }
}
