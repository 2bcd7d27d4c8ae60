//! Process-wide counters shared by every worker, rendered as Prometheus text (exposition format
//! 0.0.4) on `/metrics`.
//!
//! Plain relaxed atomics: each increment is one uncontended-ish `lock xadd`, which is cheaper than
//! per-worker shards plus aggregation at this request rate, and scrapes tolerate the slight skew
//! between counters read one after another.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ringcast_proto::prometheus::{Kind, Writer};
use ringcast_server::ServerStats;

/// Which monoio driver the workers run on.
pub use ringcast_server::Driver;

/// All counters of one edge process.
#[derive(Debug, Default)]
pub struct Metrics {
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_coalesced: AtomicU64,
    origin_fetches: AtomicU64,
    origin_errors: AtomicU64,
    disk_hits: AtomicU64,
    disk_cold_reads: AtomicU64,
    disk_fills: AtomicU64,
    disk_fill_errors: AtomicU64,
    stale_served: AtomicU64,
    driver: OnceLock<Driver>,
    /// Requests, responses, bytes written and connections, counted by the server shell.
    pub server: Arc<ServerStats>,
    /// Entries dropped by purges.
    purged: AtomicU64,
    /// Access-log batches dropped because the logger thread fell behind.
    access_log_dropped: AtomicU64,
    /// Origin fetch latency histogram: counts per bucket of [`ORIGIN_BUCKETS`] (+Inf last).
    origin_latency: [AtomicU64; ORIGIN_BUCKETS.len() + 1],
    /// Sum of origin fetch latencies in microseconds.
    origin_latency_sum_us: AtomicU64,
}

/// Upper bounds (seconds) of the origin fetch latency histogram buckets.
pub const ORIGIN_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counter values at one moment (for tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_coalesced: u64,
    pub origin_fetches: u64,
    pub origin_errors: u64,
    pub bytes_sent: u64,
    pub disk_hits: u64,
    pub disk_fills: u64,
    pub stale_served: u64,
    pub purged: u64,
    pub access_log_dropped: u64,
    pub open_connections: i64,
    pub inflight: i64,
}

/// Gauges read from elsewhere at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Bytes held by the memory cache.
    pub cache_bytes: u64,
    /// Capacity of the memory cache in bytes.
    pub cache_capacity_bytes: u64,
    /// Entries in the memory cache.
    pub cache_entries: u64,
    /// Bytes of the files in the disk tier (0 without one).
    pub disk_bytes: u64,
    /// Capacity of the disk tier in bytes (0 without one).
    pub disk_capacity_bytes: u64,
    /// Files in the disk tier.
    pub disk_entries: u64,
    /// Files evicted from the disk tier since start.
    pub disk_evictions: u64,
}

impl Metrics {
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    pub fn cache_coalesced(&self) {
        self.cache_coalesced.fetch_add(1, Relaxed);
    }

    pub fn origin_fetch(&self) {
        self.origin_fetches.fetch_add(1, Relaxed);
    }

    pub fn origin_error(&self) {
        self.origin_errors.fetch_add(1, Relaxed);
    }

    pub fn disk_hit(&self) {
        self.disk_hits.fetch_add(1, Relaxed);
    }

    pub fn disk_cold_read(&self) {
        self.disk_cold_reads.fetch_add(1, Relaxed);
    }

    pub fn disk_fill(&self) {
        self.disk_fills.fetch_add(1, Relaxed);
    }

    pub fn disk_fill_error(&self) {
        self.disk_fill_errors.fetch_add(1, Relaxed);
    }

    pub fn stale_served(&self) {
        self.stale_served.fetch_add(1, Relaxed);
    }

    pub fn purged(&self, n: u64) {
        self.purged.fetch_add(n, Relaxed);
    }

    pub fn access_log_dropped(&self) {
        self.access_log_dropped.fetch_add(1, Relaxed);
    }

    /// Record how long one origin fetch took (success or failure).
    pub fn origin_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = ORIGIN_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(ORIGIN_BUCKETS.len());
        self.origin_latency[i].fetch_add(1, Relaxed);
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.origin_latency_sum_us.fetch_add(us, Relaxed);
    }

    /// Record the driver (the first worker to start wins; all workers build the same kind).
    pub fn set_driver(&self, driver: Driver) {
        let _ = self.driver.set(driver);
    }

    pub fn driver(&self) -> Option<Driver> {
        self.driver.get().copied()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.server.requests(),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            cache_coalesced: self.cache_coalesced.load(Relaxed),
            origin_fetches: self.origin_fetches.load(Relaxed),
            origin_errors: self.origin_errors.load(Relaxed),
            bytes_sent: self.server.bytes(),
            disk_hits: self.disk_hits.load(Relaxed),
            disk_fills: self.disk_fills.load(Relaxed),
            stale_served: self.stale_served.load(Relaxed),
            purged: self.purged.load(Relaxed),
            access_log_dropped: self.access_log_dropped.load(Relaxed),
            open_connections: self.server.open_connections(),
            inflight: self.server.inflight(),
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, gauges: Gauges) -> String {
        let srv = &self.server;
        let get = |v: &AtomicU64| v.load(Relaxed);
        let mut w = Writer::with_capacity(2048);
        w.counter(
            "ringcast_edge_requests_total",
            "HTTP requests parsed.",
            srv.requests(),
        );
        let name = "ringcast_edge_responses_total";
        w.family(name, "HTTP responses sent, by status class.", Kind::Counter);
        for (i, v) in srv.responses().iter().enumerate() {
            w.sample(name, &[("class", &format!("{}xx", i + 1))], v);
        }
        w.counter(
            "ringcast_edge_cache_hits_total",
            "Object requests answered from the memory cache without waiting.",
            get(&self.cache_hits),
        )
        .counter(
            "ringcast_edge_cache_misses_total",
            "Object requests that did not find a fresh entry in the memory cache.",
            get(&self.cache_misses),
        )
        .counter(
            "ringcast_edge_cache_coalesced_total",
            "Misses answered by another request's origin fetch (single-flight).",
            get(&self.cache_coalesced),
        )
        .counter(
            "ringcast_edge_origin_fetches_total",
            "Fetches from the object store.",
            get(&self.origin_fetches),
        )
        .counter(
            "ringcast_edge_origin_errors_total",
            "Origin fetches that failed or timed out.",
            get(&self.origin_errors),
        )
        .counter(
            "ringcast_edge_bytes_sent_total",
            "Bytes written to clients (heads and bodies).",
            srv.bytes(),
        )
        .counter(
            "ringcast_edge_connections_total",
            "Client connections accepted.",
            srv.connections(),
        )
        .gauge(
            "ringcast_edge_cache_bytes",
            "Bytes held by the memory cache.",
            gauges.cache_bytes,
        )
        .gauge(
            "ringcast_edge_cache_capacity_bytes",
            "Capacity of the memory cache.",
            gauges.cache_capacity_bytes,
        )
        .gauge(
            "ringcast_edge_cache_entries",
            "Entries in the memory cache.",
            gauges.cache_entries,
        )
        .counter(
            "ringcast_edge_disk_hits_total",
            "Object requests answered from the disk tier (sendfile).",
            get(&self.disk_hits),
        )
        .counter(
            "ringcast_edge_disk_cold_reads_total",
            "Disk-tier files read into the page cache off the workers before sendfile.",
            get(&self.disk_cold_reads),
        )
        .counter(
            "ringcast_edge_disk_fills_total",
            "Objects written to the disk tier.",
            get(&self.disk_fills),
        )
        .counter(
            "ringcast_edge_disk_fill_errors_total",
            "Disk-tier writes that failed (the object was kept in memory instead).",
            get(&self.disk_fill_errors),
        )
        .counter(
            "ringcast_edge_stale_served_total",
            "Expired playlists served while refreshing or while the origin failed.",
            get(&self.stale_served),
        )
        .gauge(
            "ringcast_edge_disk_cache_bytes",
            "Bytes of the files in the disk tier.",
            gauges.disk_bytes,
        )
        .gauge(
            "ringcast_edge_disk_cache_capacity_bytes",
            "Capacity of the disk tier (0: no disk tier).",
            gauges.disk_capacity_bytes,
        )
        .gauge(
            "ringcast_edge_disk_cache_entries",
            "Files in the disk tier.",
            gauges.disk_entries,
        )
        .counter(
            "ringcast_edge_disk_evictions_total",
            "Files evicted from the disk tier since start.",
            gauges.disk_evictions,
        );
        // The same hit/miss counts, labelled by tier (a disk-tier hit was a memory-tier hit on the disk entry's index record).
        let name = "ringcast_edge_cache_lookups_total";
        w.family(
            name,
            "Object cache lookups, by tier and result.",
            Kind::Counter,
        );
        for (result, v) in [("hit", &self.cache_hits), ("miss", &self.cache_misses)] {
            w.sample(name, &[("tier", "memory"), ("result", result)], get(v));
        }
        w.sample(
            name,
            &[("tier", "disk"), ("result", "hit")],
            get(&self.disk_hits),
        );
        w.counter(
            "ringcast_edge_connections_rejected_total",
            "Connections refused with 503 because the worker was at max_connections_per_worker.",
            srv.connections_rejected(),
        )
        .counter(
            "ringcast_edge_purged_entries_total",
            "Cache entries removed by the purge API.",
            get(&self.purged),
        )
        .counter(
            "ringcast_edge_access_log_dropped_total",
            "Access-log batches dropped because the logger thread fell behind.",
            get(&self.access_log_dropped),
        )
        .gauge(
            "ringcast_edge_open_connections",
            "Client connections open right now.",
            srv.open_connections().max(0),
        )
        .gauge(
            "ringcast_edge_inflight_requests",
            "Requests being answered right now.",
            srv.inflight().max(0),
        );
        let counts: Vec<u64> = self.origin_latency.iter().map(get).collect();
        w.histogram(
            "ringcast_edge_origin_fetch_duration_seconds",
            "Origin fetch latency (successes and failures).",
            &ORIGIN_BUCKETS,
            &counts,
            self.origin_latency_sum_us.load(Relaxed) as f64 / 1e6,
        );
        let name = "ringcast_edge_driver_info";
        w.family(
            name,
            "The monoio I/O driver the workers run on.",
            Kind::Gauge,
        );
        if let Some(d) = self.driver() {
            w.sample(name, &[("driver", d.as_str())], 1);
        }
        srv.tls.render("ringcast_edge", &mut w);
        srv.h2.render("ringcast_edge", &mut w);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Value of the sample line `series` (name plus labels) in `text`.
    fn sample(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn renders_counters_gauges_and_driver() {
        let m = Metrics::default();
        m.server.request();
        m.server.request();
        m.server.response(200);
        m.server.response(204);
        m.server.response(404);
        m.server.response(502);
        m.server.response(99); // nonsense statuses land in a class instead of panicking
        m.cache_hit();
        m.cache_miss();
        m.origin_fetch();
        m.server.bytes_sent(1234);
        m.origin_latency(Duration::from_millis(3));
        m.origin_latency(Duration::from_secs(60));
        m.server.connection_opened();
        m.server.request_started();
        m.purged(4);
        m.set_driver(Driver::Legacy);
        m.set_driver(Driver::IoUring); // first one wins
        let text = m.render(Gauges {
            cache_bytes: 77,
            cache_capacity_bytes: 1000,
            cache_entries: 2,
            ..Gauges::default()
        });
        assert_eq!(sample(&text, "ringcast_edge_requests_total"), Some(2));
        assert_eq!(
            sample(&text, "ringcast_edge_responses_total{class=\"1xx\"}"),
            Some(1)
        );
        assert_eq!(
            sample(&text, "ringcast_edge_responses_total{class=\"2xx\"}"),
            Some(2)
        );
        assert_eq!(
            sample(&text, "ringcast_edge_responses_total{class=\"3xx\"}"),
            Some(0)
        );
        assert_eq!(
            sample(&text, "ringcast_edge_responses_total{class=\"4xx\"}"),
            Some(1)
        );
        assert_eq!(
            sample(&text, "ringcast_edge_responses_total{class=\"5xx\"}"),
            Some(1)
        );
        assert_eq!(sample(&text, "ringcast_edge_cache_hits_total"), Some(1));
        assert_eq!(sample(&text, "ringcast_edge_cache_misses_total"), Some(1));
        assert_eq!(sample(&text, "ringcast_edge_origin_fetches_total"), Some(1));
        assert_eq!(sample(&text, "ringcast_edge_origin_errors_total"), Some(0));
        assert_eq!(sample(&text, "ringcast_edge_bytes_sent_total"), Some(1234));
        assert_eq!(sample(&text, "ringcast_edge_cache_bytes"), Some(77));
        let h = "ringcast_edge_origin_fetch_duration_seconds";
        assert_eq!(
            sample(&text, &format!("{h}_bucket{{le=\"0.0025\"}}")),
            Some(0)
        );
        assert_eq!(
            sample(&text, &format!("{h}_bucket{{le=\"0.005\"}}")),
            Some(1)
        );
        assert_eq!(sample(&text, &format!("{h}_bucket{{le=\"5\"}}")), Some(1));
        assert_eq!(
            sample(&text, &format!("{h}_bucket{{le=\"+Inf\"}}")),
            Some(2)
        );
        assert_eq!(sample(&text, &format!("{h}_count")), Some(2));
        assert_eq!(sample(&text, "ringcast_edge_open_connections"), Some(1));
        assert_eq!(sample(&text, "ringcast_edge_inflight_requests"), Some(1));
        assert_eq!(sample(&text, "ringcast_edge_purged_entries_total"), Some(4));
        assert_eq!(
            sample(
                &text,
                "ringcast_edge_cache_lookups_total{tier=\"memory\",result=\"hit\"}"
            ),
            Some(1)
        );
        assert_eq!(
            sample(&text, "ringcast_edge_driver_info{driver=\"legacy\"}"),
            Some(1)
        );
        assert!(!text.contains("io_uring"));
    }

    #[test]
    fn every_series_has_help_and_type() {
        let text = Metrics::default().render(Gauges::default());
        let mut names: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap_or(l))
            // Histogram samples belong to the family declared under the base name.
            .map(|n| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|suf| n.strip_suffix(suf))
                    .find(|b| text.contains(&format!("# TYPE {b} histogram")))
                    .unwrap_or(n)
            })
            .collect();
        names.dedup();
        assert!(names.len() >= 12, "{names:?}");
        for name in names {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
        // No driver yet: the family is declared but has no sample.
        assert!(!text.contains("ringcast_edge_driver_info{"));
    }
}
