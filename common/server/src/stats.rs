//! The counters the shell keeps for every service: requests, responses by status class, bytes
//! written, connections. Each service renders them under its own metric names.
//!
//! Plain relaxed atomics shared by the workers: one uncontended-ish `lock xadd` per event was
//! measured cheaper on the edge than per-worker shards plus aggregation at scrape time, and a
//! scrape tolerates the slight skew between counters read one after another.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::Driver;

/// Connection and request counters of one server (all workers).
#[derive(Debug, Default)]
pub struct ServerStats {
    requests: AtomicU64,
    /// Index 0 = 1xx … 4 = 5xx.
    responses: [AtomicU64; 5],
    bytes_sent: AtomicU64,
    connections: AtomicU64,
    open_connections: AtomicI64,
    connections_rejected: AtomicU64,
    inflight: AtomicI64,
    workers_uring: AtomicU64,
    workers_legacy: AtomicU64,
    /// The TLS listener's counters (all zero without TLS).
    pub tls: crate::tls::TlsStats,
    /// The HTTP/2 connections' counters.
    pub h2: crate::h2::H2Stats,
}

impl ServerStats {
    /// A request head was received (valid or not).
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// A final response was sent with `status` (nonsense statuses count in the nearest class).
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub fn bytes_sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Relaxed);
    }

    /// A connection was accepted (served or rejected).
    pub fn connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }

    /// A connection got 503 because its worker was at `max_connections`.
    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Relaxed);
    }

    pub fn request_started(&self) {
        self.inflight.fetch_add(1, Relaxed);
    }

    pub fn request_finished(&self) {
        self.inflight.fetch_sub(1, Relaxed);
    }

    /// A worker started on `driver`.
    pub fn worker_started(&self, driver: Driver) {
        match driver {
            Driver::IoUring => &self.workers_uring,
            Driver::Legacy => &self.workers_legacy,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// Responses per class, `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub fn responses(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.responses[i].load(Relaxed))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_sent.load(Relaxed)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Relaxed)
    }

    pub fn connections_rejected(&self) -> u64 {
        self.connections_rejected.load(Relaxed)
    }

    pub fn inflight(&self) -> i64 {
        self.inflight.load(Relaxed)
    }

    /// Workers started per driver, `[(io_uring, n), (legacy, n)]`.
    pub fn workers_by_driver(&self) -> [(Driver, u64); 2] {
        [
            (Driver::IoUring, self.workers_uring.load(Relaxed)),
            (Driver::Legacy, self.workers_legacy.load(Relaxed)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_driver() {
        let s = ServerStats::default();
        for status in [99, 200, 204, 404, 502, 700] {
            s.response(status);
        }
        assert_eq!(s.responses(), [1, 2, 0, 1, 2]);
        s.worker_started(Driver::Legacy);
        assert_eq!(
            s.workers_by_driver(),
            [(Driver::IoUring, 0), (Driver::Legacy, 1)]
        );
        s.connection_opened();
        s.connection_closed();
        assert_eq!(s.open_connections(), 0);
    }
}
