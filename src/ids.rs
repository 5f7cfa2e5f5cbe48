//! Identifier newtypes that can only hold valid values ("parse, don't validate").
//!
//! Tenant and user ids: 1–64 characters of `A-Z a-z 0-9 . _ @ -` (an e-mail address or a GUID fits).
//! Verification ids are unguessable: a 16-hex "user tag" (so the verification and the user's
//! methods share a Redis Cluster hash slot) followed by 128 random bits in hex.

use std::fmt;

use rand::RngExt;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub &'static str);

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

macro_rules! name_id {
    ($name:ident, $what:literal) => {
        /// Deserializes (configuration) through [`Self::parse`]: an invalid id fails at load.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                if valid_name(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId(concat!(
                        $what,
                        " ids are 1-64 characters of A-Z a-z 0-9 . _ @ -"
                    )))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_id!(TenantId, "tenant");
name_id!(UserId, "user");

/// 16 hex characters derived from tenant and user: the Redis hash tag shared by all of a user's keys.
pub fn user_tag(tenant: &TenantId, user: &UserId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_str().as_bytes());
    hasher.update([0x1f]);
    hasher.update(user.as_str().as_bytes());
    hex::encode(&hasher.finalize()[..8])
}

const TAG_LEN: usize = 16;
const RANDOM_LEN: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerificationId(String);

impl VerificationId {
    /// A fresh id for a verification of `tenant`/`user`.
    pub fn generate(tenant: &TenantId, user: &UserId) -> Self {
        Self::generate_for_tag(&user_tag(tenant, user))
    }

    /// A fresh id under an already computed [`user_tag`] (saves hashing it again).
    pub fn generate_for_tag(tag: &str) -> Self {
        let random: [u8; 16] = rand::rng().random();
        let mut id = String::with_capacity(TAG_LEN + RANDOM_LEN);
        id.push_str(tag);
        id.push_str(&hex::encode(random));
        Self(id)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == TAG_LEN + RANDOM_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(
                "verification ids are 48 lowercase hex characters",
            ))
        }
    }

    /// The user's hash tag this verification belongs to.
    pub fn user_tag(&self) -> &str {
        &self.0[..TAG_LEN]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A security-info method id: phone methods use fixed ids per phone type (as Microsoft Graph
/// does), other methods a random UUID-shaped id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodId(String);

impl MethodId {
    pub fn generate() -> Self {
        let b: [u8; 16] = rand::rng().random();
        let h = hex::encode(b);
        Self(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let shape_ok = s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            });
        if shape_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId("method ids are lowercase UUIDs"))
        }
    }

    pub fn from_static(s: &'static str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_documented_charset_only() {
        assert!(UserId::parse("alice@contoso.com").is_ok());
        assert!(UserId::parse("a-b_c.d").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(TenantId::parse("con toso").is_err());
        assert!(TenantId::parse("{tag}").is_err());
    }

    #[test]
    fn verification_ids_carry_the_user_tag_and_round_trip() {
        let t = TenantId::parse("contoso").unwrap();
        let u = UserId::parse("alice").unwrap();
        let a = VerificationId::generate(&t, &u);
        let b = VerificationId::generate(&t, &u);
        assert_ne!(a, b);
        assert_eq!(a.user_tag(), user_tag(&t, &u));
        assert_eq!(VerificationId::parse(a.as_str()).unwrap(), a);
        assert!(VerificationId::parse("0123").is_err());
        assert!(VerificationId::parse(&a.as_str().to_uppercase()).is_err());
    }

    #[test]
    fn user_tags_separate_tenant_from_user() {
        let t1 = TenantId::parse("ab").unwrap();
        let u1 = UserId::parse("c").unwrap();
        let t2 = TenantId::parse("a").unwrap();
        let u2 = UserId::parse("bc").unwrap();
        assert_ne!(user_tag(&t1, &u1), user_tag(&t2, &u2));
    }

    #[test]
    fn method_ids_are_uuid_shaped() {
        let id = MethodId::generate();
        assert_eq!(MethodId::parse(id.as_str()).unwrap(), id);
        assert!(MethodId::parse("3179e48a-750b-4051-897c-87b9720928f7").is_ok());
        assert!(MethodId::parse("3179E48A-750b-4051-897c-87b9720928f7").is_err());
        assert!(MethodId::parse("nope").is_err());
    }
}
