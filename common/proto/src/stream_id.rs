//! Redis stream entry ids (`{ms}-{seq}`) and the decisions the job queue takes from them: how
//! old an entry is (an auto-generated id starts with the Unix milliseconds of its `XADD`, so the
//! age of a queued job needs no extra field), and how far a job stream may be trimmed without
//! losing a job that is still waiting or running ([`trim_floor`]).

use std::fmt;

/// A stream entry id. Ordered like Redis orders them (by `ms`, then `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// The smallest id (`0-0`).
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

    /// Parse `ms-seq` (or a bare `ms`, which Redis reads as `ms-0`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The id right after this one: the lowest id greater than it.
    pub fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }

    /// Milliseconds from the entry's `XADD` (its id's time part) to `now_ms`; 0 for an id
    /// from the future (clock skew between hosts).
    pub fn age_ms(self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.ms)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Where one consumer group stands on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPosition {
    /// The group's last-delivered-id: every entry after it is still waiting for a worker.
    pub last_delivered: StreamId,
    /// The lowest id delivered but not acknowledged (`XPENDING` summary), if any: a job that
    /// is running, or that a dead worker holds until it is reclaimed.
    pub oldest_pending: Option<StreamId>,
}

/// The `MINID` a job stream can be trimmed to (`XTRIM key MINID ~ floor` removes only entries
/// below it), or `None` when nothing may go (no group reads the stream: nobody has taken any
/// of its entries).
///
/// An entry below the floor is one that every group has been delivered and acknowledged, and
/// that was added more than `keep_ms` before `now_ms`. So trimming never drops a job that is
/// waiting (after a group's last-delivered-id) or running (pending), and acknowledged entries
/// stay `keep_ms` for inspection. Entries added later always get ids above the floor (ids
/// grow, and the floor is at most one past a last-delivered-id), so the floor stays safe
/// between computing it and trimming; the `~` makes Redis drop only whole nodes below it,
/// never more.
pub fn trim_floor(groups: &[GroupPosition], now_ms: u64, keep_ms: u64) -> Option<StreamId> {
    let by_age = StreamId {
        ms: now_ms.saturating_sub(keep_ms),
        seq: 0,
    };
    groups
        .iter()
        .map(|g| match g.oldest_pending {
            Some(p) => p.min(g.last_delivered.next()),
            None => g.last_delivered.next(),
        })
        .min()
        .map(|f| f.min(by_age))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> StreamId {
        StreamId::parse(s).expect("id")
    }

    #[test]
    fn parses_orders_and_prints() {
        assert_eq!(
            id("1700000000000-3"),
            StreamId {
                ms: 1_700_000_000_000,
                seq: 3
            }
        );
        assert_eq!(id("5"), StreamId { ms: 5, seq: 0 });
        for bad in ["", "-", "a-1", "1-", "1-2-3", "+", "(1-0", "1 -0"] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
        assert!(id("2-0") > id("1-9"));
        assert!(id("1-10") > id("1-9"));
        assert_eq!(id("7-2").to_string(), "7-2");
        assert_eq!(id("7-2").next(), id("7-3"));
        assert_eq!(id(&format!("7-{}", u64::MAX)).next(), id("8-0"));
        assert_eq!(id("1000-0").age_ms(3500), 2500);
        assert_eq!(id("9000-0").age_ms(3500), 0);
    }

    #[test]
    fn the_floor_keeps_waiting_running_and_recent_entries() {
        let now = 1_000_000;
        // No group: nothing is known to be consumed.
        assert_eq!(trim_floor(&[], now, 0), None);
        // Delivered up to 500-0, nothing pending: everything up to it may go.
        let idle = GroupPosition {
            last_delivered: id("500-0"),
            oldest_pending: None,
        };
        assert_eq!(trim_floor(&[idle], now, 0), Some(id("500-1")));
        // A running job at 300-0 holds the floor there.
        let busy = GroupPosition {
            last_delivered: id("500-0"),
            oldest_pending: Some(id("300-0")),
        };
        assert_eq!(trim_floor(&[busy], now, 0), Some(id("300-0")));
        // Two groups: the slower one decides.
        let slow = GroupPosition {
            last_delivered: id("100-4"),
            oldest_pending: None,
        };
        assert_eq!(trim_floor(&[busy, slow], now, 0), Some(id("100-5")));
        // Acknowledged entries newer than now - keep stay.
        assert_eq!(trim_floor(&[idle], 600, 400), Some(id("200-0")));
        assert_eq!(trim_floor(&[idle], 100, 400), Some(StreamId::ZERO));
    }
}
