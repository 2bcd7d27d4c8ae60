//! Counters of the live path, and their Prometheus text for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_proto::prometheus::{HistogramFamily, Writer};

/// Upper bounds (s) of the edge's wake-up buckets: around a millisecond when the cores are
/// free, tens of milliseconds under load.
pub const WAKE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
];

/// The edge's hops of the live latency budget, per rendition (docs/live-latency.md):
/// - `ringcast_edge_live_event_to_wake_seconds{rendition}`: Redis entry time of the event that
///   satisfied a held blocking playlist request → the request woken with it (Redis delivery,
///   the follower's apply and publish, the core's relay; millisecond resolution);
/// - `ringcast_edge_live_wake_to_response_seconds{rendition}`: woken → the response (rendered
///   or from the core's render cache) handed to the connection for its first byte;
/// - `ringcast_edge_live_event_to_part_release_seconds{rendition}`: Redis entry time → a held
///   GET of the preload-hinted part released to the object path.
#[derive(Debug)]
pub struct LiveLatency {
    pub event_to_wake: HistogramFamily,
    pub wake_to_response: HistogramFamily,
    pub event_to_part_release: HistogramFamily,
}

impl Default for LiveLatency {
    fn default() -> Self {
        Self {
            event_to_wake: HistogramFamily::new(&WAKE_BUCKETS),
            wake_to_response: HistogramFamily::new(&WAKE_BUCKETS),
            event_to_part_release: HistogramFamily::new(&WAKE_BUCKETS),
        }
    }
}

impl LiveLatency {
    fn render(&self, w: &mut Writer) {
        for (fam, name, help) in [
            (&self.event_to_wake, "ringcast_edge_live_event_to_wake_seconds", "Redis entry time of the live event that satisfied a held blocking playlist request to the request woken."),
            (&self.wake_to_response, "ringcast_edge_live_wake_to_response_seconds", "Held blocking playlist request woken to its response handed to the connection."),
            (&self.event_to_part_release, "ringcast_edge_live_event_to_part_release_seconds", "Redis entry time of a part event to the held GET of that preload-hinted part released."),
        ] {
            fam.render(w, name, help, "rendition");
        }
    }
}

/// Counters of the live path (rendered into `/metrics`).
#[derive(Debug, Default)]
pub struct LiveStats {
    pub followers_started: AtomicU64,
    pub followers_stopped: AtomicU64,
    pub events_applied: AtomicU64,
    pub events_skipped: AtomicU64,
    pub resyncs: AtomicU64,
    pub redis_errors: AtomicU64,
    pub playlists: AtomicU64,
    pub blocked: AtomicU64,
    pub blocked_unavailable: AtomicU64,
    pub fresh_holds: AtomicU64,
    pub part_waits: AtomicU64,
    pub renders: AtomicU64,
    pub part_prefetches: AtomicU64,
    /// The per-hop latency histograms.
    pub latency: LiveLatency,
}

impl LiveStats {
    /// Prometheus text of the counters, with `followed` renditions that have a live state.
    pub fn render(&self, followed: usize, w: &mut Writer) {
        let s = self;
        for (name, help, v) in [
            (
                "live_followers_started_total",
                "Event-stream followers started (one per rendition requested).",
                &s.followers_started,
            ),
            (
                "live_followers_stopped_total",
                "Followers stopped after being idle (or at shutdown).",
                &s.followers_stopped,
            ),
            (
                "live_events_applied_total",
                "Live events that changed a rendition's state.",
                &s.events_applied,
            ),
            (
                "live_events_skipped_total",
                "Live events dropped (undecodable, before Start, not applicable).",
                &s.events_skipped,
            ),
            (
                "live_resyncs_total",
                "Full re-reads of a stream after a lost or reordered event.",
                &s.resyncs,
            ),
            (
                "live_redis_errors_total",
                "Redis commands of the followers that failed.",
                &s.redis_errors,
            ),
            (
                "live_playlists_total",
                "Playlists rendered from the live model (responses, including coalesced ones).",
                &s.playlists,
            ),
            (
                "live_blocked_total",
                "Playlist requests held for a part or segment (blocking reload).",
                &s.blocked,
            ),
            (
                "live_blocked_unavailable_total",
                "Held requests answered 503 after three target durations.",
                &s.blocked_unavailable,
            ),
            (
                "live_fresh_holds_total",
                "Playlist requests without directives held until the next part was listed (a fresh playlist for a player's start).",
                &s.fresh_holds,
            ),
            (
                "live_part_waits_total",
                "GETs of the preload-hinted part held until it was announced.",
                &s.part_waits,
            ),
            (
                "live_renders_total",
                "Playlist renders (identical requests of one state share one).",
                &s.renders,
            ),
            (
                "live_part_prefetches_total",
                "Newly announced parts loaded into the memory cache before players asked.",
                &s.part_prefetches,
            ),
        ] {
            w.counter(&format!("ringcast_edge_{name}"), help, v.load(Relaxed));
        }
        w.gauge(
            "ringcast_edge_live_renditions",
            "Renditions followed with a live state.",
            followed,
        );
        self.latency.render(w);
    }
}
