//! Delivery directives of playlist requests and the blocking decisions, sans-IO: the caller
//! passes how long a request has been held; this module says answer, keep waiting, 400 or 503.
//!
//! rfc8216bis §6.2.5 (directives are the `_HLS_` query parameters: `_HLS_msn`, `_HLS_part`
//! decimal-integers, `_HLS_skip` = `YES` | `v2`), §6.2.5.1 (delta updates, see
//! [`crate::live::PlaylistOpts::skip`]), §6.2.5.2 (blocking playlist reload), §6.2.6 (a GET of
//! the preload-hinted part waits for that part). DESIGN.md "LL-HLS rules":
//! - `_HLS_part` without `_HLS_msn` → 400 (§6.2.5.2 MUST);
//! - the playlist has `EXT-X-ENDLIST` → answer at once, directives ignored (MUST);
//! - `_HLS_msn` more than two segments past the last one, or `_HLS_part` more than the
//!   Advance Part Limit past the last part → 400 (SHOULD);
//! - otherwise hold until [`LiveRendition::has`] the segment/part, and 503 after three target
//!   durations (SHOULD).
//!
//! Malformed directives (not a decimal integer, negative, repeated, an unknown `_HLS_skip`
//! value) are 400 as well: a client that sends them is broken, and guessing which of two
//! `_HLS_msn` it meant would make coalesced responses differ.

use std::fmt::Write as _;
use std::time::Duration;

use super::state::LiveRendition;
use super::LiveError;

/// A blocked request is answered 503 after this many target durations (§6.2.5.2).
const BLOCK_TIMEOUT_TARGET_DURATIONS: u32 = 3;

/// `_HLS_msn` may name at most this many segments past the last one (§6.2.5.2).
const MAX_SEGMENTS_AHEAD: u64 = 2;

/// Longest piece of a client's value echoed in an error message.
const MAX_ECHO_CHARS: usize = 24;

const PART_WITHOUT_MSN: &str = "_HLS_part requires _HLS_msn";

/// `_HLS_skip` value: which delta update the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipRequest {
    /// `YES`: skip old media segments.
    Yes,
    /// `v2`: also skip old `EXT-X-DATERANGE` tags (this model has none, so it is answered
    /// like `YES`).
    V2,
}

impl SkipRequest {
    /// The value as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipRequest::Yes => "YES",
            SkipRequest::V2 => "v2",
        }
    }
}

/// The delivery directives of a playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadQuery {
    /// `_HLS_msn`: hold until this media sequence number is available.
    pub msn: Option<u64>,
    /// `_HLS_part`: ... and this part of it.
    pub part: Option<u32>,
    /// `_HLS_skip`: answer with a delta update.
    pub skip: Option<SkipRequest>,
}

impl ReloadQuery {
    /// Reads the directives from a raw query string (`_HLS_msn=3&_HLS_part=1&_HLS_skip=YES`,
    /// with or without the leading `?`). Other parameters (signed-URL tokens, cache busters,
    /// unknown `_HLS_` names) are ignored. Values are not percent-decoded: the directive
    /// values are plain digits or `YES`/`v2`, so an encoded value is malformed, and an encoded
    /// name is some other parameter.
    ///
    /// Errors are [`LiveError::BadRequest`] (HTTP 400).
    pub fn parse(query: &str) -> Result<Self, LiveError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut q = ReloadQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_HLS_msn" => set_once(&mut q.msn, name, parse_integer(name, value)?)?,
                "_HLS_part" => set_once(&mut q.part, name, parse_integer(name, value)?)?,
                "_HLS_skip" => {
                    let skip = match value {
                        "YES" => SkipRequest::Yes,
                        "v2" => SkipRequest::V2,
                        other => {
                            return Err(bad(format!(
                                "_HLS_skip={} is neither YES nor v2",
                                echo(other)
                            )))
                        }
                    };
                    set_once(&mut q.skip, name, skip)?;
                }
                _ => {}
            }
        }
        if q.part.is_some() && q.msn.is_none() {
            return Err(bad(PART_WITHOUT_MSN.to_owned()));
        }
        Ok(q)
    }

    /// Whether the request asks to be held (`_HLS_msn` present).
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }
}

fn bad(message: String) -> LiveError {
    LiveError::BadRequest(message)
}

/// A client's value, shortened and escaped for an error message.
fn echo(value: &str) -> String {
    let short: String = value.chars().take(MAX_ECHO_CHARS).collect();
    format!("{short:?}")
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), LiveError> {
    if slot.is_some() {
        return Err(bad(format!("{name} given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

/// A decimal-integer (RFC 8216 §4.2: digits only, so no sign, no spaces) that fits `T`.
fn parse_integer<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, LiveError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "{name}={} is not a non-negative decimal integer",
            echo(value)
        )));
    }
    value
        .parse()
        .map_err(|_| bad(format!("{name}={} is out of range", echo(value))))
}

/// What to do with a playlist request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer with the current playlist.
    Ready,
    /// Hold the request: decide again when the rendition is updated, or after `remaining`
    /// (when it becomes [`Decision::Unavailable`]).
    Wait { remaining: Duration },
    /// 400 with this message.
    BadRequest(String),
    /// 503: held for three target durations without the segment/part appearing.
    Unavailable,
}

/// How long a blocking request (or a GET of the hinted part) may be held: three target
/// durations (§6.2.5.2).
pub fn blocking_timeout(state: &LiveRendition) -> Duration {
    Duration::from_secs(state.target_duration()).saturating_mul(BLOCK_TIMEOUT_TARGET_DURATIONS)
}

/// The decision for a playlist request carrying `q`, held for `waited` so far (zero on
/// arrival). Call again on every [`crate::live::Applied::Updated`] of the rendition and when
/// `Wait::remaining` runs out.
pub fn decide(state: &LiveRendition, q: &ReloadQuery, waited: Duration) -> Decision {
    if q.part.is_some() && q.msn.is_none() {
        return Decision::BadRequest(PART_WITHOUT_MSN.to_owned());
    }
    if state.ended() {
        return Decision::Ready;
    }
    let Some(msn) = q.msn else {
        return Decision::Ready;
    };
    if let Some(reason) = too_far_ahead(state, msn, q.part) {
        return Decision::BadRequest(reason);
    }
    if state.has(msn, q.part) {
        return Decision::Ready;
    }
    match blocking_timeout(state).checked_sub(waited) {
        Some(remaining) if !remaining.is_zero() => Decision::Wait { remaining },
        _ => Decision::Unavailable,
    }
}

/// The §6.2.5.2 400 cases, measured against the newest segment announced (listed or not:
/// being lenient here never blocks a legitimate client).
///
/// "Exceeds the last Partial Segment by the Advance Part Limit": for the newest (open)
/// segment the distance is `part - last part`; for a later segment at least `part + 1`
/// parts lie in between, which is the distance used. Requests for earlier segments are never
/// too far.
fn too_far_ahead(state: &LiveRendition, msn: u64, part: Option<u32>) -> Option<String> {
    let (newest, newest_part, open) = state.newest()?;
    if msn > newest.saturating_add(MAX_SEGMENTS_AHEAD) {
        return Some(format!(
            "_HLS_msn={msn} is more than {MAX_SEGMENTS_AHEAD} segments past the last segment {newest}"
        ));
    }
    let part = part?;
    let ahead = if msn == newest && open {
        f64::from(part) - f64::from(newest_part?)
    } else if msn > newest {
        f64::from(part) + 1.0
    } else {
        return None;
    };
    let limit = state.timing().advance_part_limit();
    (ahead > limit).then(|| {
        format!("_HLS_part={part} of segment {msn} is more than {limit} parts past the last part")
    })
}

/// Cache key of a playlist response: `path` plus only the `_HLS_` directives, in a fixed order
/// and canonical spelling, so identical blocking requests coalesce whatever else their query
/// carries (signatures, cache busters, parameter order, leading zeros).
pub fn cache_key_for(path: &str, q: &ReloadQuery) -> String {
    let mut key = String::with_capacity(path.len() + 48);
    push_cache_key(&mut key, path, q);
    key
}

/// [`cache_key_for`] appended to `key` (a caller's reused buffer: no allocation per request).
pub fn push_cache_key(key: &mut String, path: &str, q: &ReloadQuery) {
    key.push_str(path);
    let mut sep = '?';
    let mut push = |name: &str, value: &dyn std::fmt::Display| {
        // Writing into a String cannot fail.
        let _ = write!(key, "{sep}{name}={value}");
        sep = '&';
    };
    if let Some(msn) = q.msn {
        push("_HLS_msn", &msn);
    }
    if let Some(part) = q.part {
        push("_HLS_part", &part);
    }
    if let Some(skip) = q.skip {
        push("_HLS_skip", &skip.as_str());
    }
}

/// State of a requested part object (rfc8216bis §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartStatus {
    /// Announced (or older than the window, where the store has the answer): serve it.
    Ready,
    /// The next part to be announced, the one the preload hint names: hold the GET until it
    /// is complete (re-check on every update, give up after [`blocking_timeout`]), then serve
    /// it in full ("MUST refrain from transmitting any bytes belonging to a Partial Segment
    /// until all bytes of that Partial Segment can be transmitted").
    Pending,
    /// Neither announced nor hinted: 404 (§6.2.6 SHOULD), including a hinted part that will
    /// never exist because its segment ended first.
    NotFound,
}

/// Whether a GET of `part{msn}.{part}.m4s` can be served, must wait, or is not found.
pub fn preload_part_ready(state: &LiveRendition, msn: u64, part: u32) -> PartStatus {
    if state.part_published(msn, part) {
        PartStatus::Ready
    } else if state.next_part() == Some((msn, part)) {
        PartStatus::Pending
    } else {
        PartStatus::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::live::LiveEvent;
    use proptest::prelude::*;

    fn q(query: &str) -> ReloadQuery {
        ReloadQuery::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    fn blocking(msn: u64, part: Option<u32>) -> ReloadQuery {
        ReloadQuery {
            msn: Some(msn),
            part,
            skip: None,
        }
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn parses_directives_and_ignores_other_parameters() {
        assert_eq!(q(""), ReloadQuery::default());
        assert_eq!(q("?"), ReloadQuery::default());
        assert_eq!(
            q("_HLS_msn=3&_HLS_part=1&_HLS_skip=YES"),
            ReloadQuery {
                msn: Some(3),
                part: Some(1),
                skip: Some(SkipRequest::Yes)
            }
        );
        assert_eq!(
            q("?sig=abc&&_HLS_skip=v2&exp=9&_HLS_msn=007&_HLS_other=x&%5FHLS_msn=1"),
            ReloadQuery {
                msn: Some(7),
                part: None,
                skip: Some(SkipRequest::V2)
            }
        );
        assert_eq!(q("_HLS_msn=18446744073709551615").msn, Some(u64::MAX));
        assert!(q("_HLS_msn=1").is_blocking());
        assert!(!q("_HLS_skip=YES").is_blocking());
    }

    #[test]
    fn malformed_directives_are_bad_requests() {
        for bad in [
            "_HLS_part=1",
            "_HLS_part=1&_HLS_skip=YES",
            "_HLS_msn=",
            "_HLS_msn",
            "_HLS_msn=abc",
            "_HLS_msn=1.5",
            "_HLS_msn=-1",
            "_HLS_msn=+1",
            "_HLS_msn= 1",
            "_HLS_msn=1%20",
            "_HLS_msn=%33",
            "_HLS_msn=١",
            "_HLS_msn=18446744073709551616",
            "_HLS_msn=1&_HLS_part=-2",
            "_HLS_msn=1&_HLS_part=4294967296",
            "_HLS_msn=1&_HLS_msn=1",
            "_HLS_msn=1&_HLS_part=0&_HLS_part=0",
            "_HLS_skip=YES&_HLS_skip=YES",
            "_HLS_skip=yes",
            "_HLS_skip=V2",
            "_HLS_skip=NO",
            "_HLS_skip=",
            "_HLS_skip",
        ] {
            match ReloadQuery::parse(bad) {
                Err(LiveError::BadRequest(message)) => assert!(!message.is_empty()),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_do_not_echo_long_input() {
        let long = format!("_HLS_msn={}", "x".repeat(10_000));
        let Err(LiveError::BadRequest(message)) = ReloadQuery::parse(&long) else {
            panic!("accepted");
        };
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn part_without_msn_is_rejected_by_decide_too() {
        let s = rendition();
        let hand_made = ReloadQuery {
            msn: None,
            part: Some(0),
            skip: None,
        };
        assert!(matches!(
            decide(&s, &hand_made, NOW),
            Decision::BadRequest(_)
        ));
    }

    #[test]
    fn plain_requests_are_ready() {
        let s = rendition();
        assert_eq!(decide(&s, &q(""), NOW), Decision::Ready);
        assert_eq!(decide(&s, &q("_HLS_skip=YES"), NOW), Decision::Ready);
    }

    #[test]
    fn ready_when_the_segment_or_part_exists() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        s.apply(part(1, 1)).expect("part");
        for (msn, part) in [(0, None), (0, Some(3)), (1, Some(0)), (1, Some(1))] {
            assert_eq!(
                decide(&s, &blocking(msn, part), NOW),
                Decision::Ready,
                "{msn} {part:?}"
            );
        }
        // _HLS_msn alone waits for the whole segment.
        assert!(matches!(
            decide(&s, &blocking(1, None), NOW),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&s, &blocking(1, Some(2)), NOW),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn segments_out_of_the_window_are_ready() {
        let mut s =
            LiveRendition::new(crate::live::LiveConfig::sliding(3), &start()).expect("start");
        for msn in 0..10 {
            push_segment(&mut s, msn, 4);
        }
        assert!(s.media_sequence() > 0);
        assert_eq!(decide(&s, &blocking(0, Some(1)), NOW), Decision::Ready);
    }

    #[test]
    fn part_past_the_end_of_a_segment_means_part_0_of_the_next() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        // Segment 0 has parts 0..=3: part 4 is part 0 of segment 1, not yet there.
        assert!(matches!(
            decide(&s, &blocking(0, Some(4)), NOW),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&s, &blocking(0, Some(5)), NOW),
            Decision::Wait { .. }
        ));
        s.apply(part(1, 0)).expect("part");
        assert_eq!(decide(&s, &blocking(0, Some(4)), NOW), Decision::Ready);
        assert_eq!(decide(&s, &blocking(0, Some(5)), NOW), Decision::Ready);
    }

    #[test]
    fn two_segments_ahead_wait_three_are_rejected() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        // Last segment is 1 (open).
        assert!(matches!(
            decide(&s, &blocking(3, None), NOW),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&s, &blocking(3, Some(0)), NOW),
            Decision::Wait { .. }
        ));
        match decide(&s, &blocking(4, None), NOW) {
            Decision::BadRequest(m) => assert!(m.contains("_HLS_msn=4"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&s, &blocking(u64::MAX, None), NOW),
            Decision::BadRequest(_)
        ));
    }

    #[test]
    fn parts_beyond_the_advance_part_limit_are_rejected() {
        let mut s = rendition();
        s.apply(part(0, 0)).expect("part"); // last part (0, 0); limit 3 / 0.5 = 6
        assert!(matches!(
            decide(&s, &blocking(0, Some(6)), NOW),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&s, &blocking(0, Some(7)), NOW),
            Decision::BadRequest(_)
        ));
        assert!(matches!(
            decide(&s, &blocking(1, Some(5)), NOW),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&s, &blocking(1, Some(6)), NOW),
            Decision::BadRequest(_)
        ));
    }

    #[test]
    fn unavailable_after_three_target_durations() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        let req = blocking(1, Some(0));
        assert_eq!(blocking_timeout(&s), Duration::from_secs(6));
        assert_eq!(
            decide(&s, &req, NOW),
            Decision::Wait {
                remaining: Duration::from_secs(6)
            }
        );
        assert_eq!(
            decide(&s, &req, Duration::from_millis(5_999)),
            Decision::Wait {
                remaining: Duration::from_millis(1)
            }
        );
        assert_eq!(
            decide(&s, &req, Duration::from_secs(6)),
            Decision::Unavailable
        );
        assert_eq!(decide(&s, &req, Duration::MAX), Decision::Unavailable);
        s.apply(part(1, 0)).expect("part");
        assert_eq!(decide(&s, &req, Duration::from_secs(6)), Decision::Ready);
    }

    #[test]
    fn nothing_published_yet_waits() {
        let s = rendition();
        assert!(matches!(
            decide(&s, &blocking(1_000, Some(3)), NOW),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn ended_playlists_ignore_the_directives() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(LiveEvent::End { last_msn: 0 }).expect("end");
        for req in [
            blocking(1, None),
            blocking(0, Some(9)),
            blocking(99, Some(99)),
        ] {
            assert_eq!(decide(&s, &req, NOW), Decision::Ready);
        }
    }

    #[test]
    fn cache_keys_keep_only_canonical_directives() {
        let a = q("x=1&_HLS_part=2&_HLS_msn=05&_HLS_skip=YES");
        let b = q("_HLS_skip=YES&_HLS_msn=5&_HLS_part=2&token=zz");
        assert_eq!(
            cache_key_for("/v/a/1/720p/index.m3u8", &a),
            cache_key_for("/v/a/1/720p/index.m3u8", &b)
        );
        assert_eq!(
            cache_key_for("/p.m3u8", &a),
            "/p.m3u8?_HLS_msn=5&_HLS_part=2&_HLS_skip=YES"
        );
        assert_eq!(cache_key_for("/p.m3u8", &q("t=1")), "/p.m3u8");
        assert_eq!(
            cache_key_for("/p.m3u8", &q("_HLS_skip=v2")),
            "/p.m3u8?_HLS_skip=v2"
        );
        assert_ne!(
            cache_key_for("/p.m3u8", &q("_HLS_msn=5")),
            cache_key_for("/p.m3u8", &q("_HLS_msn=5&_HLS_part=0"))
        );
    }

    #[test]
    fn preload_part_statuses() {
        let mut s = rendition();
        push_segment(&mut s, 0, 4);
        s.apply(part(1, 0)).expect("part");
        assert_eq!(preload_part_ready(&s, 1, 0), PartStatus::Ready);
        assert_eq!(preload_part_ready(&s, 0, 3), PartStatus::Ready);
        assert_eq!(
            preload_part_ready(&s, 1, 1),
            PartStatus::Pending,
            "the hinted part"
        );
        assert_eq!(preload_part_ready(&s, 1, 2), PartStatus::NotFound);
        assert_eq!(preload_part_ready(&s, 2, 0), PartStatus::NotFound);
        assert_eq!(
            preload_part_ready(&s, 0, 4),
            PartStatus::NotFound,
            "segment 0 has 4 parts"
        );
        // The segment ends at 1 part: the hinted part 1.1 will never exist.
        s.apply(segment_end(1, 0.5)).expect("end");
        assert_eq!(preload_part_ready(&s, 1, 1), PartStatus::NotFound);
        assert_eq!(preload_part_ready(&s, 2, 0), PartStatus::Pending);
        s.apply(LiveEvent::End { last_msn: 1 }).expect("end");
        assert_eq!(preload_part_ready(&s, 2, 0), PartStatus::NotFound);
        assert_eq!(preload_part_ready(&s, 1, 0), PartStatus::Ready);
    }

    #[test]
    fn preload_parts_before_the_window_are_left_to_the_store() {
        let mut s =
            LiveRendition::new(crate::live::LiveConfig::sliding(3), &start()).expect("start");
        for msn in 0..10 {
            push_segment(&mut s, msn, 4);
        }
        assert_eq!(preload_part_ready(&s, 0, 0), PartStatus::Ready);
    }

    proptest! {
        #[test]
        fn parse_never_panics(query in "\\PC*") {
            let _ = ReloadQuery::parse(&query);
        }

        #[test]
        fn parse_never_panics_on_directive_soup(
            pieces in proptest::collection::vec(
                ("(_HLS_msn|_HLS_part|_HLS_skip|x|)", "(=)?", "[0-9a-zA-Z%+-]{0,25}"),
                0..6,
            )
        ) {
            let query: Vec<String> =
                pieces.iter().map(|(n, eq, v)| format!("{n}{eq}{v}")).collect();
            let query = query.join("&");
            if let Ok(parsed) = ReloadQuery::parse(&query) {
                prop_assert!(parsed.part.is_none() || parsed.msn.is_some());
                // The canonical key parses back to the same directives.
                let key = cache_key_for("/p", &parsed);
                let reparsed = ReloadQuery::parse(key.trim_start_matches("/p"));
                prop_assert_eq!(reparsed, Ok(parsed));
            }
        }
    }
}
