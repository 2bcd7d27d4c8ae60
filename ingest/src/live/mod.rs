//! Live push: publishers `PUT`/`POST` MPEG-TS to `/live/{key}` ([`push`]); the bytes fan out
//! to pullers on every core ([`fanout`], not to be confused with the edge's live hub, which
//! follows LL-HLS event streams); its config section and counters.

pub mod config;
pub mod fanout;
pub mod metrics;
pub mod push;

use std::borrow::Cow;

use ringcast_proto::secret::redact;

/// `path` as it may appear in logs: the stream key of `/live/{key}[/…]` is a publishing
/// credential, so only its redacted form is shown.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    let Some(rest) = path.strip_prefix("/live/") else {
        return Cow::Borrowed(path);
    };
    let (key, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Cow::Owned(format!("/live/{}{tail}", redact(key)))
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn stream_keys_stay_out_of_logged_paths() {
        assert_eq!(loggable_path("/files/abc"), "/files/abc");
        let p = loggable_path("/live/secretstreamkey1234/pull");
        assert!(!p.contains("secretstreamkey"), "{p}");
        assert!(p.starts_with("/live/secr") && p.ends_with("/pull"), "{p}");
        assert!(!loggable_path("/live/secretstreamkey1234").contains("streamkey"));
    }
}
