//! How long event streams stay in Redis. Without an expiry every stream ever published would
//! stay; the rule lives here so the publisher applies it in one place and tests can check it.

use ringcast_proto::live::LiveEvent;

/// Expiry of a rendition's event stream, renewed by every announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTtl {
    /// Seconds the stream stays after its `End`: followers that are behind still read up to
    /// `End`; later requests are answered from the final playlists in the store.
    pub ended_secs: u64,
    /// Seconds the stream stays after its last event when no `End` comes (a job that died or
    /// was dead-lettered leaves nothing behind for long).
    pub idle_secs: u64,
}

impl StreamTtl {
    /// The expiry (seconds) to set together with announcing `event`.
    pub fn after(&self, event: &LiveEvent) -> u64 {
        if matches!(event, LiveEvent::End { .. }) {
            self.ended_secs
        } else {
            self.idle_secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_shortens_every_other_event_renews_the_idle_expiry() {
        let ttl = StreamTtl {
            ended_secs: 600,
            idle_secs: 86_400,
        };
        assert_eq!(ttl.after(&LiveEvent::End { last_msn: 3 }), 600);
        assert_eq!(ttl.after(&LiveEvent::Discontinuity { next_msn: 4 }), 86_400);
        assert_eq!(
            ttl.after(&LiveEvent::Part {
                msn: 0,
                part: 0,
                duration: 0.333,
                independent: true
            }),
            86_400
        );
    }
}
