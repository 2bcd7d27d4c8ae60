//! Who may play a video's objects: the visibility check before every `/v/{id}/…` and
//! `/s/…/v/{id}/…` answer (DESIGN.md "Private playback").
//!
//! - `[platform]` off: everything is public (the edge warns at start when it has a signing
//!   secret, which suggests private videos exist).
//! - Public or unlisted: plays unsigned (unless `signed_urls.enabled` requires signatures for
//!   everything, checked before this).
//! - Private: needs a valid signature covering the requested path (the signed prefix must end
//!   in `/` to cover a folder, so a token for `/v/abc/` never covers `/v/abcdef/…`); otherwise
//!   403 with the signature's error code (`signature_missing`, `signature_expired`, …). Its
//!   answers carry `Cache-Control: private …`: no shared cache downstream keeps them; the edge's
//!   own cache keeps the bytes, since this check runs before every answer.
//! - Visibility unknown (never learned, Redis failing): unsigned requests get 503
//!   `visibility_unavailable` (fail closed); signed ones play, marked private.
//!
//! The check is against the video id in the object key (`v/{id}/…`, after percent-decoding),
//! so no spelling of a path reaches a private video's objects unchecked.

use ringcast_proto::keys;

use crate::error::EdgeError;
use crate::platform::stats::PlatformStats;
use crate::platform::visibility::Answer;
use crate::routes::access_control::Proof;
use crate::shared::Shared;

/// How to answer an admitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// A private (or possibly private) video: `Cache-Control: private`.
    pub private: bool,
}

const PUBLIC: Admission = Admission { private: false };

/// The video id of an object key `v/{id}/…`.
pub fn video_of(key: &str) -> Option<&str> {
    key.strip_prefix("v/")?.split('/').next()
}

/// Admit or refuse a request for object `key` that proved `proof`.
pub async fn admit(shared: &Shared, key: &str, proof: Proof) -> Result<Admission, EdgeError> {
    let Some(cache) = shared.platform.visibility() else {
        return Ok(PUBLIC);
    };
    // An id that cannot exist has no metadata: nothing to look up (its objects do not exist
    // either, so this serves only 404s).
    let Some(id) = video_of(key).filter(|id| keys::is_valid_id(id)) else {
        return Ok(PUBLIC);
    };
    let stats = &shared.platform.stats;
    match (cache.get(id).await, proof) {
        (Answer::Known(v), Proof::Signed) => Ok(Admission {
            private: v.needs_signature(),
        }),
        (Answer::Known(v), Proof::Unsigned(why)) if v.needs_signature() => {
            PlatformStats::bump(&stats.denied_private);
            Err(EdgeError::Signature(why))
        }
        (Answer::Known(_), Proof::Unsigned(_)) => Ok(PUBLIC),
        (Answer::Unavailable, Proof::Signed) => Ok(Admission { private: true }),
        (Answer::Unavailable, Proof::Unsigned(_)) => {
            PlatformStats::bump(&stats.denied_unavailable);
            Err(EdgeError::VisibilityUnavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_video_of_a_key() {
        assert_eq!(video_of("v/abc/master.m3u8"), Some("abc"));
        assert_eq!(video_of("v/abc/1/720p/seg1.m4s"), Some("abc"));
        assert_eq!(video_of("v/abc"), Some("abc"));
        assert_eq!(video_of("sources/abc/1/source"), None);
    }
}
