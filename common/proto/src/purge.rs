//! The fleet-wide purge message: what the ingest (delete, rollback, visibility changes) and an
//! edge's `POST /purge?fleet=1` publish on the Redis channel [`crate::keys::PURGE_CHANNEL`], and
//! every subscribed edge applies to its cache tiers.
//!
//! JSON, versioned: `{"v": 1, "keys": [...], "prefixes": [...], "videos": [...]}`.
//! - `keys`: object keys exactly as the edge's `POST /purge` takes them (`v/{id}/master.m3u8`,
//!   a leading `/` allowed);
//! - `prefixes`: key prefixes, likewise (`v/{id}/` drops everything of a video);
//! - `videos`: ids whose metadata (visibility) changed: edges drop what they cached about them.
//!
//! Bounded, because every edge parses whatever lands on the channel: at most
//! [`MAX_MESSAGE_BYTES`] of JSON, [`MAX_ITEMS`] items over the three lists, [`MAX_ITEM_BYTES`]
//! per item, and at least one item. Unknown fields are ignored (a newer publisher may add one
//! within version 1; a change old edges must not misread bumps `v`, which they then refuse).
//! [`PurgeMessage::parse`] never panics on any input (fuzz target `purge_message`).

use serde::{Deserialize, Serialize};

use crate::keys;

/// The message version this code writes and reads.
pub const VERSION: u32 = 1;
/// Most items (keys + prefixes + videos) in one message, as in the edge's `POST /purge`.
pub const MAX_ITEMS: usize = 10_000;
/// Largest message accepted or published, in bytes of JSON.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Longest key or prefix (the store's key limit).
pub const MAX_ITEM_BYTES: usize = 1024;

/// Why a message was refused (by the publisher before sending, or by an edge on receipt).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeMessageError {
    #[error("purge message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("purge message is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("purge message version {0} is not supported (this build reads {VERSION})")]
    UnsupportedVersion(u32),
    #[error("purge message has {0} items, more than {MAX_ITEMS}")]
    TooManyItems(usize),
    #[error("purge message names nothing to purge")]
    Empty,
    #[error("purge key {0:?} is not an object key under v/")]
    BadKey(String),
    #[error("purge prefix {0:?} is not a key prefix under v/")]
    BadPrefix(String),
    #[error("purge video id {0:?} is not a valid id")]
    BadVideo(String),
}

/// One purge for every edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeMessage {
    /// Format version ([`VERSION`]).
    pub v: u32,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub videos: Vec<String>,
}

impl PurgeMessage {
    /// A version-1 message.
    pub fn new(keys: Vec<String>, prefixes: Vec<String>, videos: Vec<String>) -> Self {
        Self {
            v: VERSION,
            keys,
            prefixes,
            videos,
        }
    }

    /// A video's current-master pointer changed (new version, rollback): that one key.
    pub fn current_master(video: &str) -> Self {
        Self::new(vec![keys::current_master(video)], Vec::new(), Vec::new())
    }

    /// A video's metadata changed (visibility): edges forget what they know about it, and its
    /// current-master pointer.
    pub fn video_changed(video: &str) -> Self {
        Self::new(
            vec![keys::current_master(video)],
            Vec::new(),
            vec![video.to_string()],
        )
    }

    /// A video was deleted: every object under `v/{id}/` and its metadata.
    pub fn video_deleted(video: &str) -> Self {
        Self::new(
            Vec::new(),
            vec![format!("v/{video}/")],
            vec![video.to_string()],
        )
    }

    /// Keys + prefixes + videos.
    pub fn item_count(&self) -> usize {
        self.keys.len() + self.prefixes.len() + self.videos.len()
    }

    /// Check the bounds and every item (what [`parse`](Self::parse) enforces on receipt).
    pub fn validate(&self) -> Result<(), PurgeMessageError> {
        if self.v != VERSION {
            return Err(PurgeMessageError::UnsupportedVersion(self.v));
        }
        match self.item_count() {
            0 => return Err(PurgeMessageError::Empty),
            n if n > MAX_ITEMS => return Err(PurgeMessageError::TooManyItems(n)),
            _ => {}
        }
        if let Some(k) = self.keys.iter().find(|k| !is_valid_key(k)) {
            return Err(PurgeMessageError::BadKey(clip(k)));
        }
        if let Some(p) = self.prefixes.iter().find(|p| !is_valid_prefix(p)) {
            return Err(PurgeMessageError::BadPrefix(clip(p)));
        }
        if let Some(v) = self.videos.iter().find(|v| !keys::is_valid_id(v)) {
            return Err(PurgeMessageError::BadVideo(clip(v)));
        }
        Ok(())
    }

    /// The JSON to publish, after [`validate`](Self::validate) and the size limit.
    pub fn to_json(&self) -> Result<String, PurgeMessageError> {
        self.validate()?;
        let json =
            serde_json::to_string(self).map_err(|e| PurgeMessageError::Malformed(e.to_string()))?;
        if json.len() > MAX_MESSAGE_BYTES {
            return Err(PurgeMessageError::TooLarge(json.len()));
        }
        Ok(json)
    }

    /// Parse and validate a received message (size first, so an oversized payload is never
    /// parsed).
    pub fn parse(bytes: &[u8]) -> Result<Self, PurgeMessageError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(PurgeMessageError::TooLarge(bytes.len()));
        }
        let msg: PurgeMessage = serde_json::from_slice(bytes)
            .map_err(|e| PurgeMessageError::Malformed(e.to_string()))?;
        msg.validate()?;
        Ok(msg)
    }
}

/// An object key as `POST /purge` takes it: under `v/` (optionally `/v/`), non-empty segments,
/// no `.`/`..` segment, no control character, backslash or `%`, at most [`MAX_ITEM_BYTES`].
/// Messages carry decoded object keys: a `%` would be decoded again by each edge (`POST /purge`
/// decodes what clients send) and name another key; no published key contains one.
pub fn is_valid_key(k: &str) -> bool {
    let k = k.strip_prefix('/').unwrap_or(k);
    k.len() <= MAX_ITEM_BYTES
        && k.starts_with("v/")
        && plain_bytes(k)
        && k.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

/// A key prefix as `POST /purge` takes it: under `v/` (`v/` itself purges everything), no
/// control character, backslash or `%`, at most [`MAX_ITEM_BYTES`].
pub fn is_valid_prefix(p: &str) -> bool {
    let p = p.strip_prefix('/').unwrap_or(p);
    p.len() <= MAX_ITEM_BYTES && p.starts_with("v/") && plain_bytes(p)
}

fn plain_bytes(s: &str) -> bool {
    !s.bytes()
        .any(|b| b.is_ascii_control() || b == b'\\' || b == b'%')
}

/// An offending item for an error message: at most 80 characters of it.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(keys: &[&str], prefixes: &[&str], videos: &[&str]) -> PurgeMessage {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        PurgeMessage::new(own(keys), own(prefixes), own(videos))
    }

    #[test]
    fn round_trips_and_fills_omitted_lists() {
        let m = msg(&["v/a/master.m3u8"], &["v/b/"], &["a"]);
        let json = m.to_json().expect("valid");
        assert_eq!(
            json,
            r#"{"v":1,"keys":["v/a/master.m3u8"],"prefixes":["v/b/"],"videos":["a"]}"#
        );
        assert_eq!(PurgeMessage::parse(json.as_bytes()), Ok(m));
        let only_videos = PurgeMessage::parse(br#"{"v":1,"videos":["x"],"later":true}"#);
        assert_eq!(only_videos, Ok(msg(&[], &[], &["x"])));
        assert_eq!(
            PurgeMessage::video_changed("abc"),
            msg(&["v/abc/master.m3u8"], &[], &["abc"])
        );
        assert_eq!(
            PurgeMessage::video_deleted("abc"),
            msg(&[], &["v/abc/"], &["abc"])
        );
        assert_eq!(
            PurgeMessage::current_master("abc").keys,
            vec!["v/abc/master.m3u8"]
        );
    }

    #[test]
    fn refuses_what_an_edge_must_not_apply() {
        let parse = |s: &str| PurgeMessage::parse(s.as_bytes()).map(|_| ());
        assert_eq!(
            parse(r#"{"v":2,"keys":["v/a/x"]}"#),
            Err(PurgeMessageError::UnsupportedVersion(2))
        );
        assert_eq!(parse(r#"{"v":1}"#), Err(PurgeMessageError::Empty));
        assert!(matches!(
            parse(r#"{"keys":["v/a/x"]}"#),
            Err(PurgeMessageError::Malformed(_))
        ));
        assert!(matches!(
            parse(r#"{"v":1,"keys":"v/a/x"}"#),
            Err(PurgeMessageError::Malformed(_))
        ));
        assert!(matches!(
            parse("nope"),
            Err(PurgeMessageError::Malformed(_))
        ));
        for bad in [
            "sources/a/1/source",
            "v/a/../b",
            "v//a",
            "v/a\\b",
            "v/a\nb",
            "v/a/",
            "v/a%41",
        ] {
            let m = msg(&[bad], &[], &[]);
            assert!(
                matches!(m.validate(), Err(PurgeMessageError::BadKey(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            msg(&[], &["x/"], &[]).validate(),
            Err(PurgeMessageError::BadPrefix(_))
        ));
        assert!(matches!(
            msg(&[], &[], &["../x"]).validate(),
            Err(PurgeMessageError::BadVideo(_))
        ));
        assert!(msg(&["/v/a/1/seg1.m4s"], &["/v/", "v/a/"], &[])
            .validate()
            .is_ok());
    }

    #[test]
    fn bounds_items_and_bytes() {
        let keys: Vec<String> = (0..MAX_ITEMS).map(|i| format!("v/a/{i}")).collect();
        let at_limit = PurgeMessage::new(keys.clone(), Vec::new(), Vec::new());
        assert!(at_limit.to_json().is_ok());
        let over = PurgeMessage::new(keys, Vec::new(), vec!["a".into()]);
        assert_eq!(
            over.validate(),
            Err(PurgeMessageError::TooManyItems(MAX_ITEMS + 1))
        );
        let long = format!("v/{}", "a".repeat(MAX_ITEM_BYTES));
        assert!(matches!(
            msg(&[&long], &[], &[]).validate(),
            Err(PurgeMessageError::BadKey(k)) if k.len() == 80
        ));
        // Big enough in bytes though few in items: refused before sending and on receipt.
        let item = format!("v/{}", "b".repeat(MAX_ITEM_BYTES - 2));
        let heavy = PurgeMessage::new(vec![item; 1100], Vec::new(), Vec::new());
        assert!(matches!(
            heavy.to_json(),
            Err(PurgeMessageError::TooLarge(n)) if n > MAX_MESSAGE_BYTES
        ));
        let raw = serde_json::to_vec(&heavy).expect("serialize");
        assert!(matches!(
            PurgeMessage::parse(&raw),
            Err(PurgeMessageError::TooLarge(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_valid(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(m) = PurgeMessage::parse(&bytes) {
                proptest::prop_assert!(m.validate().is_ok());
            }
        }

        #[test]
        fn valid_messages_round_trip(
            keys in proptest::collection::vec("v/[a-z0-9]{1,8}(/[a-z0-9.]{1,8}){0,3}", 0..5),
            videos in proptest::collection::vec("[A-Za-z0-9_-]{1,20}", 1..5),
        ) {
            let keys: Vec<String> = keys.into_iter().filter(|k| is_valid_key(k)).collect();
            let m = PurgeMessage::new(keys, vec!["v/".into()], videos);
            let json = m.to_json().expect("valid");
            proptest::prop_assert_eq!(PurgeMessage::parse(json.as_bytes()), Ok(m));
        }
    }
}
