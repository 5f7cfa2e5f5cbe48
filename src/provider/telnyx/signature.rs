//! Telnyx webhook signatures (docs/PROVIDERS.md#telnyx-texml): Ed25519 over
//! `"{telnyx-timestamp}|{raw body}"`, base64 in `telnyx-signature-ed25519`, verified with the
//! account's public key (base64, 32 bytes); a timestamp more than 300 s from now is refused
//! (replay protection, the tolerance of Telnyx's SDKs).

use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// Seconds a signed timestamp may differ from our clock, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// The account's public key from its base64 form (Mission Control → Keys & Credentials).
pub fn public_key(base64_key: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|e| format!("public_key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public_key must be 32 bytes (an Ed25519 public key)".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public_key: {e}"))
}

/// Why a signature did not verify (for the refusal's label; all are 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    Stale,
    Mismatch,
}

/// Verifies `signature` (base64) over `timestamp|body` at `now` (Unix seconds).
pub fn verify(
    key: &VerifyingKey,
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<(), Invalid> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Invalid::Malformed)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(Invalid::Stale);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| Invalid::Malformed)?;
    let signature = Signature::from_slice(&raw).map_err(|_| Invalid::Malformed)?;
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.trim().as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    key.verify(&message, &signature)
        .map_err(|_| Invalid::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// RFC 8032 §7.1 TEST 2: the Ed25519 implementation itself against the standard's vector
    /// (Telnyx publishes no signature vector; docs/PROVIDERS.md#telnyx-texml).
    #[test]
    fn ed25519_matches_rfc8032_test_2() {
        let secret: [u8; 32] =
            hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SigningKey::from_bytes(&secret);
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        assert_eq!(
            hex::encode(key.sign(&[0x72]).to_bytes()),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }

    fn signed(key: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut m = format!("{ts}|").into_bytes();
        m.extend_from_slice(body);
        base64::engine::general_purpose::STANDARD.encode(key.sign(&m).to_bytes())
    }

    #[test]
    fn verifies_timestamp_pipe_body_within_tolerance() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
        let public = public_key(&public).unwrap();
        let body = b"CallSid=v3%3Aabc&CallStatus=in-progress";
        let sig = signed(&key, "1700000000", body);
        assert_eq!(
            verify(&public, &sig, "1700000000", body, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            verify(&public, &sig, "1700000000", body, 1_700_000_301),
            Err(Invalid::Stale)
        );
        assert_eq!(
            verify(&public, &sig, "1700000001", body, 1_700_000_000),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            verify(&public, &sig, "1700000000", b"CallSid=x", 1_700_000_000),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            verify(&public, "not base64!", "1700000000", body, 1_700_000_000),
            Err(Invalid::Malformed)
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            verify(&other, &sig, "1700000000", body, 1_700_000_000),
            Err(Invalid::Mismatch)
        );
    }

    #[test]
    fn public_keys_must_be_32_bytes_of_base64() {
        assert!(public_key("AAAA").is_err());
        assert!(public_key("@@@").is_err());
    }
}
