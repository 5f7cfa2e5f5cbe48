//! Twilio SharedKey webhook signatures: the keys an account accepts, and which one (and which
//! MAC) a request's `X-Twilio-Webhooks-Signature-Settings` header names. The rules are
//! twilio-python 9.13's `twilio/request_validator.py` (docs/PROVIDERS.md#twilio-sharedkey).

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::signature::{Algorithm, validate_form_with};
use crate::config::Secret;

/// The header Twilio adds to a webhook signed with a SharedKey:
/// `key=<sharedKeyId>,algorithm=<algorithm>`. The signature stays in `X-Twilio-Signature`.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// One entry of `webhook_shared_keys` (several during a rotation).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKey {
    /// The SharedKey's id, as the settings header names it.
    pub id: String,
    /// The SharedKey's secret: the HMAC key.
    pub secret: Secret,
}

/// What a settings header announces.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings<'a> {
    pub key: Option<&'a str>,
    /// `HMAC_SHA1` when the header names no algorithm (twilio-python's
    /// `get_signature_algorithm`); `None` for a name we do not know.
    pub algorithm: Option<Algorithm>,
}

/// Parses `key=<id>,algorithm=<name>` (parts split on `,`, names and values trimmed).
pub fn parse_settings(header: &str) -> Settings<'_> {
    let mut key = None;
    let mut algorithm = Some(Algorithm::HmacSha1);
    for part in header.split(',') {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match name.trim() {
            "key" if !value.is_empty() => key = Some(value),
            "algorithm" if !value.is_empty() => algorithm = Algorithm::from_name(value),
            _ => {}
        }
    }
    Settings { key, algorithm }
}

/// Checks `signature` against the key the `settings` header names. An unknown key id, a
/// header naming no key, or an algorithm we do not know all fail. Key ids are compared in
/// constant time, and every configured key is looked at, so timing does not reveal which ids
/// exist.
pub fn validate<K: AsRef<str>, V: AsRef<str>>(
    keys: &[SharedKey],
    settings: &str,
    signature: &str,
    url: &str,
    params: &[(K, V)],
) -> bool {
    let settings = parse_settings(settings);
    let (Some(id), Some(algorithm)) = (settings.key, settings.algorithm) else {
        return false;
    };
    let mut chosen = None;
    for key in keys {
        if bool::from(key.id.as_bytes().ct_eq(id.as_bytes())) {
            chosen = Some(key);
        }
    }
    chosen.is_some_and(|key| {
        validate_form_with(algorithm, key.secret.expose(), signature, url, params)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_a_key_and_an_algorithm_defaulting_to_sha1() {
        let s = parse_settings("key=webhooks_sharedkey_1, algorithm=HMAC_SHA256");
        assert_eq!(s.key, Some("webhooks_sharedkey_1"));
        assert_eq!(s.algorithm, Some(Algorithm::HmacSha256));
        assert_eq!(parse_settings("key=k").algorithm, Some(Algorithm::HmacSha1));
        assert_eq!(
            parse_settings("key=k,algorithm=hmac_sha256").algorithm,
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(parse_settings("key=k,algorithm=HMAC_MD5").algorithm, None);
        assert_eq!(parse_settings("algorithm=HMAC_SHA256").key, None);
    }
}
