//! The access log: one JSON object per request on stdout, off, full or sampled by config.
//!
//! Not blocking the hot path: a worker appends its lines to a buffer of its own (no lock, no
//! syscall) and hands the buffer over a bounded channel to one logger thread, when it passes
//! [`BATCH_BYTES`] or once a second from a timer task. `try_send` never waits: when the logger
//! thread cannot keep up (stdout blocked by a slow reader), the batch is dropped and counted
//! (`ringcast_edge_access_log_dropped_total`). Losing log lines under overload is the trade
//! nginx makes too with `buffer=`; the alternative would be stalling every viewer.

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// A worker's buffer is handed to the logger thread once it holds this much.
pub const BATCH_BYTES: usize = 32 * 1024;
/// Batches the channel holds before new ones are dropped.
const QUEUE_BATCHES: usize = 64;

/// `access_log` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccessLog {
    /// `"off"` or `"full"`.
    Mode(AccessLogMode),
    /// `{ sample = N }`: one request in N.
    Sampled { sample: u64 },
}

/// The string forms of [`AccessLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogMode {
    Off,
    Full,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::Mode(AccessLogMode::Off)
    }
}

impl AccessLog {
    /// Log one request in this many; `None` when off.
    pub fn every(&self) -> Option<u64> {
        match *self {
            AccessLog::Mode(AccessLogMode::Off) => None,
            AccessLog::Mode(AccessLogMode::Full) => Some(1),
            AccessLog::Sampled { sample } => Some(sample.max(1)),
        }
    }
}

/// Start the logger thread; `None` when the log is off.
pub fn start(cfg: AccessLog) -> std::io::Result<Option<SyncSender<Vec<u8>>>> {
    if cfg.every().is_none() {
        return Ok(None);
    }
    let (tx, rx) = sync_channel(QUEUE_BATCHES);
    std::thread::Builder::new()
        .name("edge-access-log".into())
        .spawn(move || writer(rx))?;
    Ok(Some(tx))
}

fn writer(rx: Receiver<Vec<u8>>) {
    let stdout = std::io::stdout();
    for batch in rx {
        let mut out = stdout.lock();
        if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// One worker's side of the log.
pub struct WorkerLog {
    tx: SyncSender<Vec<u8>>,
    every: u64,
    seen: Cell<u64>,
    buf: RefCell<Vec<u8>>,
}

/// What is logged of one request.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Unix time in milliseconds when the response was queued.
    pub ts_ms: u64,
    pub method: &'a str,
    pub target: &'a str,
    pub status: u16,
    /// Body bytes of the response (0 for HEAD/304).
    pub bytes: usize,
    /// Time from the parsed head to the queued response, in microseconds.
    pub dur_us: u64,
    pub worker: usize,
}

impl WorkerLog {
    pub fn new(tx: SyncSender<Vec<u8>>, cfg: AccessLog) -> Self {
        Self {
            tx,
            every: cfg.every().unwrap_or(1),
            seen: Cell::new(0),
            buf: RefCell::new(Vec::with_capacity(BATCH_BYTES)),
        }
    }

    /// Whether the next request is one to log (counts it).
    pub fn sample(&self) -> bool {
        let n = self.seen.get();
        self.seen.set(n.wrapping_add(1));
        n % self.every == 0
    }

    /// Append a record; hand the buffer over once it is full.
    pub fn record(&self, rec: &Record<'_>, metrics: &Metrics) {
        let full = {
            let mut buf = self.buf.borrow_mut();
            if serde_json::to_writer(&mut *buf, rec).is_ok() {
                buf.push(b'\n');
            }
            buf.len() >= BATCH_BYTES
        };
        if full {
            self.flush(metrics);
        }
    }

    /// Hand whatever is buffered to the logger thread without waiting.
    pub fn flush(&self, metrics: &Metrics) {
        let batch = {
            let mut buf = self.buf.borrow_mut();
            if buf.is_empty() {
                return;
            }
            std::mem::replace(&mut *buf, Vec::with_capacity(BATCH_BYTES))
        };
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                metrics.access_log_dropped();
            }
        }
    }
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Microseconds since `t`.
pub fn micros_since(t: Instant) -> u64 {
    t.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_forms() {
        #[derive(Deserialize)]
        struct C {
            access_log: AccessLog,
        }
        let parse = |s: &str| toml::from_str::<C>(s).map(|c| c.access_log);
        assert_eq!(
            parse("access_log = \"off\"").ok(),
            Some(AccessLog::Mode(AccessLogMode::Off))
        );
        assert_eq!(
            parse("access_log = \"full\"").ok().and_then(|a| a.every()),
            Some(1)
        );
        assert_eq!(
            parse("access_log = { sample = 10 }")
                .ok()
                .and_then(|a| a.every()),
            Some(10)
        );
        assert!(parse("access_log = \"loud\"").is_err());
        assert_eq!(AccessLog::default().every(), None);
    }

    #[test]
    fn sampling_and_batching() {
        let (tx, rx) = sync_channel(1);
        let log = WorkerLog::new(tx, AccessLog::Sampled { sample: 3 });
        let picked: Vec<bool> = (0..6).map(|_| log.sample()).collect();
        assert_eq!(picked, [true, false, false, true, false, false]);
        let m = Metrics::default();
        let rec = Record {
            ts_ms: 1,
            method: "GET",
            target: "/v/a \"q\"",
            status: 200,
            bytes: 5,
            dur_us: 7,
            worker: 0,
        };
        log.record(&rec, &m);
        assert!(rx.try_recv().is_err(), "buffered, not sent per line");
        log.flush(&m);
        let batch = rx.try_recv().expect("batch");
        let v: serde_json::Value = serde_json::from_slice(&batch).expect("one JSON line");
        assert_eq!(v["target"], "/v/a \"q\"");
        assert_eq!(v["status"], 200);
        // A full channel drops instead of blocking.
        log.record(&rec, &m);
        log.flush(&m);
        log.record(&rec, &m);
        log.flush(&m);
        assert_eq!(m.snapshot().access_log_dropped, 1);
    }
}
