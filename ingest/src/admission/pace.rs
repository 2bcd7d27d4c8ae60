//! The pace of one PATCH body ([`ringcast_proto::upload_pace`]) on a real connection: the body
//! read timeout is kept at "when the next check could fail", so a client that sends nothing at
//! all is cut off on time (not only at the idle timeout), and each read is counted.
//!
//! A cut-off surfaces as an `io::Error` of kind `TimedOut` carrying the [`TooSlow`] reason, so
//! the receive loop treats it like any interrupted body (bytes kept, offset recorded) and
//! [`too_slow`] turns it into the 408 `body_too_slow` answer at the end.

use std::time::{Duration, Instant};

use ringcast_proto::upload_pace::{Pace, TooSlow};
use ringcast_server::Conn;

use crate::admission::metrics::Refusal;
use crate::admission::AdmissionError;
use crate::app::App;

/// The pace of the PATCH being received.
pub struct BodyPace {
    pace: Pace,
    start: Instant,
    idle: Duration,
}

/// The marker inside the `io::Error` of a body cut off for its pace.
#[derive(Debug)]
struct Slow(TooSlow);

impl std::fmt::Display for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Slow {}

impl BodyPace {
    /// Start timing a body and bound the first read.
    pub fn start(app: &App, conn: &mut Conn) -> Self {
        let p = Self {
            pace: Pace::new(app.config.admission.pace_limits(), 0),
            start: Instant::now(),
            idle: app.config.idle_timeout(),
        };
        p.bound_next_read(conn);
        p
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn bound_next_read(&self, conn: &mut Conn) {
        let wait = self
            .pace
            .next_check_in_ms(self.now_ms())
            .map_or(self.idle, |ms| self.idle.min(Duration::from_millis(ms)));
        conn.set_body_read_timeout(wait);
    }

    /// Count `n` bytes just read; `Err` (a `TimedOut` carrying the reason) once the body is too
    /// slow or past its deadline.
    pub fn observe(&mut self, conn: &mut Conn, n: usize) -> Result<(), std::io::Error> {
        let now = self.now_ms();
        self.pace.observe(now, n as u64).map_err(slow)?;
        self.bound_next_read(conn);
        Ok(())
    }

    /// A failed read: when it timed out because of the pace (not the idle timeout), say so.
    pub fn explain(&mut self, e: std::io::Error) -> std::io::Error {
        if e.kind() != std::io::ErrorKind::TimedOut {
            return e;
        }
        match self.pace.observe(self.now_ms(), 0) {
            Err(reason) => slow(reason),
            Ok(()) => e,
        }
    }
}

fn slow(reason: TooSlow) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, Slow(reason))
}

/// The 408 answer for a body cut off by [`BodyPace`], counted; `None` for other errors.
pub fn too_slow(app: &App, e: &std::io::Error) -> Option<AdmissionError> {
    let reason = e.get_ref()?.downcast_ref::<Slow>()?.0;
    app.metrics.admission.refused(Refusal::TooSlow);
    tracing::info!(%reason, "PATCH body cut off for its pace; offset kept for resume");
    Some(AdmissionError::TooSlow(reason))
}
