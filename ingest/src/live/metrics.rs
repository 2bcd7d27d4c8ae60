//! Counters of the live push path, rendered with the other ingest metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use ringcast_proto::prometheus::Writer;

/// Live push and pull counters (all monotonic).
#[derive(Debug, Default)]
pub struct LiveMetrics {
    /// Streams started (first publisher of a version).
    pub streams_started: AtomicU64,
    /// Publishers that continued a stream within its grace period.
    pub reconnects: AtomicU64,
    /// Live body bytes received from publishers.
    pub bytes_received: AtomicU64,
    /// Bytes written to pullers.
    pub bytes_pulled: AtomicU64,
    /// Pullers disconnected for falling behind the buffer.
    pub pullers_dropped: AtomicU64,
}

impl LiveMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Append the Prometheus text.
    pub fn render(&self, w: &mut Writer) {
        for (name, help, c) in [
            (
                "streams_started",
                "Live streams started.",
                &self.streams_started,
            ),
            (
                "reconnects",
                "Live publishers that continued a stream within its grace period.",
                &self.reconnects,
            ),
            (
                "bytes_received",
                "Live push body bytes received.",
                &self.bytes_received,
            ),
            (
                "bytes_pulled",
                "Live stream bytes sent to pullers.",
                &self.bytes_pulled,
            ),
            (
                "pullers_dropped",
                "Live pullers disconnected for falling behind the buffer.",
                &self.pullers_dropped,
            ),
        ] {
            let name = format!("ringcast_ingest_live_{name}_total");
            w.counter(&name, help, c.load(Ordering::Relaxed));
        }
    }
}
