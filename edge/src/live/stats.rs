//! Counters of the live path, and their Prometheus text for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_proto::prometheus::Writer;

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
    pub part_waits: AtomicU64,
    pub renders: AtomicU64,
    pub part_prefetches: AtomicU64,
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
    }
}
