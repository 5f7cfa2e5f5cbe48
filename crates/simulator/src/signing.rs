//! Signs outgoing webhooks the way Twilio does (`X-Twilio-Signature`).
//!
//! Written apart from the server's validator on purpose: if both sides shared one function, a
//! mistake in it would sign and accept the same wrong bytes and every simulated call would still
//! pass. The algorithm (docs/PROVIDERS.md#twilio-signature): the full URL as requested, then for a POST each form
//! parameter as `name + value`, names in byte order and, for a repeated name, its distinct values
//! in byte order; HMAC-SHA1 keyed with the auth token; standard Base64 with padding.

use std::collections::BTreeSet;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The `X-Twilio-Signature` value for a request to `url` carrying the form `post_params`
/// (empty for a GET, whose parameters are already in `url`).
pub fn twilio_signature(auth_token: &str, url: &str, post_params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC-SHA1 accepts a key of any length");
    mac.update(signed_string(url, post_params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `X-Twilio-Signature` value of a webhook signed with a SharedKey's `secret`: the same
/// string as [`twilio_signature`], HMAC-SHA256 when `sha256` (`algorithm=HMAC_SHA256`), else
/// HMAC-SHA1 (twilio-python 9.13 `twilio/request_validator.py`, docs/PROVIDERS.md#twilio-sharedkey).
pub fn twilio_shared_key_signature(
    secret: &str,
    sha256: bool,
    url: &str,
    post_params: &[(String, String)],
) -> String {
    let signed = signed_string(url, post_params);
    let digest = if sha256 {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
            .expect("HMAC-SHA1 accepts a key of any length");
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The bytes Twilio signs. A set of `(name, value)` pairs orders them by name then value (byte
/// order, so `Reason` precedes `ReasonConferenceEnded`) and drops exact repeats, as the
/// official python and node helpers do.
fn signed_string(url: &str, post_params: &[(String, String)]) -> String {
    let pairs: BTreeSet<(&str, &str)> = post_params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut signed = String::from(url);
    for (name, value) in pairs {
        signed.push_str(name);
        signed.push_str(value);
    }
    signed
}

#[cfg(test)]
mod tests {
    //! The official vectors of Twilio's helper libraries, from
    //! `tests/fixtures/provider_vectors.json` (sources in docs/PROVIDERS.md#twilio-signature-vectors). Those cases are written
    //! for a validator (the URL as received); a signer needs the URL Twilio actually signed,
    //! which docs/PROVIDERS.md#twilio-signature-vectors lists per case.

    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/fixtures/provider_vectors.json");

    fn twilio() -> Value {
        let all: Value = serde_json::from_str(VECTORS).expect("the vectors are JSON");
        all["twilio_signature"].clone()
    }

    fn text<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string"))
    }

    fn default_params(twilio: &Value) -> Vec<(String, String)> {
        twilio["params"]
            .as_object()
            .expect("params is an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
            .collect()
    }

    fn case<'a>(twilio: &'a Value, list: &str, name: &str) -> &'a Value {
        twilio[list]
            .as_array()
            .expect("a list of cases")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name:?} in {list}"))
    }

    #[test]
    fn the_base_string_is_the_url_then_sorted_names_and_values() {
        // The debugging aid of docs/PROVIDERS.md#twilio-signature-vectors, "Signed string for the base case".
        let params = default_params(&twilio());
        assert_eq!(
            signed_string("https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
        );
    }

    #[test]
    fn form_requests_match_the_official_signatures() {
        let v = twilio();
        let token = text(&v, "auth_token");
        let params = default_params(&v);
        // (case name, the URL Twilio signed for it per docs/PROVIDERS.md#twilio-signature-vectors)
        let signed_urls = [
            ("base", "https://mycompany.com/myapp.php?foo=1&bar=2"),
            (
                "https with :443 signed",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            ),
            (
                "http with :80 signed",
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
            ),
            (
                "http non-standard port kept",
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            ),
        ];
        for (name, url) in signed_urls {
            let expected = text(case(&v, "cases", name), "signature");
            assert_eq!(twilio_signature(token, url, &params), expected, "{name}");
        }
    }

    #[test]
    fn another_token_gives_another_signature() {
        let v = twilio();
        let wrong = case(&v, "cases", "wrong token");
        assert_eq!(wrong["valid"], false);
        let got = twilio_signature(
            text(wrong, "auth_token"),
            text(wrong, "url"),
            &default_params(&v),
        );
        assert_ne!(got, text(wrong, "signature"));
    }

    #[test]
    fn url_only_signatures_match_the_official_json_body_vectors() {
        // A JSON body is signed as its URL alone, exactly like our GET webhooks.
        let v = twilio();
        let token = text(&v, "auth_token");
        for c in v["json_body_cases"].as_array().expect("json cases") {
            if c["valid"] == true {
                let got = twilio_signature(token, text(c, "url"), &[]);
                assert_eq!(got, text(c, "signature"), "{}", c["name"]);
            }
        }
    }

    #[test]
    fn repeated_names_sign_their_distinct_values_in_order() {
        let v = twilio();
        let c = &v["repeated_keys_case"];
        let mut pairs: Vec<(String, String)> = c["pairs"]
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| {
                let part = |i: usize| p[i].as_str().expect("a string").to_owned();
                (part(0), part(1))
            })
            .collect();
        let token = text(&v, "auth_token");
        let expected = text(c, "signature");
        assert_eq!(twilio_signature(token, text(c, "url"), &pairs), expected);
        pairs.reverse();
        assert_eq!(twilio_signature(token, text(c, "url"), &pairs), expected);
    }

    #[test]
    fn credentials_in_the_url_are_signed() {
        let v = twilio();
        let params = default_params(&v);
        for c in v["url_credentials_cases"].as_array().expect("cases") {
            let got = twilio_signature(text(&v, "auth_token"), text(c, "url"), &params);
            assert_eq!(got, text(c, "signature"), "{}", c["url"]);
        }
    }

    #[test]
    fn a_name_sorts_before_a_longer_name_it_prefixes() {
        // twilio-go `client/request_validator_test.go` (docs/PROVIDERS.md#twilio-signature-vectors): `Reason` before
        // `ReasonConferenceEnded`; the reverse order gives the signature it must reject.
        let params: Vec<(String, String)> = [
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
            ("From", "+14158675309"),
            ("ReasonConferenceEnded", "test"),
            ("Reason", "Participant"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let got = twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        assert_eq!(got, "vOEb5UThFn24KEfnOFLQY2AE5FY=");
        assert_ne!(got, "95+Bu0JVPi0r/SsESZCVf0dWAjw=");
    }
}
