//! Standard Webhooks signing (`webhook-signature: v1,<base64>`) for events we send to
//! portal back-ends. See docs/PROVIDERS.md#standard-webhooks. Verifying is the receiver's job, so there is no verifier
//! here; tests check us against the reference libraries' vectors instead.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix the spec puts in front of a serialised symmetric secret.
const SECRET_PREFIX: &str = "whsec_";

/// A portal's symmetric signing key (`whsec_<base64>`). `Debug` never shows the key;
/// configuration deserializes it through [`WebhookSecret::parse`].
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Why a configured webhook secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("the webhook secret is not valid base64 after the optional `whsec_` prefix")]
    InvalidBase64,
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` or bare base64. Padding is optional, as in the reference
    /// python library, because secrets get copied around without their trailing `=`.
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        if encoded.is_empty() {
            return Err(WebhookSecretError::Empty);
        }
        let key = STANDARD_NO_PAD_INDIFFERENT
            .decode(encoded)
            .map_err(|_| WebhookSecretError::InvalidBase64)?;
        if key.is_empty() {
            return Err(WebhookSecretError::Empty);
        }
        Ok(Self { key })
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = WebhookSecretError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl FromStr for WebhookSecret {
    type Err = WebhookSecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` value for one message: `v1,` then the Base64 HMAC-SHA256 of
/// `{msg_id}.{timestamp}.{payload}`. `payload` must be the exact bytes sent as the body.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.key).expect("HMAC takes any key");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../tests/fixtures/provider_vectors.json");

    #[test]
    fn signs_both_reference_vectors() {
        let all: Value = serde_json::from_str(VECTORS).expect("vectors are JSON");
        let cases = all["standard_webhooks"].as_array().expect("vectors");
        assert_eq!(cases.len(), 2);
        for case in cases {
            let secret = WebhookSecret::parse(case["secret"].as_str().unwrap()).unwrap();
            let got = sign(
                &secret,
                case["msg_id"].as_str().unwrap(),
                case["timestamp"].as_i64().unwrap(),
                case["payload"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(got, case["signature"].as_str().unwrap());
        }
    }

    #[test]
    fn prefix_is_optional() {
        let with: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let without: WebhookSecret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(with.key, without.key);
    }

    #[test]
    fn unpadded_secret_decodes_like_the_padded_one() {
        let padded = WebhookSecret::parse("whsec_dGVzdA==").unwrap();
        let unpadded = WebhookSecret::parse("whsec_dGVzdA").unwrap();
        assert_eq!(padded.key, b"test");
        assert_eq!(unpadded.key, b"test");
    }

    #[test]
    fn empty_secret_is_rejected() {
        assert_eq!(
            WebhookSecret::parse("").unwrap_err(),
            WebhookSecretError::Empty
        );
        assert_eq!(
            WebhookSecret::parse("whsec_").unwrap_err(),
            WebhookSecretError::Empty
        );
        assert_eq!(
            WebhookSecret::parse("  ").unwrap_err(),
            WebhookSecretError::Empty
        );
    }

    #[test]
    fn invalid_base64_is_rejected() {
        for bad in ["whsec_not base64!", "whsec_@@@@", "whsec_a"] {
            assert_eq!(
                WebhookSecret::parse(bad).unwrap_err(),
                WebhookSecretError::InvalidBase64,
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn any_change_to_the_signed_content_changes_the_signature() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let base = sign(&secret, "msg_1", 1_700_000_000, b"{}");
        assert_ne!(base, sign(&secret, "msg_2", 1_700_000_000, b"{}"));
        assert_ne!(base, sign(&secret, "msg_1", 1_700_000_001, b"{}"));
        assert_ne!(base, sign(&secret, "msg_1", 1_700_000_000, b"{ }"));
    }
}
