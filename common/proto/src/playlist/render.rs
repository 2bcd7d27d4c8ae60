//! Attribute-list formatting (RFC 8216 §4.2) and the text checks that keep rendered values
//! inside the playlist syntax. Shared by the multivariant and media playlist renderers so
//! every tag quotes, separates and rounds the same way.

use std::fmt::{self, Write};

use super::PlaylistError;

/// Decimals of `EXTINF` and `EXT-X-PART:DURATION`: 10 µs, finer than any frame duration, so
/// summed part durations match their segment.
pub(super) const DURATION_DECIMALS: usize = 5;
/// Decimals of `PART-TARGET`. Same as part durations: with fewer, a part of 0.33334 s under a
/// 0.33334 s target would render above a `PART-TARGET=0.333` and break the ≤ rule.
pub(super) const PART_TARGET_DECIMALS: usize = 5;
/// Decimals of `PART-HOLD-BACK`, `HOLD-BACK`, `CAN-SKIP-UNTIL` and `FRAME-RATE`.
pub(super) const COARSE_DECIMALS: usize = 3;

/// Writer of one `#TAG:NAME=value,...` line.
pub(super) struct Attrs<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write> Attrs<'w, W> {
    /// Starts the line with `tag` and its colon.
    pub(super) fn new(w: &'w mut W, tag: &str) -> Result<Self, fmt::Error> {
        w.write_str(tag)?;
        w.write_char(':')?;
        Ok(Self { w, first: true })
    }

    fn name(&mut self, name: &str) -> fmt::Result {
        if !self.first {
            self.w.write_char(',')?;
        }
        self.first = false;
        self.w.write_str(name)?;
        self.w.write_char('=')
    }

    /// quoted-string; callers validate that `value` has no `"` or control characters.
    pub(super) fn quoted(&mut self, name: &str, value: &str) -> Result<&mut Self, fmt::Error> {
        self.name(name)?;
        write!(self.w, "\"{value}\"")?;
        Ok(self)
    }

    /// decimal-integer.
    pub(super) fn int(&mut self, name: &str, value: u64) -> Result<&mut Self, fmt::Error> {
        self.name(name)?;
        write!(self.w, "{value}")?;
        Ok(self)
    }

    /// decimal-floating-point with a fixed number of decimals.
    pub(super) fn decimal(
        &mut self,
        name: &str,
        value: f64,
        decimals: usize,
    ) -> Result<&mut Self, fmt::Error> {
        self.name(name)?;
        write!(self.w, "{value:.decimals$}")?;
        Ok(self)
    }

    /// enumerated-string (unquoted).
    pub(super) fn enumerated(&mut self, name: &str, value: &str) -> Result<&mut Self, fmt::Error> {
        self.name(name)?;
        self.w.write_str(value)?;
        Ok(self)
    }

    /// decimal-resolution `WxH`.
    pub(super) fn resolution(
        &mut self,
        name: &str,
        (width, height): (u32, u32),
    ) -> Result<&mut Self, fmt::Error> {
        self.name(name)?;
        write!(self.w, "{width}x{height}")?;
        Ok(self)
    }

    /// Ends the line.
    pub(super) fn end(&mut self) -> fmt::Result {
        self.w.write_char('\n')
    }
}

/// `value` as a client reads it back after rendering with `decimals` decimals, so validation
/// judges the text that is served rather than the unrounded model.
pub(super) fn rendered(value: f64, decimals: usize) -> f64 {
    format!("{value:.decimals$}").parse().unwrap_or(value)
}

/// Nearest integer with halves rounded up (the `EXTINF` ≤ `TARGETDURATION` rule rounds to the
/// nearest integer; a rendered x.50000 goes up). Non-finite or negative input saturates.
pub(super) fn round_half_up(value: f64) -> u64 {
    // `as` saturates: NaN and negatives become 0, +inf becomes u64::MAX.
    (value + 0.5).floor() as u64
}

/// Rejects a value for a quoted-string or URI line: empty, `"` or control characters.
pub(super) fn check_quoted(field: &'static str, value: &str) -> Result<(), PlaylistError> {
    if value.is_empty() || value.contains('"') {
        return Err(invalid_text(field, value));
    }
    check_text(field, value)
}

/// Rejects control characters in free text (`EXTINF` titles, dates): CR/LF would end the tag
/// line early, the rest are forbidden in playlists (RFC 8216 §4.1).
pub(super) fn check_text(field: &'static str, value: &str) -> Result<(), PlaylistError> {
    if value.chars().any(char::is_control) {
        return Err(invalid_text(field, value));
    }
    Ok(())
}

fn invalid_text(field: &'static str, value: &str) -> PlaylistError {
    PlaylistError::InvalidText {
        field,
        value: value.to_owned(),
    }
}

/// Rejects negative, NaN and infinite numbers.
pub(super) fn check_number(what: &'static str, value: f64) -> Result<(), PlaylistError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PlaylistError::InvalidNumber { what, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_line() {
        let mut s = String::new();
        let mut a = Attrs::new(&mut s, "#EXT-X-TEST").unwrap();
        a.int("A", 1)
            .unwrap()
            .quoted("B", "x y")
            .unwrap()
            .decimal("C", 0.5, 3)
            .unwrap()
            .enumerated("D", "YES")
            .unwrap()
            .resolution("E", (1920, 1080))
            .unwrap();
        a.end().unwrap();
        assert_eq!(s, "#EXT-X-TEST:A=1,B=\"x y\",C=0.500,D=YES,E=1920x1080\n");
    }

    #[test]
    fn rounding_follows_rendered_text() {
        assert_eq!(rendered(2.499_996, 5), 2.5);
        assert_eq!(round_half_up(rendered(2.499_996, 5)), 3);
        assert_eq!(round_half_up(2.49), 2);
        assert_eq!(round_half_up(2.5), 3);
        assert_eq!(round_half_up(f64::NAN), 0);
        assert_eq!(round_half_up(-3.0), 0);
    }

    #[test]
    fn text_checks() {
        assert!(check_quoted("uri", "seg1.m4s").is_ok());
        assert!(check_quoted("uri", "").is_err());
        assert!(check_quoted("uri", "a\"b").is_err());
        assert!(check_quoted("uri", "a\nb").is_err());
        assert!(check_text("title", "").is_ok());
        assert!(check_text("title", "a\rb").is_err());
        assert!(check_number("d", 1.0).is_ok());
        assert!(check_number("d", -1.0).is_err());
        assert!(check_number("d", f64::INFINITY).is_err());
    }
}
