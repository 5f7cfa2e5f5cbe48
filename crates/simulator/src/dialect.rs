//! The four provider dialects the simulator speaks (docs/PROVIDERS.md#provider-differences):
//! how a call id looks, what a webhook carries and how it is signed. Signing is written here
//! apart from the server's validators, so a mistake on either side shows as a refused webhook.
//!
//! - Twilio: `X-Twilio-Signature` (see `signing`).
//! - SignalWire: the Twilio algorithm keyed with the project's Signing Key, repeated names in
//!   submission order, in `X-SignalWire-Signature`.
//! - Telnyx TeXML: Ed25519 over `"{timestamp}|{body}"`, `telnyx-signature-ed25519` +
//!   `telnyx-timestamp`.
//! - Plivo: V3, base64 HMAC-SHA256 over the URL, the sorted `key+value` pairs, `.` and a fresh
//!   nonce, `X-Plivo-Signature-V3` + `X-Plivo-Signature-V3-Nonce`.

use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::signing::{twilio_shared_key_signature, twilio_signature};
use super::transcript::CallStatus;
use super::twiml::Method;

/// Which provider the simulator imitates.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Twilio,
    Signalwire,
    Telnyx,
    Plivo,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [
        Dialect::Twilio,
        Dialect::Signalwire,
        Dialect::Telnyx,
        Dialect::Plivo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Twilio => "twilio",
            Dialect::Signalwire => "signalwire",
            Dialect::Telnyx => "telnyx",
            Dialect::Plivo => "plivo",
        }
    }

    /// A new call id in the provider's format.
    pub fn new_call_id(self) -> String {
        use rand::RngExt;
        let bytes: [u8; 16] = rand::rng().random();
        let hex = hex::encode(bytes);
        match self {
            Dialect::Twilio => format!("CA{hex}"),
            Dialect::Telnyx => format!(
                "v3:{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            ),
            Dialect::Signalwire | Dialect::Plivo => format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ),
        }
    }

    /// `CallStatus` as this provider words it.
    pub fn status_word(self, status: CallStatus) -> &'static str {
        match (self, status) {
            (Dialect::Plivo, CallStatus::Canceled) => "cancel",
            _ => status.as_str(),
        }
    }
}

/// Plivo's `HangupCause` for a final status.
pub fn plivo_hangup_cause(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Busy => "USER_BUSY",
        CallStatus::NoAnswer => "NO_ANSWER",
        CallStatus::Canceled => "ORIGINATOR_CANCEL",
        CallStatus::Failed => "NORMAL_TEMPORARY_FAILURE",
        _ => "NORMAL_CLEARING",
    }
}

/// Signs webhooks as one provider account does.
pub enum Signer {
    Twilio {
        auth_token: String,
    },
    /// A Twilio account whose webhooks are signed with a SharedKey: the signature in
    /// `X-Twilio-Signature` (HMAC-SHA256 when `algorithm` is `HMAC_SHA256`, else HMAC-SHA1),
    /// announced by `X-Twilio-Webhooks-Signature-Settings: key=<key_id>,algorithm=<algorithm>`.
    TwilioSharedKey {
        key_id: String,
        secret: String,
        algorithm: String,
    },
    SignalWire {
        signing_key: String,
    },
    Telnyx {
        key: SigningKey,
    },
    Plivo {
        auth_token: String,
    },
}

impl Signer {
    /// The signature headers for a request to `url` (as requested) with the form `params`
    /// (empty for a GET) and the raw `body` bytes actually sent.
    pub fn headers(
        &self,
        method: Method,
        url: &str,
        params: &[(String, String)],
        body: &str,
    ) -> Vec<(&'static str, String)> {
        match self {
            Signer::Twilio { auth_token } => {
                vec![(
                    "X-Twilio-Signature",
                    twilio_signature(auth_token, url, params),
                )]
            }
            Signer::TwilioSharedKey {
                key_id,
                secret,
                algorithm,
            } => {
                let sha256 = algorithm.eq_ignore_ascii_case("HMAC_SHA256");
                vec![
                    (
                        "X-Twilio-Signature",
                        twilio_shared_key_signature(secret, sha256, url, params),
                    ),
                    (
                        "X-Twilio-Webhooks-Signature-Settings",
                        format!("key={key_id},algorithm={algorithm}"),
                    ),
                ]
            }
            Signer::SignalWire { signing_key } => {
                vec![(
                    "X-SignalWire-Signature",
                    signalwire(signing_key, url, params),
                )]
            }
            Signer::Telnyx { key } => {
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    .to_string();
                let message = format!("{timestamp}|{body}");
                let signature = key.sign(message.as_bytes());
                vec![
                    (
                        "telnyx-signature-ed25519",
                        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
                    ),
                    ("telnyx-timestamp", timestamp),
                ]
            }
            Signer::Plivo { auth_token } => {
                use rand::RngExt;
                let nonce: u64 = rand::rng().random();
                let nonce = format!("{nonce:020}");
                let signature = plivo_v3(auth_token, method, url, params, &nonce);
                vec![
                    ("X-Plivo-Signature-V3", signature),
                    ("X-Plivo-Signature-V3-Nonce", nonce),
                ]
            }
        }
    }
}

/// SignalWire's compatibility signature: like Twilio's, but a repeated name keeps its values
/// in the order they were sent (a stable sort by name, no de-duplication).
pub fn signalwire(signing_key: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac =
        Hmac::<Sha1>::new_from_slice(signing_key.as_bytes()).expect("HMAC-SHA1 takes any key");
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Plivo's V3 signature of a request to `url` with the body `params` (POST) or the query
/// merged with `params` (GET).
pub fn plivo_v3(
    auth_token: &str,
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> String {
    let parsed = url::Url::parse(url).expect("webhook URLs are absolute");
    let mut base = format!(
        "{}://{}{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default(),
        parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    base.push_str(parsed.path());
    let sorted = |pairs: Vec<(String, String)>| {
        let mut pairs = pairs;
        pairs.sort();
        pairs
    };
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let signed = match method {
        Method::Get => {
            let all = sorted(query.into_iter().chain(params.iter().cloned()).collect());
            let joined: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if joined.is_empty() {
                base
            } else {
                format!("{base}?{}", joined.join("&"))
            }
        }
        Method::Post => {
            let query = sorted(query);
            let body = sorted(params.to_vec());
            let joined: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut s = base;
            if !joined.is_empty() || !body.is_empty() {
                s.push('?');
                s.push_str(&joined.join("&"));
            }
            if !joined.is_empty() && !body.is_empty() {
                s.push('.');
            }
            for (k, v) in body {
                s.push_str(&k);
                s.push_str(&v);
            }
            s
        }
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(auth_token.as_bytes()).expect("HMAC-SHA256 takes any key");
    mac.update(format!("{signed}.{nonce}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/fixtures/provider_vectors.json");

    #[test]
    fn plivo_signatures_match_the_official_v3_vectors() {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        let v = &all["plivo_signature_v3"];
        let params: Vec<(String, String)> = v["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        for case in v["cases"].as_array().unwrap() {
            let method = Method::parse_or_post(case["method"].as_str());
            let got = plivo_v3(
                v["auth_token"].as_str().unwrap(),
                method,
                case["url"].as_str().unwrap(),
                &params,
                v["nonce"].as_str().unwrap(),
            );
            assert_eq!(got, case["signature"].as_str().unwrap(), "{case}");
        }
    }

    #[test]
    fn signalwire_signs_twilios_base_vector_and_keeps_submission_order() {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        let params: Vec<(String, String)> = all["twilio_signature"]["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signalwire("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let ab = [
            ("To".to_owned(), "a".to_owned()),
            ("To".to_owned(), "b".to_owned()),
        ];
        let ba = [ab[1].clone(), ab[0].clone()];
        assert_ne!(signalwire("k", url, &ab), signalwire("k", url, &ba));
    }

    #[test]
    fn call_ids_look_like_the_providers() {
        assert!(Dialect::Twilio.new_call_id().starts_with("CA"));
        assert!(Dialect::Telnyx.new_call_id().starts_with("v3:"));
        assert_eq!(Dialect::Plivo.new_call_id().len(), 36);
    }
}
