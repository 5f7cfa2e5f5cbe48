//! Phone numbers never appear in Redis key names: the per-number rate limits count under a keyed
//! hash of the number (HMAC-SHA256 with `abuse.number_key_secret`), so SCAN, MONITOR and a
//! Redis operator see an opaque token, and nobody without the secret can test a guessed number.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// Used when `abuse.number_key_secret` is empty: the keys are still no numbers, but anyone who
/// knows this constant (it is public) can test guessed numbers against them. Set a secret.
const UNSET: &[u8] = b"callverify number key: abuse.number_key_secret is not set";

/// The keyed hash that stands for a number in key names.
#[derive(Clone)]
pub struct NumberKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for NumberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NumberKey(<redacted>)")
    }
}

impl NumberKey {
    /// From `abuse.number_key_secret` (empty: a built-in key, with a warning at start).
    pub fn new(secret: &Secret) -> Self {
        let key = if secret.expose().is_empty() {
            tracing::warn!(
                "abuse.number_key_secret is not set: phone numbers in rate-limit key names are hashed with a public key; set a secret (see docs/OPERATIONS.md)"
            );
            UNSET
        } else {
            secret.expose().as_bytes()
        };
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// The token for `e164` in key names: 128 bits of HMAC-SHA256, in hex (32 characters).
    pub fn token(&self, e164: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(e164.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_keyed_stable_and_hold_no_digits_of_the_number() {
        let key = NumberKey::new(&Secret::new("s3cret"));
        let token = key.token("+31201234567");
        assert_eq!(token.len(), 32);
        assert_eq!(token, key.token("+31201234567"));
        assert_ne!(token, key.token("+31201234568"));
        assert_ne!(
            token,
            NumberKey::new(&Secret::new("other")).token("+31201234567")
        );
        assert_ne!(
            token,
            NumberKey::new(&Secret::new("")).token("+31201234567")
        );
        assert!(!token.contains("1234567"));
    }
}
