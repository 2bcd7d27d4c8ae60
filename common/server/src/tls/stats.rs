//! TLS counters: handshakes (full, resumed, failed) and where each connection's encryption ran.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_proto::prometheus::{Kind, Writer};

/// Counters of the TLS listener (all workers).
#[derive(Debug, Default)]
pub struct TlsStats {
    handshakes_full: AtomicU64,
    handshakes_resumed: AtomicU64,
    handshakes_failed: AtomicU64,
    kernel: AtomicU64,
    user_space: AtomicU64,
    kernel_failed: AtomicU64,
}

impl TlsStats {
    pub fn handshake_done(&self, resumed: bool) {
        if resumed {
            &self.handshakes_resumed
        } else {
            &self.handshakes_full
        }
        .fetch_add(1, Relaxed);
    }

    pub fn handshake_failed(&self) {
        self.handshakes_failed.fetch_add(1, Relaxed);
    }

    /// A connection went on with kernel TLS.
    pub fn kernel(&self) {
        self.kernel.fetch_add(1, Relaxed);
    }

    /// A connection went on with rustls in user space (kTLS off, refused or not possible).
    pub fn user_space(&self) {
        self.user_space.fetch_add(1, Relaxed);
    }

    /// The kernel took the ULP but not the keys: the connection was closed.
    pub fn kernel_failed(&self) {
        self.kernel_failed.fetch_add(1, Relaxed);
    }

    /// `[full, resumed, failed]` handshakes.
    pub fn handshakes(&self) -> [u64; 3] {
        [
            self.handshakes_full.load(Relaxed),
            self.handshakes_resumed.load(Relaxed),
            self.handshakes_failed.load(Relaxed),
        ]
    }

    /// Connections by where TLS ran: `[kernel, user_space, kernel_failed]`.
    pub fn modes(&self) -> [u64; 3] {
        [
            self.kernel.load(Relaxed),
            self.user_space.load(Relaxed),
            self.kernel_failed.load(Relaxed),
        ]
    }

    /// The Prometheus families `{prefix}_tls_handshakes_total{result}` and
    /// `{prefix}_tls_connections_total{mode}` (the same for every service).
    pub fn render(&self, prefix: &str, w: &mut Writer) {
        let name = format!("{prefix}_tls_handshakes_total");
        w.family(
            &name,
            "TLS handshakes on the HTTPS listener by result (full, resumed, failed).",
            Kind::Counter,
        );
        for (result, v) in ["full", "resumed", "failed"].iter().zip(self.handshakes()) {
            w.sample(&name, &[("result", result)], v);
        }
        let name = format!("{prefix}_tls_connections_total");
        w.family(
            &name,
            "HTTPS connections by where encryption ran: kernel (kTLS, file bodies keep sendfile) \
             or user_space (rustls: kTLS off or refused); kernel_failed were closed.",
            Kind::Counter,
        );
        for (mode, v) in ["kernel", "user_space", "kernel_failed"]
            .iter()
            .zip(self.modes())
        {
            w.sample(&name, &[("mode", mode)], v);
        }
    }
}
