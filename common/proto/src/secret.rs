//! Handling of shared secrets (admin keys, stream keys, pull tokens): comparison that does not
//! leak where two values differ, a minimum strength, a form that is safe to log, and the bearer
//! token of an `Authorization` header.

/// Fewest characters a configured secret may have. 16 characters of `[A-Za-z0-9_-]` are about
/// 95 bits even when a human picks them from that alphabet at random; shorter keys are guessable
/// by an online attacker who sees the service accept one attempt per request.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a configured secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    #[error("{what} is {len} characters; at least {MIN_SECRET_LEN} are required")]
    TooShort { what: String, len: usize },
    #[error("{what} uses one repeated character")]
    Repetitive { what: String },
}

/// Refuse a secret that is too short or a single character repeated. `what` names it in the
/// error (e.g. `"admin_key"`, `"live stream key \"ab…\""`).
pub fn check_strength(what: &str, secret: &str) -> Result<(), WeakSecret> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Err(WeakSecret::TooShort {
            what: what.to_string(),
            len,
        });
    }
    let mut chars = secret.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(WeakSecret::Repetitive {
            what: what.to_string(),
        });
    }
    Ok(())
}

/// Equal-length byte comparison whose time does not depend on where the inputs differ (the
/// length itself is not secret: every key of a kind has the same shape).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
/// RFC 6750 §2.1), `None` for any other scheme.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The form of a secret that may appear in logs: its first four characters and its length,
/// enough for an operator to tell keys apart, useless to an attacker.
pub fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({} chars)", secret.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength() {
        assert!(check_strength("k", "0123456789abcdef").is_ok());
        assert_eq!(
            check_strength("admin_key", "short"),
            Err(WeakSecret::TooShort {
                what: "admin_key".into(),
                len: 5
            })
        );
        assert!(matches!(
            check_strength("k", &"a".repeat(32)),
            Err(WeakSecret::Repetitive { .. })
        ));
        // Multi-byte characters count as characters, not bytes.
        assert!(check_strength("k", "ééééééééé").is_err());
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn redaction_hides_all_but_the_head() {
        let r = redact("supersecretstreamkey");
        assert_eq!(r, "supe…(20 chars)");
        assert!(!r.contains("secret"));
        assert_eq!(redact("ab"), "ab…(2 chars)");
    }
}
