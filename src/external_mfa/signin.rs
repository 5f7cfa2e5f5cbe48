//! One sign-in as it is kept between Entra's POST and the post-back: the checked request and the
//! hint's subject, under an opaque id derived from the request itself — the same POST again
//! (refresh, back button) finds the same sign-in and its call, and nobody without the server's
//! key can derive an id.

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a sign-in is kept: Entra abandons it after about 5 minutes (docs/ENTRA.md#limits);
/// 10 minutes is the ceiling.
pub const TTL_SECS: u64 = 600;

/// Calls one sign-in may place ("Call again" included); the rate limits apply to each.
pub const MAX_CALLS: u32 = 3;

/// How long a sign-in's call may be named without its verification existing and still read
/// `calling`: the sign-in names the verification before the start stores it (the same script
/// that creates the sign-in or counts "Call again"), so a concurrent repeated POST or status
/// poll may look in between. A start admits (or refuses, ending the sign-in) within its request
/// deadline, far shorter; after this long, a named verification that does not exist was never
/// stored or its start was undone, and the call reads `failed`.
pub const PENDING_GRACE_SECS: i64 = 30;

/// What a sign-in keeps (JSON in the `request` field of its hash).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignInRecord {
    pub tenant: String,
    /// callverify's user id (the hint's `user_claim`).
    pub user: String,
    /// The hint's `sub`: our id_token's `sub`.
    pub sub: String,
    pub nonce: String,
    pub state: String,
    pub redirect_uri: String,
    pub acr: String,
    /// `en` or `nl`: the page and the call speak it.
    pub lang: String,
    pub client_request_id: Option<String>,
}

/// The opaque id of the sign-in `parts` (tenant, nonce, state, hint) describe: HMAC-SHA256
/// under `secret`, 128 bits in hex.
pub fn signin_id(secret: &[u8], parts: &[&str]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Whether `id` has the shape of a sign-in id (checked before it reaches a Redis key).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_part_and_the_secret() {
        let a = signin_id(b"k", &["t", "n", "s", "h"]);
        assert!(valid_id(&a));
        assert_eq!(a, signin_id(b"k", &["t", "n", "s", "h"]));
        assert_ne!(a, signin_id(b"k2", &["t", "n", "s", "h"]));
        assert_ne!(a, signin_id(b"k", &["t", "ns", "", "h"]));
        assert!(!valid_id("../x"));
    }
}
