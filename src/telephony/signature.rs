//! Twilio request validation (`X-Twilio-Signature`): HMAC-SHA1 over the URL and the sorted
//! form parameters, Base64-encoded. See FACTS §1 and the official vectors in
//! `tests/fixtures/provider_vectors.json`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The signature Twilio sends for a request to `url` with form `params`: keys sorted by byte
/// order; for a repeated key its distinct values sorted; `key + value` appended to the URL.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
