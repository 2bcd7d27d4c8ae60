//! API keys, owners and roles: the pure part of the platform's authentication (DESIGN.md "The
//! platform model").
//!
//! A key is a bearer token `rck_{key_id}_{secret}`: `key_id` (12 base62 characters, ≈71 bits)
//! names its record in Redis (`rc:apikey:{key_id}`, so a lookup is one `HGETALL`, no index and
//! no scan), `secret` (32 base62 characters, ≈190 bits) makes it unguessable. Only the SHA-256 of
//! the whole token is stored; the token itself is shown once, when the key is made. A request's
//! token is checked by hashing it and comparing the hashes in constant time
//! ([`ApiToken::matches`]).
//!
//! Every key belongs to an owner (an account id) and carries a [`Role`]. What a role may do is
//! decided here, in one place ([`Role`], [`Caller`]), and used by every handler.

use sha2::{Digest, Sha256};

use crate::keys::is_valid_id;
use crate::secret::constant_time_eq;

/// Every token starts with this, so a leaked one is easy to recognise (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "rck_";
/// Length of the key id inside a token.
pub const KEY_ID_LEN: usize = 12;
/// Length of the secret inside a token.
pub const SECRET_LEN: usize = 32;
/// The owner every caller is in `auth.mode = "open"`, and of videos made before keys existed.
pub const ANONYMOUS_OWNER: &str = "anonymous";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, on every owner's videos: any job priority, keys of any owner.
    Admin,
    /// Upload and manage its owner's videos; jobs run at normal priority.
    Uploader,
    /// Read its owner's videos (status, listing, playback URLs); no changes.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Uploader, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Uploader => "uploader",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// May create uploads and change videos (its owner's, or any for an admin).
    pub fn may_write(self) -> bool {
        matches!(self, Role::Admin | Role::Uploader)
    }

    /// May act on every owner's videos and choose any job priority.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is making a request, once their key (or the open mode) has been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: String,
    pub role: Role,
    /// The key that authenticated the request; `None` in open mode.
    pub key_id: Option<String>,
}

impl Caller {
    /// The caller of open mode: owner [`ANONYMOUS_OWNER`], role uploader.
    pub fn anonymous() -> Self {
        Self {
            owner: ANONYMOUS_OWNER.to_string(),
            role: Role::Uploader,
            key_id: None,
        }
    }

    /// May this caller see a video owned by `owner` (`None`: made before owners existed, so
    /// [`ANONYMOUS_OWNER`]'s)?
    pub fn may_read(&self, owner: Option<&str>) -> bool {
        self.role.is_admin() || owner.unwrap_or(ANONYMOUS_OWNER) == self.owner
    }

    /// May this caller change or delete a video owned by `owner`?
    pub fn may_change(&self, owner: Option<&str>) -> bool {
        self.role.may_write() && self.may_read(owner)
    }
}

/// An owner id: 1–64 characters of `[A-Za-z0-9_-]` (it becomes part of Redis keys).
pub fn is_valid_owner(owner: &str) -> bool {
    is_valid_id(owner)
}

/// A token as presented in `Authorization: Bearer …`, checked for shape only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken<'a> {
    token: &'a str,
    key_id: &'a str,
}

impl<'a> ApiToken<'a> {
    /// `None` unless `token` has the shape `rck_{12 base62}_{32 base62}`: anything else is
    /// refused before Redis is asked.
    pub fn parse(token: &'a str) -> Option<Self> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        let (key_id, secret) = rest.split_once('_')?;
        let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        (key_id.len() == KEY_ID_LEN
            && secret.len() == SECRET_LEN
            && base62(key_id)
            && base62(secret))
        .then_some(Self { token, key_id })
    }

    /// The id of the key record this token claims to belong to.
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// Does this token hash to `stored_hash` (hex SHA-256, as made by [`token_hash`])?
    /// Constant time in the hash's content.
    pub fn matches(&self, stored_hash: &str) -> bool {
        constant_time_eq(token_hash(self.token).as_bytes(), stored_hash.as_bytes())
    }
}

/// Hex SHA-256 of a whole token: the only form of it that is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A freshly made key: the token to show once, and what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub key_id: String,
    pub token: String,
    pub hash: String,
}

/// Make a key from three random 128-bit numbers (from the OS generator; the caller supplies
/// them so this stays pure and testable). The key id takes 12 base62 digits of the first, the
/// secret 16 of each of the other two.
pub fn new_key(random: [u128; 3]) -> NewKey {
    let key_id = base62(random[0], KEY_ID_LEN);
    let secret = base62(random[1], SECRET_LEN / 2) + &base62(random[2], SECRET_LEN / 2);
    let token = format!("{TOKEN_PREFIX}{key_id}_{secret}");
    NewKey {
        hash: token_hash(&token),
        key_id,
        token,
    }
}

fn base62(mut n: u128, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roles() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Admin.may_write() && Role::Uploader.may_write());
        assert!(!Role::Viewer.may_write());
        assert!(Role::Admin.is_admin() && !Role::Uploader.is_admin());
    }

    #[test]
    fn ownership() {
        let alice = Caller {
            owner: "alice".into(),
            role: Role::Uploader,
            key_id: None,
        };
        assert!(alice.may_read(Some("alice")) && alice.may_change(Some("alice")));
        assert!(!alice.may_read(Some("bob")) && !alice.may_change(Some("bob")));
        assert!(!alice.may_read(None), "an ownerless video is anonymous's");
        let viewer = Caller {
            role: Role::Viewer,
            ..alice.clone()
        };
        assert!(viewer.may_read(Some("alice")) && !viewer.may_change(Some("alice")));
        let admin = Caller {
            role: Role::Admin,
            ..alice
        };
        assert!(admin.may_change(Some("bob")) && admin.may_change(None));
        assert!(Caller::anonymous().may_change(None));
    }

    #[test]
    fn new_keys_parse_and_match_only_their_hash() {
        let k = new_key([1, 2, 3]);
        let other = new_key([1, 2, 4]);
        assert_eq!(k.key_id, other.key_id, "same id input");
        assert_ne!(k.token, other.token);
        let t = ApiToken::parse(&k.token).expect("own format");
        assert_eq!(t.key_id(), k.key_id);
        assert!(t.matches(&k.hash));
        assert!(!t.matches(&other.hash));
        assert!(!t.matches(""));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let k = new_key([u128::MAX, u128::MAX, u128::MAX]).token;
        assert!(ApiToken::parse(&k).is_some());
        for bad in [
            "",
            "rck_",
            &k[1..],
            &k[..k.len() - 1],
            &format!("{k}x"),
            &k.replacen('_', "-", 2),
            &format!("{}é", &k[..k.len() - 2]),
            &format!("{}!", &k[..k.len() - 1]),
            "rck_abcdefghijkl_",
            "Bearer rck_x",
        ] {
            assert!(ApiToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_generated_key_has_the_format(a: u128, b: u128, c: u128) {
            let k = new_key([a, b, c]);
            prop_assert_eq!(k.token.len(), TOKEN_PREFIX.len() + KEY_ID_LEN + 1 + SECRET_LEN);
            let t = ApiToken::parse(&k.token).unwrap();
            prop_assert!(t.matches(&k.hash));
            prop_assert!(is_valid_id(&k.key_id));
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = ApiToken::parse(&s);
        }
    }
}
