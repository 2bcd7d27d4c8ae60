//! Who may watch a video, and how long an edge may trust what it learned about that (sans-IO:
//! the caller passes `now`).
//!
//! A video's visibility is field [`FIELD`] of its hash `rc:video:{id}`: `public`, `unlisted` or
//! `private`; absent = public, so videos made before the field existed stay playable. A private
//! video's objects need a valid signed URL covering them; public and unlisted ones play
//! unsigned (unlisted only means "not listed"). A value this code does not know counts as
//! private: failing closed is the only safe reading of a value written by a newer version.
//!
//! An edge caches each answer ([`Remembered`]) and asks [`decide`] what to do with it:
//! - younger than `ttl_ms`: use it ([`Decision::Fresh`]);
//! - older: ask Redis again ([`Decision::Ask`]); if that fails the old answer is used
//!   (stale-if-error) and the next attempt waits `retry_ms` ([`Decision::Stale`]), so a Redis
//!   outage costs one failed lookup per id and retry interval, not one per request;
//! - never learned and the last lookup failed less than `retry_ms` ago:
//!   [`Decision::Unknown`] (the edge fails closed for unsigned requests).

/// The field of `rc:video:{id}` that holds the visibility.
pub const FIELD: &str = "visibility";

/// Who may watch a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Anyone with the URL; listed.
    Public,
    /// Anyone with the URL; not listed.
    Unlisted,
    /// Only with a signed URL.
    Private,
}

impl Visibility {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }

    /// A value written by the API (`None` for anything else).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "unlisted" => Some(Visibility::Unlisted),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }

    /// What the field's value means for playback: absent = public, unknown = private.
    pub fn from_field(value: Option<&str>) -> Self {
        match value {
            None => Visibility::Public,
            Some(v) => Self::parse(v).unwrap_or(Visibility::Private),
        }
    }

    /// Whether playback needs a signed URL.
    pub fn needs_signature(self) -> bool {
        self == Visibility::Private
    }
}

/// What a cache holds for one video: the last answer and when it was learned, or, when a
/// lookup failed, when that was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    /// `None`: never learned (only failed lookups so far).
    pub visibility: Option<Visibility>,
    /// When `visibility` was read from Redis (caller's milliseconds; 0 when never).
    pub learned_ms: u64,
    /// When the last lookup after `learned_ms` failed, if one did.
    pub failed_ms: Option<u64>,
    /// Not to be trusted as fresh whatever its age (see [`Remembered::expired`]).
    pub expired: bool,
}

impl Remembered {
    /// A successful lookup at `now_ms`.
    pub fn learned(visibility: Visibility, now_ms: u64) -> Self {
        Self {
            visibility: Some(visibility),
            learned_ms: now_ms,
            failed_ms: None,
            expired: false,
        }
    }

    /// A failed lookup at `now_ms`: what was known before (if anything) stays, marked failed.
    pub fn failed(before: Option<&Remembered>, now_ms: u64) -> Self {
        Self {
            visibility: before.and_then(|b| b.visibility),
            learned_ms: before.map_or(0, |b| b.learned_ms),
            failed_ms: Some(now_ms),
            expired: before.is_some_and(|b| b.expired),
        }
    }

    /// The same answer, made stale at once (a lookup that raced a purge of this video must
    /// not be trusted for a whole TTL).
    pub fn expired(self) -> Self {
        Self {
            expired: true,
            ..self
        }
    }
}

/// How long answers and failures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// An answer is used without asking again for this long.
    pub ttl_ms: u64,
    /// After a failed lookup, the next one waits this long.
    pub retry_ms: u64,
}

/// What to do with a cached entry at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A fresh answer.
    Fresh(Visibility),
    /// An expired answer whose refresh failed recently: use it (stale-if-error).
    Stale(Visibility),
    /// Never learned and the last lookup failed recently.
    Unknown,
    /// Look it up (nothing cached, expired, or a failure's retry interval has passed).
    Ask,
}

/// The decision for `entry` at `now_ms`.
pub fn decide(entry: Option<&Remembered>, now_ms: u64, t: Timing) -> Decision {
    let Some(e) = entry else {
        return Decision::Ask;
    };
    if let Some(v) = e.visibility {
        let young = now_ms.saturating_sub(e.learned_ms) < t.ttl_ms;
        if !e.expired && e.failed_ms.is_none() && young {
            return Decision::Fresh(v);
        }
    }
    match (e.failed_ms, e.visibility) {
        (Some(f), Some(v)) if now_ms.saturating_sub(f) < t.retry_ms => Decision::Stale(v),
        (Some(f), None) if now_ms.saturating_sub(f) < t.retry_ms => Decision::Unknown,
        _ => Decision::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        ttl_ms: 5000,
        retry_ms: 1000,
    };

    #[test]
    fn field_values() {
        assert_eq!(Visibility::from_field(None), Visibility::Public);
        for v in [
            Visibility::Public,
            Visibility::Unlisted,
            Visibility::Private,
        ] {
            assert_eq!(Visibility::from_field(Some(v.as_str())), v);
        }
        assert_eq!(Visibility::from_field(Some("secret")), Visibility::Private);
        assert_eq!(Visibility::from_field(Some("")), Visibility::Private);
        assert!(Visibility::Private.needs_signature());
        assert!(!Visibility::Unlisted.needs_signature());
    }

    #[test]
    fn an_answer_is_fresh_until_exactly_the_ttl() {
        let e = Remembered::learned(Visibility::Private, 10_000);
        assert_eq!(decide(None, 0, T), Decision::Ask);
        assert_eq!(
            decide(Some(&e), 10_000, T),
            Decision::Fresh(Visibility::Private)
        );
        assert_eq!(
            decide(Some(&e), 14_999, T),
            Decision::Fresh(Visibility::Private)
        );
        assert_eq!(decide(Some(&e), 15_000, T), Decision::Ask);
        // A clock that went backwards never makes an answer older.
        assert_eq!(
            decide(Some(&e), 9_000, T),
            Decision::Fresh(Visibility::Private)
        );
    }

    #[test]
    fn a_failed_refresh_keeps_the_old_answer_until_the_retry() {
        let e = Remembered::learned(Visibility::Public, 0);
        let failed = Remembered::failed(Some(&e), 6000);
        assert_eq!(failed.visibility, Some(Visibility::Public));
        assert_eq!(
            decide(Some(&failed), 6000, T),
            Decision::Stale(Visibility::Public)
        );
        assert_eq!(
            decide(Some(&failed), 6999, T),
            Decision::Stale(Visibility::Public)
        );
        assert_eq!(decide(Some(&failed), 7000, T), Decision::Ask);
        // A success afterwards is fresh again.
        let back = Remembered::learned(Visibility::Private, 7001);
        assert_eq!(
            decide(Some(&back), 7002, T),
            Decision::Fresh(Visibility::Private)
        );
    }

    #[test]
    fn an_id_never_learned_is_unknown_between_retries() {
        let failed = Remembered::failed(None, 100);
        assert_eq!(failed.visibility, None);
        assert_eq!(decide(Some(&failed), 100, T), Decision::Unknown);
        assert_eq!(decide(Some(&failed), 1099, T), Decision::Unknown);
        assert_eq!(decide(Some(&failed), 1100, T), Decision::Ask);
    }

    #[test]
    fn an_expired_answer_is_asked_for_again_at_once() {
        let e = Remembered::learned(Visibility::Public, 20).expired();
        assert_eq!(decide(Some(&e), 20, T), Decision::Ask);
        assert_eq!(e.visibility, Some(Visibility::Public));
        // Its refresh failing still leaves the answer for stale-if-error.
        let failed = Remembered::failed(Some(&e), 30);
        assert_eq!(
            decide(Some(&failed), 30, T),
            Decision::Stale(Visibility::Public)
        );
    }
}
