//! Flood limits for one HTTP/2 connection, sans-IO: the shell feeds every plaintext byte the
//! client sends (after TLS) and this splits it into frames by their 9-byte headers and counts
//! the frame types the known attacks abuse. The h2 library bounds what it keeps (concurrent
//! streams, header list size, pending resets); this bounds the *work* a client can make the
//! server do per second with frames that cost little to send:
//!
//! - PING (RFC 9113 §6.7) and SETTINGS (§6.5) each oblige an answer frame (CVE-2019-9512,
//!   -9515);
//! - RST_STREAM right after HEADERS ("rapid reset", CVE-2023-44487) starts and cancels
//!   requests without the stream limit ever binding;
//! - CONTINUATION frames without END_HEADERS (the 2024 "CONTINUATION flood") make the peer
//!   buffer and decode a header block that never ends;
//! - PRIORITY, WINDOW_UPDATE and empty DATA frames (CVE-2019-9513, -9517, -9518) cost a
//!   frame's processing each and carry nothing.
//!
//! Counts are per fixed one-second window (`now` comes from the caller); over any limit the
//! verdict names the frame type and the connection is closed.

use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4), skipped before the first frame.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;

/// Per-second (and per-header-block) budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Limits {
    pub pings_per_sec: u32,
    pub settings_per_sec: u32,
    pub resets_per_sec: u32,
    pub priorities_per_sec: u32,
    pub window_updates_per_sec: u32,
    pub empty_data_per_sec: u32,
    /// New streams (HEADERS) per second.
    pub streams_per_sec: u32,
    /// CONTINUATION frames one header block may use.
    pub continuations_per_block: u32,
}

impl Default for H2Limits {
    fn default() -> Self {
        Self {
            pings_per_sec: 20,
            settings_per_sec: 20,
            resets_per_sec: 100,
            priorities_per_sec: 200,
            // A fast download makes the client send these often; generous.
            window_updates_per_sec: 4000,
            empty_data_per_sec: 100,
            // Requests, each answered: a backstop against streams opened faster than any
            // client could be served, not a rate limit. It must stay well above what one busy
            // connection legitimately does: h2load -c1 -m16 reaches ≈70k req/s on one core of
            // this machine over h2c. (It was 20 000, read off a benchmark that this very limit
            // throttled: h2load's connections were closed after 20 000 requests each and the
            // edge sat idle for the rest of the run — docs/BENCHMARKS.md, 2026-12-06 13:00.)
            streams_per_sec: 200_000,
            continuations_per_block: 16,
        }
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    Ping,
    Settings,
    Reset,
    Priority,
    WindowUpdate,
    EmptyData,
    Streams,
    Continuation,
    /// Not HTTP/2: the preface did not match.
    BadPreface,
}

impl Flood {
    /// The label of the `*_h2_floods_total{frame}` counter.
    pub fn as_str(self) -> &'static str {
        match self {
            Flood::Ping => "ping",
            Flood::Settings => "settings",
            Flood::Reset => "rst_stream",
            Flood::Priority => "priority",
            Flood::WindowUpdate => "window_update",
            Flood::EmptyData => "empty_data",
            Flood::Streams => "headers",
            Flood::Continuation => "continuation",
            Flood::BadPreface => "preface",
        }
    }
}

/// The guard of one connection (see the module docs).
#[derive(Debug)]
pub struct FrameGuard {
    limits: H2Limits,
    /// Preface bytes still to check.
    preface_at: usize,
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// Inside a header block (HEADERS without END_HEADERS seen): CONTINUATIONs so far.
    in_block: Option<u32>,
    window_start: Option<Instant>,
    counts: [u32; 7],
}

impl FrameGuard {
    pub fn new(limits: H2Limits) -> Self {
        Self {
            limits,
            preface_at: 0,
            header: [0; 9],
            header_len: 0,
            skip: 0,
            in_block: None,
            window_start: None,
            counts: [0; 7],
        }
    }

    /// Account for `bytes` received at `now`; `Err` once a limit is exceeded (the connection
    /// must then be closed; further calls keep failing).
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) -> Result<(), Flood> {
        if self
            .window_start
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            self.window_start = Some(now);
            self.counts = [0; 7];
        }
        while self.preface_at < PREFACE.len() && !bytes.is_empty() {
            if bytes[0] != PREFACE[self.preface_at] {
                return Err(Flood::BadPreface);
            }
            self.preface_at += 1;
            bytes = &bytes[1..];
        }
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64) as usize;
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 9 {
                self.header_len = 0;
                let h = self.header;
                let len = u64::from(h[0]) << 16 | u64::from(h[1]) << 8 | u64::from(h[2]);
                self.skip = len;
                self.frame(h[3], h[4], len)?;
            }
        }
        Ok(())
    }

    fn frame(&mut self, kind: u8, flags: u8, len: u64) -> Result<(), Flood> {
        let l = self.limits;
        let (slot, limit, flood) = match kind {
            PING if flags & FLAG_ACK == 0 => (0, l.pings_per_sec, Flood::Ping),
            SETTINGS if flags & FLAG_ACK == 0 => (1, l.settings_per_sec, Flood::Settings),
            RST_STREAM => (2, l.resets_per_sec, Flood::Reset),
            PRIORITY => (3, l.priorities_per_sec, Flood::Priority),
            WINDOW_UPDATE => (4, l.window_updates_per_sec, Flood::WindowUpdate),
            DATA if len == 0 && flags & FLAG_END_STREAM == 0 => {
                (5, l.empty_data_per_sec, Flood::EmptyData)
            }
            HEADERS => {
                self.in_block = (flags & FLAG_END_HEADERS == 0).then_some(0);
                (6, l.streams_per_sec, Flood::Streams)
            }
            CONTINUATION => {
                let n = self.in_block.map_or(1, |n| n + 1);
                if n > l.continuations_per_block {
                    return Err(Flood::Continuation);
                }
                self.in_block = (flags & FLAG_END_HEADERS == 0).then_some(n);
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.counts[slot] += 1;
        if self.counts[slot] > limit {
            return Err(flood);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    fn guard(now: Instant) -> FrameGuard {
        let mut g = FrameGuard::new(H2Limits::default());
        g.feed(PREFACE, now).expect("preface");
        g
    }

    #[test]
    fn ordinary_traffic_passes_split_anywhere() {
        let mut g = FrameGuard::new(H2Limits::default());
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(SETTINGS, 0, &[0; 12]));
        wire.extend(frame(WINDOW_UPDATE, 0, &[0, 0, 1, 0]));
        for _ in 0..10 {
            wire.extend(frame(
                HEADERS,
                FLAG_END_HEADERS | FLAG_END_STREAM,
                &[0x82; 30],
            ));
        }
        wire.extend(frame(SETTINGS, FLAG_ACK, &[]));
        wire.extend(frame(DATA, FLAG_END_STREAM, &[]));
        let now = Instant::now();
        // One byte at a time: frame headers split across reads.
        for b in &wire {
            g.feed(std::slice::from_ref(b), now)
                .expect("ordinary traffic");
        }
    }

    #[test]
    fn a_busy_connection_is_not_a_flood() {
        // 100k requests within one second on one connection: a fast client (h2load -m16 does
        // ≈70k/s on one core here); the old 20k budget closed such connections mid-run.
        let now = Instant::now();
        let mut g = guard(now);
        let request = frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, &[0x82; 20]);
        let burst: Vec<u8> = (0..1000).flat_map(|_| request.iter().copied()).collect();
        for i in 0..100u64 {
            g.feed(&burst, now + Duration::from_millis(i * 9))
                .expect("requests are not a flood");
        }
    }

    #[test]
    fn each_flood_is_caught_and_named() {
        let l = H2Limits::default();
        for (kind, flags, payload, n, flood) in [
            (PING, 0, &[0u8; 8][..], l.pings_per_sec, Flood::Ping),
            (SETTINGS, 0, &[][..], l.settings_per_sec, Flood::Settings),
            (
                RST_STREAM,
                0,
                &[0, 0, 0, 8][..],
                l.resets_per_sec,
                Flood::Reset,
            ),
            (
                PRIORITY,
                0,
                &[0; 5][..],
                l.priorities_per_sec,
                Flood::Priority,
            ),
            (DATA, 0, &[][..], l.empty_data_per_sec, Flood::EmptyData),
            (
                HEADERS,
                FLAG_END_HEADERS,
                &[0x82][..],
                l.streams_per_sec,
                Flood::Streams,
            ),
        ] {
            let now = Instant::now();
            let mut g = guard(now);
            let one = frame(kind, flags, payload);
            for _ in 0..n {
                g.feed(&one, now).expect("within the limit");
            }
            assert_eq!(g.feed(&one, now), Err(flood), "{flood:?}");
            // A new second starts a new budget.
            let mut g = guard(now);
            for i in 0..n * 3 {
                let t = now + Duration::from_millis(u64::from(i / n) * 1000);
                g.feed(&one, t).expect("spread over seconds");
            }
        }
        // ACKs are answers, not requests for work.
        let now = Instant::now();
        let mut g = guard(now);
        for _ in 0..1000 {
            g.feed(&frame(PING, FLAG_ACK, &[0; 8]), now).expect("acks");
        }
    }

    #[test]
    fn an_endless_header_block_is_cut() {
        let now = Instant::now();
        let mut g = guard(now);
        g.feed(&frame(HEADERS, 0, &[0x82]), now).expect("headers");
        for _ in 0..H2Limits::default().continuations_per_block {
            g.feed(&frame(CONTINUATION, 0, &[0; 100]), now)
                .expect("some");
        }
        assert_eq!(
            g.feed(&frame(CONTINUATION, 0, &[0; 100]), now),
            Err(Flood::Continuation)
        );
        // A block that ends resets the count.
        let mut g = guard(now);
        for _ in 0..100 {
            g.feed(&frame(HEADERS, 0, &[0x82]), now).expect("headers");
            g.feed(&frame(CONTINUATION, FLAG_END_HEADERS, &[0]), now)
                .expect("ended");
        }
    }

    #[test]
    fn not_http2_is_refused() {
        let mut g = FrameGuard::new(H2Limits::default());
        assert_eq!(
            g.feed(b"GET / HTTP/1.1\r\n", Instant::now()),
            Err(Flood::BadPreface)
        );
    }
}
