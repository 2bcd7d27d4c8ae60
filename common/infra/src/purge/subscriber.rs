//! The edge's subscription to [`PURGE_CHANNEL`] on the tokio side runtime.
//!
//! - One dedicated RESP2 pub/sub connection (`SUBSCRIBE rc:purge`); every message is parsed
//!   ([`PurgeMessage::parse`], bounded) and handed to the caller's handler, in order, on the
//!   side runtime's blocking pool (applying a purge walks cache shards and unlinks files; it
//!   must not stall the side runtime's one worker thread).
//! - A `PING` every `ping_every` bounded by `timeout` notices a Redis that hangs without closing
//!   the connection; a closed connection ends the message stream at once.
//! - Lost connection → [`PurgeEvent::Disconnected`], then reconnect with backoff (`backoff_min`
//!   doubling to `backoff_max`, reset by a successful subscription).
//! - Every successful subscription → [`PurgeEvent::Subscribed`] (with `reconnect` after the
//!   first): pub/sub keeps nothing for absent subscribers, so the caller must assume it missed
//!   messages and drop whatever they could have purged.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use redis::aio::PubSubStream;
use ringcast_proto::keys::PURGE_CHANNEL;
use ringcast_proto::purge::{PurgeMessage, PurgeMessageError};

use crate::side_runtime;

/// What the subscription reports to its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeEvent {
    /// Subscribed: from now on every message arrives. `reconnect`: not the first subscription,
    /// so messages were published while disconnected and are lost.
    Subscribed { reconnect: bool },
    /// A valid message.
    Message(PurgeMessage),
    /// A message that failed [`PurgeMessage::parse`] (nothing of it may be applied).
    Rejected(PurgeMessageError),
    /// The subscription broke; reconnecting.
    Disconnected,
}

/// Timing of the subscription.
#[derive(Debug, Clone, Copy)]
pub struct SubscriberSettings {
    /// Bound of a connect + `SUBSCRIBE` and of each `PING`.
    pub timeout: Duration,
    /// How often the connection is checked with `PING`.
    pub ping_every: Duration,
    /// First wait before reconnecting.
    pub backoff_min: Duration,
    /// Longest wait between reconnect attempts.
    pub backoff_max: Duration,
}

impl Default for SubscriberSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            ping_every: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// The running subscription; [`stop`](Self::stop) ends it (also on drop).
pub struct PurgeSubscription {
    task: tokio::task::JoinHandle<()>,
}

impl PurgeSubscription {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PurgeSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The handler of every event, called in order on the side runtime's blocking pool.
pub type PurgeHandler = Arc<dyn Fn(PurgeEvent) + Send + Sync>;

/// Subscribe to [`PURGE_CHANNEL`] of the Redis at `url` on the side runtime, for as long as the
/// returned handle lives. Fails only on a malformed URL; an unreachable Redis is retried.
pub fn spawn_subscriber(
    url: &str,
    settings: SubscriberSettings,
    handler: PurgeHandler,
) -> Result<PurgeSubscription, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let task = side_runtime::handle().spawn(run(client, settings, handler));
    Ok(PurgeSubscription { task })
}

async fn run(client: redis::Client, s: SubscriberSettings, handler: PurgeHandler) {
    let mut backoff = s.backoff_min;
    let mut subscribed_before = false;
    let mut failures: u64 = 0;
    loop {
        match tokio::time::timeout(s.timeout, subscribe(&client)).await {
            Ok(Ok(pubsub)) => {
                backoff = s.backoff_min;
                failures = 0;
                tracing::info!(
                    channel = PURGE_CHANNEL,
                    reconnect = subscribed_before,
                    "subscribed to fleet purges"
                );
                let reconnect = subscribed_before;
                subscribed_before = true;
                deliver(&handler, PurgeEvent::Subscribed { reconnect }).await;
                let why = listen(pubsub, &s, &handler).await;
                tracing::warn!(
                    channel = PURGE_CHANNEL,
                    reason = why,
                    "purge subscription lost; reconnecting"
                );
                deliver(&handler, PurgeEvent::Disconnected).await;
            }
            Ok(Err(error)) => {
                failures += 1;
                // Once per outage, then every 30 attempts: a down Redis must not flood the log.
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(%error, failures, "cannot subscribe to fleet purges; retrying");
                }
            }
            Err(_) => {
                failures += 1;
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(failures, "subscribing to fleet purges timed out; retrying");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(s.backoff_max);
    }
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(PURGE_CHANNEL).await?;
    Ok(pubsub)
}

/// Hand every message to the handler until the connection ends or stops answering; returns
/// why.
async fn listen(
    pubsub: redis::aio::PubSub,
    s: &SubscriberSettings,
    handler: &PurgeHandler,
) -> &'static str {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(s.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            msg = next(&mut stream) => {
                let Some(msg) = msg else {
                    return "connection closed";
                };
                let event = match PurgeMessage::parse(msg.get_payload_bytes()) {
                    Ok(m) => PurgeEvent::Message(m),
                    Err(e) => PurgeEvent::Rejected(e),
                };
                deliver(handler, event).await;
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(s.timeout, sink.ping::<redis::Value>()).await;
                match pong {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return "PING failed",
                    Err(_) => return "PING timed out",
                }
            }
        }
    }
}

async fn next(stream: &mut PubSubStream) -> Option<redis::Msg> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

async fn deliver(handler: &PurgeHandler, event: PurgeEvent) {
    let h = Arc::clone(handler);
    if let Err(error) = tokio::task::spawn_blocking(move || h(event)).await {
        tracing::error!(%error, "the purge handler failed");
    }
}
