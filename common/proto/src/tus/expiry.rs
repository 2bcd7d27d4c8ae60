//! tus Expiration extension: when an unfinished upload expires and how `Upload-Expires` says
//! it. The lifetime runs from the upload's last change (creation or a stored chunk), so an
//! upload that keeps making progress never expires under its client; one abandoned for the
//! configured lifetime is refused (410) and swept.
//!
//! A finished (or rejected) upload's record is kept only a short retention — long enough for a
//! client's final HEAD after a lost response — and every record is indexed by when it is due
//! ([`ExpiryPolicy::bucket_end_secs`]), so a sweep reads only what is due instead of every record.

/// Epoch milliseconds at which an upload last changed at `last_change_ms` expires.
pub fn expires_ms(last_change_ms: u64, lifetime_secs: u64) -> u64 {
    last_change_ms.saturating_add(lifetime_secs.saturating_mul(1000))
}

/// Whether an upload expiring at `expires_ms` is expired at `now_ms`.
pub fn is_expired(expires_ms: u64, now_ms: u64) -> bool {
    now_ms >= expires_ms
}

/// `Upload-Expires` value: an RFC 9110 IMF-fixdate, rounded down to the second.
pub fn header_value(expires_ms: u64) -> String {
    crate::http::date::format(expires_ms / 1000)
}

/// When upload records are due for deletion, and the width of the index buckets they are filed
/// under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// An unfinished upload expires this long after its last change (tus Expiration).
    pub unfinished_secs: u64,
    /// A finished or rejected upload's record is deleted this long after its last change.
    pub finished_secs: u64,
    /// Width of one index bucket (at least 1).
    pub bucket_secs: u64,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            unfinished_secs: 24 * 3600,
            finished_secs: 600,
            bucket_secs: 60,
        }
    }
}

impl ExpiryPolicy {
    /// Epoch milliseconds at which a record last changed at `updated_ms` is due.
    pub fn due_ms(&self, finished: bool, updated_ms: u64) -> u64 {
        let lifetime = if finished {
            self.finished_secs
        } else {
            self.unfinished_secs
        };
        expires_ms(updated_ms, lifetime)
    }

    /// The index bucket for a record due at `due_ms`, named by its end (epoch seconds): the
    /// smallest multiple of `bucket_secs` at or after the due time, so every record in bucket
    /// `end` is due once `now >= end` seconds and a sweep never needs to look into a later one.
    pub fn bucket_end_secs(&self, due_ms: u64) -> u64 {
        let width = self.bucket_secs.max(1);
        due_ms.div_ceil(1000).div_ceil(width).saturating_mul(width)
    }

    /// Whether every record in the bucket ending at `end_secs` is due at `now_ms`.
    pub fn bucket_due(end_secs: u64, now_ms: u64) -> bool {
        end_secs.saturating_mul(1000) <= now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_records_are_due_after_the_short_retention_and_buckets_hold_only_due_records() {
        let p = ExpiryPolicy {
            unfinished_secs: 3600,
            finished_secs: 120,
            bucket_secs: 60,
        };
        assert_eq!(p.due_ms(false, 1_000), 3_601_000);
        assert_eq!(p.due_ms(true, 1_000), 121_000);
        // Due at 121 s: filed under the bucket ending at 180 s, which is due from then on.
        assert_eq!(p.bucket_end_secs(121_000), 180);
        assert_eq!(p.bucket_end_secs(120_000), 120);
        assert_eq!(p.bucket_end_secs(120_001), 180);
        assert!(!ExpiryPolicy::bucket_due(180, 179_999));
        assert!(ExpiryPolicy::bucket_due(180, 180_000));
        // Every due time in a bucket is at or before the bucket's end.
        for due in [0u64, 1, 999, 1000, 59_999, 60_000, 60_001, 7_654_321] {
            let end = p.bucket_end_secs(due);
            assert!(
                due <= end * 1000 && end * 1000 < due + 61_000,
                "{due} -> {end}"
            );
        }
        let zero = ExpiryPolicy {
            bucket_secs: 0,
            ..p
        };
        assert_eq!(zero.bucket_end_secs(1_500), 2, "width 0 counts as 1");
        assert_eq!(p.bucket_end_secs(u64::MAX), u64::MAX / 1000 / 60 * 60 + 60);
    }

    #[test]
    fn lifetime_from_last_change() {
        assert_eq!(expires_ms(1_000, 60), 61_000);
        assert!(!is_expired(61_000, 60_999));
        assert!(is_expired(61_000, 61_000));
        assert_eq!(expires_ms(u64::MAX - 5, 60), u64::MAX);
        // 1994-11-06 08:49:37 UTC (RFC 9110's example date).
        assert_eq!(
            header_value(784_111_777_500),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
