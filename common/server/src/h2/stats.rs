//! HTTP/2 counters: connections, streams, streams sent to HTTP/1.1, connections closed by the
//! flood guard (by frame).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_proto::http::h2_guard::Flood;
use ringcast_proto::prometheus::{Kind, Writer};

const FLOODS: [Flood; 9] = [
    Flood::Ping,
    Flood::Settings,
    Flood::Reset,
    Flood::Priority,
    Flood::WindowUpdate,
    Flood::EmptyData,
    Flood::Streams,
    Flood::Continuation,
    Flood::BadPreface,
];

/// Counters of the HTTP/2 connections (all workers).
#[derive(Debug, Default)]
pub struct H2Stats {
    connections: AtomicU64,
    streams: AtomicU64,
    http1_required: AtomicU64,
    floods: [AtomicU64; 9],
}

impl H2Stats {
    pub fn connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    pub fn stream(&self) {
        self.streams.fetch_add(1, Relaxed);
    }

    /// A stream refused with `HTTP_1_1_REQUIRED` (see `Handler::needs_http1`).
    pub fn http1_required(&self) {
        self.http1_required.fetch_add(1, Relaxed);
    }

    pub fn flood(&self, f: Flood) {
        if let Some(i) = FLOODS.iter().position(|x| *x == f) {
            self.floods[i].fetch_add(1, Relaxed);
        }
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }

    pub fn streams(&self) -> u64 {
        self.streams.load(Relaxed)
    }

    /// Connections closed by the flood guard, per frame kind.
    pub fn floods(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        FLOODS
            .iter()
            .zip(&self.floods)
            .map(|(f, n)| (f.as_str(), n.load(Relaxed)))
    }

    /// `{prefix}_h2_connections_total`, `{prefix}_h2_streams_total`,
    /// `{prefix}_h2_http1_required_total`, `{prefix}_h2_floods_total{frame}`.
    pub fn render(&self, prefix: &str, w: &mut Writer) {
        w.counter(
            &format!("{prefix}_h2_connections_total"),
            "HTTP/2 connections (ALPN h2).",
            self.connections(),
        )
        .counter(
            &format!("{prefix}_h2_streams_total"),
            "HTTP/2 streams (requests) answered or reset.",
            self.streams(),
        )
        .counter(
            &format!("{prefix}_h2_http1_required_total"),
            "HTTP/2 streams refused with HTTP_1_1_REQUIRED (a streamed or too large body), \
             for the client to send again over HTTP/1.1.",
            self.http1_required.load(Relaxed),
        );
        let name = format!("{prefix}_h2_floods_total");
        w.family(
            &name,
            "HTTP/2 connections closed for exceeding a frame budget, by frame type.",
            Kind::Counter,
        );
        for (frame, n) in self.floods() {
            w.sample(&name, &[("frame", frame)], n);
        }
    }
}
