//! tus Expiration extension: when an unfinished upload expires and how `Upload-Expires` says
//! it. The lifetime runs from the upload's last change (creation or a stored chunk), so an
//! upload that keeps making progress never expires under its client; one abandoned for the
//! configured lifetime is refused (410) and swept.

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

#[cfg(test)]
mod tests {
    use super::*;

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
