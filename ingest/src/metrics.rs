//! Process-wide counters rendered as Prometheus text (`/metrics`). Plain relaxed atomics shared by
//! all cores: uploads are few and bytes are counted once per PATCH, so there is no contention
//! worth sharding for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringcast_proto::prometheus::{Kind, Writer};
use ringcast_server::ServerStats;

/// Why an upload failed, the label of `ringcast_ingest_upload_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadErrorKind {
    /// The finished file was not a known video container.
    Rejected,
    /// Storing the source in the object store failed.
    Store,
    /// Enqueuing the job failed.
    Queue,
    /// Writing the spool file or state failed.
    Spool,
    /// The client went away or stalled in the middle of a PATCH body.
    Interrupted,
    /// A chunk did not match its `Upload-Checksum` and was discarded (460).
    Checksum,
    /// A PATCH stopped because a newer request took its upload over (`crate::tus::lock`).
    TakenOver,
}

impl UploadErrorKind {
    const ALL: [UploadErrorKind; 7] = [
        UploadErrorKind::Rejected,
        UploadErrorKind::Store,
        UploadErrorKind::Queue,
        UploadErrorKind::Spool,
        UploadErrorKind::Interrupted,
        UploadErrorKind::Checksum,
        UploadErrorKind::TakenOver,
    ];

    fn as_str(self) -> &'static str {
        match self {
            UploadErrorKind::Rejected => "rejected",
            UploadErrorKind::Store => "store",
            UploadErrorKind::Queue => "queue",
            UploadErrorKind::Spool => "spool",
            UploadErrorKind::Interrupted => "interrupted",
            UploadErrorKind::Checksum => "checksum",
            UploadErrorKind::TakenOver => "taken_over",
        }
    }
}

/// The ingest counters.
#[derive(Debug, Default)]
pub struct Metrics {
    uploads_created: AtomicU64,
    uploads_completed: AtomicU64,
    bytes_received: AtomicU64,
    uploads_terminated: AtomicU64,
    uploads_expired: AtomicU64,
    upload_records_swept: AtomicU64,
    spool_direct_patches: AtomicU64,
    spool_direct_fallbacks: AtomicU64,
    sweep_examined: AtomicU64,
    lock_takeovers: AtomicU64,
    upload_errors: [AtomicU64; UploadErrorKind::ALL.len()],
    /// Requests, responses and workers per driver, counted by the server shell.
    pub server: Arc<ServerStats>,
    /// Live push and pull counters.
    pub live: crate::live::metrics::LiveMetrics,
    /// Admission refusals, virus scans, small-buffer PATCHes.
    pub admission: crate::admission::metrics::AdmissionMetrics,
}

impl Metrics {
    pub fn upload_created(&self) {
        self.uploads_created.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upload_completed(&self) {
        self.uploads_completed.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload deleted by its client (tus termination).
    pub fn upload_terminated(&self) {
        self.uploads_terminated.fetch_add(1, Ordering::Relaxed);
    }

    /// An expired upload deleted by the sweep (tus expiration).
    pub fn upload_expired(&self) {
        self.uploads_expired.fetch_add(1, Ordering::Relaxed);
    }

    /// A finished or rejected upload's record deleted by the sweep after its retention.
    pub fn upload_record_swept(&self) {
        self.upload_records_swept.fetch_add(1, Ordering::Relaxed);
    }

    /// A PATCH's bytes were spooled: with O_DIRECT (`direct`), and/or after the filesystem
    /// refused O_DIRECT (`fell_back`; `crate::tus::spool_writer`).
    pub fn spool_written(&self, direct: bool, fell_back: bool) {
        if direct {
            self.spool_direct_patches.fetch_add(1, Ordering::Relaxed);
        }
        if fell_back {
            self.spool_direct_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Expiry index entries a sweep run read.
    pub fn sweep_examined(&self, n: u64) {
        self.sweep_examined.fetch_add(n, Ordering::Relaxed);
    }

    /// A request took an upload over from a request whose client went silent.
    pub fn lock_takeover(&self) {
        self.lock_takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// Upload body bytes written to the spool.
    pub fn bytes_received(&self, n: u64) {
        self.bytes_received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn upload_error(&self, kind: UploadErrorKind) {
        // Discriminants are 0..ALL.len() in declaration order, matching `upload_errors`.
        self.upload_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut w = Writer::with_capacity(1024);
        w.counter(
            "ringcast_ingest_requests_total",
            "HTTP requests received.",
            self.server.requests(),
        )
        .counter(
            "ringcast_ingest_uploads_created_total",
            "tus uploads created.",
            get(&self.uploads_created),
        )
        .counter(
            "ringcast_ingest_uploads_completed_total",
            "Uploads stored and enqueued for transcoding.",
            get(&self.uploads_completed),
        )
        .counter(
            "ringcast_ingest_uploads_terminated_total",
            "Uploads deleted by their client (tus termination).",
            get(&self.uploads_terminated),
        )
        .counter(
            "ringcast_ingest_uploads_expired_total",
            "Unfinished uploads deleted by the expiry sweep.",
            get(&self.uploads_expired),
        )
        .counter(
            "ringcast_ingest_upload_records_swept_total",
            "Finished or rejected upload records deleted by the sweep after their retention.",
            get(&self.upload_records_swept),
        )
        .counter(
            "ringcast_ingest_upload_sweep_examined_total",
            "Expiry index entries the sweep read (only due ones; never a full scan).",
            get(&self.sweep_examined),
        )
        .counter(
            "ringcast_ingest_spool_direct_patches_total",
            "PATCH bodies spooled with O_DIRECT and aligned buffers.",
            get(&self.spool_direct_patches),
        )
        .counter(
            "ringcast_ingest_spool_direct_fallbacks_total",
            "PATCH bodies spooled buffered because the filesystem refused O_DIRECT.",
            get(&self.spool_direct_fallbacks),
        )
        .counter(
            "ringcast_ingest_upload_lock_takeovers_total",
            "Uploads taken over from a PATCH whose client went silent.",
            get(&self.lock_takeovers),
        )
        .counter(
            "ringcast_ingest_bytes_received_total",
            "Upload body bytes written to the spool.",
            get(&self.bytes_received),
        );
        let name = "ringcast_ingest_upload_errors_total";
        w.family(
            name,
            "Failed or interrupted uploads by kind.",
            Kind::Counter,
        );
        for kind in UploadErrorKind::ALL {
            let c = &self.upload_errors[kind as usize];
            w.sample(name, &[("kind", kind.as_str())], get(c));
        }
        let name = "ringcast_ingest_driver_info";
        w.family(
            name,
            "Workers per monoio I/O driver (io_uring, or legacy = epoll fallback).",
            Kind::Gauge,
        );
        for (driver, n) in self.server.workers_by_driver() {
            if n > 0 {
                w.sample(name, &[("driver", driver.as_str())], n);
            }
        }
        self.live.render(&mut w);
        self.admission.render(&mut w);
        self.server.tls.render("ringcast_ingest", &mut w);
        self.server.h2.render("ringcast_ingest", &mut w);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.server.request();
        m.server.request();
        m.bytes_received(10);
        m.upload_error(UploadErrorKind::Rejected);
        m.server.worker_started(ringcast_server::Driver::Legacy);
        let text = m.render();
        assert!(
            text.contains("ringcast_ingest_requests_total 2\n"),
            "{text}"
        );
        assert!(text.contains("ringcast_ingest_bytes_received_total 10\n"));
        assert!(text.contains("ringcast_ingest_upload_errors_total{kind=\"rejected\"} 1\n"));
        assert!(text.contains("ringcast_ingest_upload_errors_total{kind=\"store\"} 0\n"));
        assert!(text.contains("ringcast_ingest_driver_info{driver=\"legacy\"} 1\n"));
        assert!(!text.contains("driver=\"io_uring\""));
        assert!(
            text.contains("ringcast_ingest_live_streams_started_total 0\n"),
            "{text}"
        );
    }
}
