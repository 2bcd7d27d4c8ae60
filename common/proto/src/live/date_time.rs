//! `EXT-X-PROGRAM-DATE-TIME` values: Unix milliseconds formatted as RFC 3339 / ISO 8601 in UTC
//! with millisecond precision (`2026-11-27T08:00:00.000Z`), as RFC 8216 §4.3.2.6 asks ("SHOULD
//! indicate a time zone and fractional parts of seconds, to millisecond accuracy").
//!
//! Written by hand (no chrono/time dependency): the proleptic Gregorian calendar conversion is
//! Howard Hinnant's `civil_from_days`, exact for every day the input range can name.

/// Milliseconds per day.
const MS_PER_DAY: u64 = 86_400_000;

/// `unix_ms` (milliseconds since 1970-01-01T00:00:00Z, leap seconds not counted, as every Unix
/// clock) as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Years after 9999 (not representable in RFC 3339)
/// are written with more digits rather than failing.
pub fn format_rfc3339_millis(unix_ms: u64) -> String {
    // u64::MAX ms is ~2.1e11 days: comfortably inside i64.
    let days = (unix_ms / MS_PER_DAY) as i64;
    let ms_of_day = unix_ms % MS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    let hour = ms_of_day / 3_600_000;
    let minute = ms_of_day / 60_000 % 60;
    let second = ms_of_day / 1000 % 60;
    let millis = ms_of_day % 1000;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01, proleptic Gregorian.
///
/// Shifts the year to start on March 1st so the leap day is the last day of the year, then
/// splits into 400-year eras of 146 097 days, years of era and days of year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Inverse of `civil_from_days` (Hinnant's `days_from_civil`), an independent check.
    pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Unix milliseconds of a UTC civil time.
    pub(crate) fn unix_ms(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64, ms: u64) -> u64 {
        let days = days_from_civil(y, mo, d) as u64;
        days * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + ms
    }

    #[test]
    fn known_instants() {
        // Reference values from `date -u -d ... +%s`.
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_766_400_000, "2026-11-27T08:00:00.000Z"),
            (1_735_689_600_000, "2025-01-01T00:00:00.000Z"),
            (94_694_399_999, "1972-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (1_795_766_400_007, "2026-11-27T08:00:00.007Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_rfc3339_millis(ms), text, "{ms}");
        }
    }

    #[test]
    fn leap_years() {
        // Divisible by 400: leap.
        assert_eq!(
            format_rfc3339_millis(951_827_696_000),
            "2000-02-29T12:34:56.000Z"
        );
        // Divisible by 4, not by 100: leap; the next second is March 1st.
        assert_eq!(
            format_rfc3339_millis(1_709_251_199_000),
            "2024-02-29T23:59:59.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(1_709_251_200_000),
            "2024-03-01T00:00:00.000Z"
        );
        // Divisible by 100, not by 400: not leap, Feb 28th is followed by March 1st.
        assert_eq!(
            format_rfc3339_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(4_107_542_400_000 - 1),
            "2100-02-28T23:59:59.999Z"
        );
        // 2023 is not leap: Dec 31st is day 365.
        assert_eq!(
            format_rfc3339_millis(unix_ms(2023, 12, 31, 0, 0, 0, 0)),
            "2023-12-31T00:00:00.000Z"
        );
    }

    #[test]
    fn never_panics_at_the_extremes() {
        let text = format_rfc3339_millis(u64::MAX);
        assert!(text.ends_with('Z'), "{text}");
    }

    proptest! {
        /// Formatting then reading the fields back with the independent inverse gives the
        /// same instant, for every millisecond up to year 9999.
        #[test]
        fn roundtrips(ms in 0u64..=253_402_300_799_999) {
            let text = format_rfc3339_millis(ms);
            prop_assert_eq!(text.len(), 24);
            let num = |r: std::ops::Range<usize>| text[r].parse::<u64>().expect("digits");
            let back = unix_ms(
                num(0..4) as i64,
                num(5..7) as u32,
                num(8..10) as u32,
                num(11..13),
                num(14..16),
                num(17..19),
                num(20..23),
            );
            prop_assert_eq!(back, ms, "{}", text);
        }
    }
}
