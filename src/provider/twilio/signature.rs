//! Twilio request validation (`X-Twilio-Signature`): HMAC-SHA1 (or, with a SharedKey,
//! HMAC-SHA256) over the URL and the sorted form parameters, Base64-encoded. See docs/PROVIDERS.md#twilio-signature and the official vectors in
//! `tests/fixtures/provider_vectors.json`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// The signature Twilio sends for a request to `url` with form `params`: keys sorted by byte
/// order; for a repeated key its distinct values sorted; `key + value` appended to the URL.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    signature_of(Algorithm::HmacSha1, auth_token, url, params)
}

/// The MAC a signature is made with: the auth token's HMAC-SHA1, or what a SharedKey's
/// `X-Twilio-Webhooks-Signature-Settings` names (docs/PROVIDERS.md#twilio-sharedkey).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
}

impl Algorithm {
    /// `HMAC_SHA1` or `HMAC_SHA256`, in any letter case (as twilio-python compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("HMAC_SHA1") {
            Some(Self::HmacSha1)
        } else if name.eq_ignore_ascii_case("HMAC_SHA256") {
            Some(Self::HmacSha256)
        } else {
            None
        }
    }
}

/// [`compute_signature`] for owned or borrowed pairs (the webhook's are borrowed).
fn signature_of<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut signed = String::from(url);
    for (k, v) in pairs {
        signed.push_str(k);
        signed.push_str(v);
    }
    let digest = match algorithm {
        Algorithm::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::HmacSha256 => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Whether `signature` (the `X-Twilio-Signature` header) is Twilio's signature for a
/// form-encoded request to `url` with the URL-decoded body `params`.
///
/// Twilio is inconsistent about the default port, so like the official helper libraries we
/// accept the URL as received, with its port removed, or with the default port added.
pub fn validate_form<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    signature: &str,
    url: &str,
    params: &[(K, V)],
) -> bool {
    validate_form_with(Algorithm::HmacSha1, auth_token, signature, url, params)
}

/// [`validate_form`] with the MAC `algorithm` keyed with `key` (a SharedKey's secret).
///
/// Tries the URL as received first (what a correctly configured `public_url` gives: one HMAC
/// on the hot path), then the port variants. Each comparison is constant-time. Returning early
/// on a first-candidate match only tells a caller that its valid signature was valid; a
/// failing request always pays for every candidate, so the time taken does not reveal which
/// variant came closest.
pub fn validate_form_with<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    signature: &str,
    url: &str,
    params: &[(K, V)],
) -> bool {
    if signature.is_empty() {
        return false;
    }
    let matches = |candidate: &str| -> Choice {
        signature_of(algorithm, key, candidate, params)
            .as_bytes()
            .ct_eq(signature.as_bytes())
    };
    if bool::from(matches(url)) {
        return true;
    }
    let mut ok = Choice::from(0);
    for candidate in url_candidates(url).iter().skip(1) {
        ok |= matches(candidate);
    }
    ok.into()
}

/// The URL forms Twilio may have signed: as received, port stripped, default port added.
/// Works on the raw string rather than a parsed `url::Url`, because re-serialising would
/// normalise percent-encoding and default ports and so change the signed bytes.
fn url_candidates(url: &str) -> Vec<String> {
    let mut candidates = vec![url.to_owned()];
    if let Some(parts) = split_port(url) {
        let variant = match parts.port {
            Some(_) => Some(format!("{}{}", parts.before_port, parts.after_port)),
            None => default_port(parts.scheme)
                .map(|port| format!("{}:{port}{}", parts.before_port, parts.after_port)),
        };
        if let Some(variant) = variant.filter(|v| v != url) {
            candidates.push(variant);
        }
    }
    candidates
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// A URL cut around its port: `before_port` ends after the host (credentials kept),
/// `after_port` starts at the path, query or fragment.
struct PortSplit<'a> {
    scheme: &'a str,
    before_port: &'a str,
    port: Option<&'a str>,
    after_port: &'a str,
}

fn split_port(url: &str) -> Option<PortSplit<'_>> {
    let scheme_end = url.find("://")?;
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    // Credentials may contain ':' (user:pass@), so the host starts after the last '@'.
    let host_start = authority_start + authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &url[host_start..authority_end];
    // An IPv6 literal ([::1]) has colons of its own; the port can only follow the ']'.
    let search_from = if host_port.starts_with('[') {
        host_start + host_port.find(']')? + 1
    } else {
        host_start
    };
    let colon = url[search_from..authority_end]
        .rfind(':')
        .map(|i| search_from + i);
    let (before_port, port) = match colon {
        Some(c) => {
            let port = &url[c + 1..authority_end];
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&url[..c], Some(port))
        }
        None => (&url[..authority_end], None),
    };
    Some(PortSplit {
        scheme: &url[..scheme_end],
        before_port,
        port,
        after_port: &url[authority_end..],
    })
}

#[cfg(test)]
mod tests;
