//! Single byte-range requests (RFC 9110 §14), sans-IO.
//!
//! The edge answers one range per request: `bytes=a-b`, `bytes=a-` and `bytes=-n`. A request
//! for several ranges, a unit other than `bytes`, or a header that does not parse is answered in
//! full with 200, which RFC 9110 §14.2 allows ("a server MAY ignore the Range header field").
//! Only a syntactically valid single range none of whose bytes exist is 416.
//!
//! The result is a pair of numbers (offset, length) so the same decision serves a body held in
//! memory (`body.slice(..)`) and a file sent with `sendfile(fd, offset, len)`.

/// What to send for a `Range` header against a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 200 with the whole representation (no header, ignored header, or whole range).
    Full,
    /// 206 with bytes `start..=end` (inclusive, as in `Content-Range`).
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl RangeOutcome {
    /// Offset and length of the bytes to send for a representation of `total` bytes (what a
    /// `sendfile` loop or `Bytes::slice` needs); `None` for 416.
    pub fn span(&self, total: u64) -> Option<(u64, u64)> {
        match *self {
            RangeOutcome::Full => Some((0, total)),
            RangeOutcome::Partial { start, end } => Some((start, end - start + 1)),
            RangeOutcome::Unsatisfiable => None,
        }
    }

    /// The `Content-Range` value for a 206 or 416 (`None` for a full response).
    pub fn content_range(&self, total: u64) -> Option<String> {
        match *self {
            RangeOutcome::Full => None,
            RangeOutcome::Partial { start, end } => Some(format!("bytes {start}-{end}/{total}")),
            RangeOutcome::Unsatisfiable => Some(format!("bytes */{total}")),
        }
    }

    /// The status this outcome answers with.
    pub fn status(&self) -> u16 {
        match self {
            RangeOutcome::Full => 200,
            RangeOutcome::Partial { .. } => 206,
            RangeOutcome::Unsatisfiable => 416,
        }
    }
}

/// Decide what a `Range` header value (`None`: no header) asks of a representation of `len`
/// bytes. Never fails: anything that is not one valid byte range means [`RangeOutcome::Full`].
pub fn evaluate(header: Option<&str>, len: u64) -> RangeOutcome {
    let Some(value) = header else {
        return RangeOutcome::Full;
    };
    let Some(spec) = parse_single(value) else {
        return RangeOutcome::Full;
    };
    let (start, end) = match spec {
        Spec::From(first, last) => {
            if first >= len {
                return RangeOutcome::Unsatisfiable;
            }
            // A last-pos past the end is clipped to the end (§14.1.2).
            (first, last.map_or(len - 1, |l| l.min(len - 1)))
        }
        Spec::Suffix(n) => {
            // "-0" selects nothing; any suffix of an empty representation likewise (§14.1.2).
            if n == 0 || len == 0 {
                return RangeOutcome::Unsatisfiable;
            }
            (len.saturating_sub(n), len - 1)
        }
    };
    if start == 0 && end == len - 1 {
        // The whole representation: a plain 200 is simpler for every client and cache.
        return RangeOutcome::Full;
    }
    RangeOutcome::Partial { start, end }
}

/// One parsed `range-spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-[last]`.
    From(u64, Option<u64>),
    /// `-suffix`.
    Suffix(u64),
}

/// `bytes=<one range-spec>` with optional whitespace (the unit is case-insensitive, §14.1);
/// `None` for anything else, including lists of several ranges.
fn parse_single(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::From(first, None));
    }
    let last = digits(last)?;
    // last < first is invalid syntax (§14.1.1): ignored, not 416.
    (last >= first).then_some(Spec::From(first, Some(last)))
}

/// A non-empty run of ASCII digits that fits in u64.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::{Full, Partial, Unsatisfiable};

    fn p(start: u64, end: u64) -> RangeOutcome {
        Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        let cases = [
            ("bytes=0-9", p(0, 9)),
            ("bytes=10-", p(10, 99)),
            ("bytes=-10", p(90, 99)),
            ("bytes=90-200", p(90, 99)),
            ("bytes=99-99", p(99, 99)),
            ("BYTES = 5 - 6 ", p(5, 6)),
            ("bytes=0-", Full),
            ("bytes=0-99", Full),
            ("bytes=-100", Full),
            ("bytes=-1000", Full),
            ("bytes=100-", Unsatisfiable),
            ("bytes=100-200", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
        ];
        for (h, want) in cases {
            assert_eq!(evaluate(Some(h), 100), want, "{h}");
        }
    }

    #[test]
    fn ignored_headers_mean_full() {
        for h in [
            "bytes=0-1,5-6",
            "bytes=0-1, 5-6",
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(evaluate(Some(h), 100), Full, "{h:?}");
        }
        assert_eq!(evaluate(None, 100), Full);
    }

    #[test]
    fn empty_representation() {
        assert_eq!(evaluate(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(evaluate(None, 0), Full);
    }

    #[test]
    fn spans_and_headers() {
        assert_eq!(p(10, 19).span(100), Some((10, 10)));
        assert_eq!(Full.span(100), Some((0, 100)));
        assert_eq!(Unsatisfiable.span(100), None);
        assert_eq!(
            p(10, 19).content_range(100).as_deref(),
            Some("bytes 10-19/100")
        );
        assert_eq!(
            Unsatisfiable.content_range(100).as_deref(),
            Some("bytes */100")
        );
        assert_eq!(Full.content_range(100), None);
        assert_eq!(
            (Full.status(), p(0, 0).status(), Unsatisfiable.status()),
            (200, 206, 416)
        );
    }

    proptest::proptest! {
        #[test]
        fn partial_ranges_stay_inside(h in "\\PC{0,24}", len in 0u64..1000) {
            match evaluate(Some(&h), len) {
                Partial { start, end } => {
                    proptest::prop_assert!(start <= end && end < len);
                    proptest::prop_assert!(!(start == 0 && end == len - 1));
                }
                Full | Unsatisfiable => {}
            }
        }

        #[test]
        fn numeric_ranges_stay_inside(a in 0u64..2000, b in 0u64..2000, len in 0u64..1000) {
            if let Partial { start, end } = evaluate(Some(&format!("bytes={a}-{b}")), len) {
                proptest::prop_assert!(start == a && end == b.min(len - 1));
            }
        }
    }
}
