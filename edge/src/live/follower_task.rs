//! The follower task of one rendition, on the tokio side runtime (redis-rs is tokio code and
//! never runs on a monoio core): probe, catch up, then `XREAD BLOCK` on a dedicated connection
//! (a blocking read would stall every other command of a shared one), apply each entry to the
//! [`StreamState`] and publish the new state to every core ([`RenditionFeed::publish`]). The
//! Redis commands, their deadlines and the key and field names are
//! `ringcast_infra::live_events`' [`EventSubscriber`]; this file decides what to do with them.
//!
//! - Probe: no stream → [`Phase::NoStream`] (the store serves). The version's settings say
//!   whether the playlist is an EVENT playlist (a VOD packaged while it transcodes: every
//!   segment is kept) or a live sliding window.
//! - Catch-up: `XREAD COUNT` without `BLOCK` from `0` until the stream is exhausted, then one
//!   publish (none before: a partial state would look like a stale live edge); a stream without
//!   a usable `Start` yet publishes [`Phase::Pending`].
//! - Tailing: `XREAD COUNT BLOCK read_block_ms` from the last entry id; each batch is applied
//!   and published at once (one entry per batch while live), so a waiting request is woken as
//!   soon as Redis delivers the entry.
//! - Resync ([`Fed::Resync`]): re-read the whole stream (`XRANGE - +`) and replay it, at most
//!   once per [`RESYNC_MIN_INTERVAL`]; within it the follower waits for the next `Start`.
//! - Redis errors: the last state keeps being served; reconnect with backoff (100 ms doubling
//!   to 2 s) and go on from the last entry id (missed, trimmed entries show up as a gap, which
//!   resyncs).
//! - Stop: idle for `idle_stop_ms`, or the registry closed.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_infra::live_events::{EventSubscriber, LiveEventsError, StreamProbe};
use ringcast_infra::side_runtime;
use ringcast_proto::live::{LiveConfig, EVENT_FIELD};

use crate::live::feed::{Phase, RenditionFeed};
use crate::live::registry::Registry;
use crate::live::stream_state::{Fed, StreamState};

/// Entries per `XREAD`.
const READ_COUNT: usize = 512;
/// Upper bound of a full re-read (streams are MAXLEN-trimmed far below this).
const RESYNC_MAX_ENTRIES: usize = 1_000_000;
/// Replays of one stream are at least this far apart.
const RESYNC_MIN_INTERVAL: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Starts the follower of `feed` on the side runtime.
pub fn spawn(registry: Arc<Registry>, feed: Arc<RenditionFeed>) {
    // The side runtime's JoinHandle is not needed: the task ends by itself (idle or closed).
    drop(side_runtime::handle().spawn(run(registry, feed)));
}

async fn run(registry: Arc<Registry>, feed: Arc<RenditionFeed>) {
    let key = feed.id.stream_key();
    let probe_timeout = Duration::from_millis(registry.settings.probe_timeout_ms);
    let probed = tokio::time::timeout(probe_timeout, probe(&registry, &feed)).await;
    let (mut sub, config) = match probed {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => {
            tracing::debug!(stream = %key, "no live event stream");
            return no_stream(&registry, &feed);
        }
        Ok(Err(e)) => {
            probe_failed(&registry, &key, &e.to_string());
            return no_stream(&registry, &feed);
        }
        Err(_) => {
            probe_failed(&registry, &key, "timed out");
            return no_stream(&registry, &feed);
        }
    };
    tracing::info!(stream = %key, window = ?config.window, "following live events");
    let mut f = StreamReader {
        registry: &registry,
        feed: &feed,
        key,
        state: StreamState::new(config),
        last_id: "0-0".to_owned(),
        last_resync: None,
        dirty: false,
        entry_ms: None,
    };
    let mut backoff = BACKOFF_MIN;
    let mut caught_up = false;
    loop {
        // Idle is judged once caught up (the first requests are waiting for the catch-up).
        if (caught_up || registry.is_closed()) && registry.stop_if_idle(&feed) {
            tracing::debug!(stream = %f.key, "stopped following");
            return;
        }
        let block = caught_up.then(|| Duration::from_millis(registry.settings.read_block_ms));
        match f.read_batch(&mut sub, block).await {
            Ok(n) => {
                backoff = BACKOFF_MIN;
                // Nothing is published during the catch-up: a first request must not get the
                // state of the stream's first batch as the live edge.
                let tailing = caught_up;
                caught_up |= n < READ_COUNT;
                if caught_up {
                    if !tailing {
                        // The catch-up's entries are history, not a wake-up to measure.
                        f.entry_ms = None;
                    }
                    f.publish();
                }
            }
            Err(e) => {
                registry.stats.redis_errors.fetch_add(1, Relaxed);
                tracing::warn!(stream = %f.key, error = %e, "live event read failed; reconnecting");
                // Never leave first requests waiting on a follower that cannot read.
                caught_up = true;
                f.publish();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                match connect(&registry, &feed).await {
                    Ok(s) => sub = s,
                    Err(e) => tracing::debug!(stream = %f.key, error = %e, "reconnect failed"),
                }
            }
        }
    }
}

/// Counts a failed probe; warns at most once per 10 s (`Registry::probe_warn`).
fn probe_failed(registry: &Registry, key: &str, error: &str) {
    registry.stats.redis_errors.fetch_add(1, Relaxed);
    if let Some(held_back) = registry.probe_warn.due_at(registry.now_ms().max(1)) {
        tracing::warn!(stream = %key, error = %error, held_back, "live probe failed; serving from the store");
    } else {
        tracing::debug!(stream = %key, error = %error, "live probe failed");
    }
}

fn no_stream(registry: &Registry, feed: &RenditionFeed) {
    feed.publish(Phase::NoStream, registry.now());
    feed.stop();
}

/// The rendition's subscriber on its own connection (connect bounded by the probe timeout).
async fn connect(
    registry: &Registry,
    feed: &RenditionFeed,
) -> Result<EventSubscriber, LiveEventsError> {
    let client = registry.client.as_ref().ok_or_else(|| {
        LiveEventsError::from(redis::RedisError::from((
            redis::ErrorKind::Client,
            "live path disabled",
        )))
    })?;
    let id = &feed.id;
    EventSubscriber::connect(
        client,
        Duration::from_millis(registry.settings.probe_timeout_ms),
        &id.video,
        id.version,
        &id.rendition,
    )
    .await
}

/// A subscriber and the playlist window when the stream exists.
async fn probe(
    registry: &Registry,
    feed: &RenditionFeed,
) -> Result<Option<(EventSubscriber, LiveConfig)>, LiveEventsError> {
    let mut sub = connect(registry, feed).await?;
    let config = match sub.probe().await? {
        StreamProbe::Missing => return Ok(None),
        StreamProbe::EventPlaylist => LiveConfig::unbounded(),
        StreamProbe::Live => LiveConfig::sliding(registry.settings.window_segments),
    };
    Ok(Some((sub, config)))
}

struct StreamReader<'a> {
    registry: &'a Registry,
    feed: &'a RenditionFeed,
    key: String,
    state: StreamState,
    last_id: String,
    last_resync: Option<Instant>,
    /// The follower changed since the last publish.
    dirty: bool,
    /// Unix ms of the last entry that changed the state while tailing (see
    /// [`crate::live::feed::Published::entry_ms`]).
    entry_ms: Option<u64>,
}

impl StreamReader<'_> {
    /// Publishes the state if it changed; a stream without a usable `Start` yet is
    /// [`Phase::Pending`] (published once, so that first requests stop waiting).
    fn publish(&mut self) {
        match self.state.state() {
            Some(state) if self.dirty => self.feed.publish_entry(
                Phase::Live(Arc::new(state.clone())),
                self.registry.now(),
                self.entry_ms,
            ),
            None if matches!(self.feed.load().phase, Phase::Probing) => {
                self.feed.publish(Phase::Pending, self.registry.now());
            }
            _ => {}
        }
        self.dirty = false;
        self.entry_ms = None;
    }

    /// One `XREAD` (blocking when `block` is given), applied to the follower (see
    /// [`StreamReader::publish`]). Returns the number of entries read.
    async fn read_batch(
        &mut self,
        sub: &mut EventSubscriber,
        block: Option<Duration>,
    ) -> Result<usize, LiveEventsError> {
        let entries = sub.read(&self.last_id, READ_COUNT, block).await?;
        let n = entries.len();
        for entry in entries {
            self.last_id.clone_from(&entry.id);
            let fed = match entry.event {
                Some(p) => self.state.feed(&p),
                None => Fed::Skipped(format!("entry {} has no `{EVENT_FIELD}` field", entry.id)),
            };
            match fed {
                Fed::Updated => {
                    self.dirty = true;
                    self.entry_ms = entry.id.split('-').next().and_then(|ms| ms.parse().ok());
                    self.registry.stats.events_applied.fetch_add(1, Relaxed);
                }
                Fed::Unchanged => {}
                Fed::Skipped(why) => {
                    self.registry.stats.events_skipped.fetch_add(1, Relaxed);
                    tracing::debug!(stream = %self.key, id = %entry.id, why = %why, "live event skipped");
                }
                Fed::Resync(e) => {
                    tracing::warn!(stream = %self.key, id = %entry.id, error = %e, "live events lost; re-reading the stream");
                    self.resync(sub).await?;
                    self.dirty = true;
                    self.entry_ms = None;
                    // The re-read covered the rest of this batch.
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Re-reads the whole stream and replays it (rate-limited: within the interval the follower
    /// waits for the next `Start` instead).
    async fn resync(&mut self, sub: &mut EventSubscriber) -> Result<(), LiveEventsError> {
        let now = self.registry.now();
        if self
            .last_resync
            .is_some_and(|at| now.saturating_duration_since(at) < RESYNC_MIN_INTERVAL)
        {
            self.state.wait_for_start();
            return Ok(());
        }
        self.last_resync = Some(now);
        self.registry.stats.resyncs.fetch_add(1, Relaxed);
        let all = sub.read_all(RESYNC_MAX_ENTRIES).await?;
        if let Some(last) = all.last() {
            self.last_id.clone_from(&last.id);
        }
        let payloads: Vec<String> = all.into_iter().filter_map(|e| e.event).collect();
        let previous = std::mem::replace(&mut self.state, StreamState::new(LiveConfig::default()));
        self.state = StreamState::replay(previous, payloads.iter().map(String::as_str));
        Ok(())
    }
}
