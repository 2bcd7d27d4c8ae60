//! Counters of the platform path (fleet purges, visibility), rendered on `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use ringcast_proto::prometheus::{Kind, Writer};

/// Process-wide counters of fleet purges and visibility checks.
#[derive(Debug, Default)]
pub struct PlatformStats {
    pub purge_received: AtomicU64,
    pub purge_applied: AtomicU64,
    pub purge_rejected: AtomicU64,
    pub purge_published: AtomicU64,
    pub subscriptions: AtomicU64,
    pub subscriber_reconnects: AtomicU64,
    pub subscribed: AtomicBool,
    pub resync_dropped: AtomicU64,
    pub visibility_lookups: AtomicU64,
    pub visibility_lookup_errors: AtomicU64,
    pub visibility_stale_served: AtomicU64,
    pub denied_private: AtomicU64,
    pub denied_unavailable: AtomicU64,
}

impl PlatformStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Prometheus text of the counters; `visibility_entries` is read at scrape time.
    pub fn render(&self, visibility_entries: u64, w: &mut Writer) {
        let get = |v: &AtomicU64| v.load(Relaxed);
        w.counter(
            "ringcast_edge_purge_messages_received_total",
            "Fleet purge messages received on the rc:purge channel.",
            get(&self.purge_received),
        )
        .counter(
            "ringcast_edge_purge_messages_applied_total",
            "Fleet purge messages applied to every cache tier.",
            get(&self.purge_applied),
        )
        .counter(
            "ringcast_edge_purge_messages_rejected_total",
            "Fleet purge messages refused (malformed, over a bound, unknown version); nothing of them was applied.",
            get(&self.purge_rejected),
        );
        w.counter(
            "ringcast_edge_purge_published_total",
            "Fleet purges this edge published (POST /purge?fleet=1).",
            get(&self.purge_published),
        )
        .counter(
            "ringcast_edge_purge_subscriber_reconnects_total",
            "Subscriptions to rc:purge after a lost one (each drops cached visibilities and mutable playlists).",
            get(&self.subscriber_reconnects),
        )
        .gauge(
            "ringcast_edge_purge_subscribed",
            "1 while subscribed to rc:purge.",
            u64::from(self.subscribed.load(Relaxed)),
        )
        .counter(
            "ringcast_edge_purge_resync_dropped_total",
            "Cache entries dropped because a (re)subscription may have missed purges.",
            get(&self.resync_dropped),
        )
        .counter(
            "ringcast_edge_visibility_lookups_total",
            "Visibility lookups sent to Redis (one per video and TTL; concurrent misses share one).",
            get(&self.visibility_lookups),
        )
        .counter(
            "ringcast_edge_visibility_lookup_errors_total",
            "Visibility lookups that failed or timed out.",
            get(&self.visibility_lookup_errors),
        )
        .counter(
            "ringcast_edge_visibility_stale_served_total",
            "Requests judged on an expired visibility because Redis failed (stale-if-error).",
            get(&self.visibility_stale_served),
        )
        .gauge(
            "ringcast_edge_visibility_cache_entries",
            "Videos whose visibility the edge holds.",
            visibility_entries,
        );
        let name = "ringcast_edge_playback_denied_total";
        w.family(
            name,
            "Object requests refused by visibility: private without a valid signature (403), or visibility unknown while Redis fails (503).",
            Kind::Counter,
        );
        w.sample(name, &[("reason", "private")], get(&self.denied_private));
        w.sample(
            name,
            &[("reason", "unavailable")],
            get(&self.denied_unavailable),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_declared_and_sampled() {
        let s = PlatformStats::default();
        PlatformStats::bump(&s.purge_applied);
        PlatformStats::bump(&s.denied_private);
        s.subscribed.store(true, Relaxed);
        let mut w = Writer::with_capacity(1024);
        s.render(7, &mut w);
        let text = w.finish();
        let sample = |series: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<u64>()
                    .ok()
            })
        };
        assert_eq!(
            sample("ringcast_edge_purge_messages_applied_total"),
            Some(1)
        );
        assert_eq!(sample("ringcast_edge_purge_subscribed"), Some(1));
        assert_eq!(sample("ringcast_edge_visibility_cache_entries"), Some(7));
        assert_eq!(
            sample("ringcast_edge_playback_denied_total{reason=\"private\"}"),
            Some(1)
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or(line);
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
