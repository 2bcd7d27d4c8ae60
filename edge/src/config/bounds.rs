//! Bounds shared by every section of the configuration (the edge's own fields and `[live]`).
//!
//! A leaf module so that a section living elsewhere (`live::settings`) can check its fields the
//! same way without importing the configuration that contains it.

/// Upper bound of every `*_ms` field: one day. Bounded so deadline arithmetic
/// (`Instant + Duration`) can never overflow.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// The first field that is zero, as "`{name}` must be positive".
pub fn positive(fields: &[(&str, u64)]) -> Result<(), String> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(format!("{name} must be positive")),
        None => Ok(()),
    }
}

/// The first duration above [`MAX_DURATION_MS`], as "`{name}` must be at most …".
pub fn at_most_one_day(fields: &[(&str, u64)]) -> Result<(), String> {
    match fields.iter().find(|(_, v)| *v > MAX_DURATION_MS) {
        Some((name, _)) => Err(format!(
            "{name} must be at most {MAX_DURATION_MS} (one day)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_field_is_named() {
        assert_eq!(
            positive(&[("a", 1), ("b", 0), ("c", 0)]),
            Err("b must be positive".into())
        );
        assert_eq!(positive(&[("a", 1)]), Ok(()));
        assert_eq!(at_most_one_day(&[("a", MAX_DURATION_MS)]), Ok(()));
        assert!(at_most_one_day(&[("a", 0), ("b", MAX_DURATION_MS + 1)])
            .is_err_and(|m| m.starts_with("b must be at most")));
    }
}
