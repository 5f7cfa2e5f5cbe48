//! SignalWire webhook signatures (docs/PROVIDERS.md#signalwire), keyed with the project's
//! **Signing Key**, never the API token. Two schemes, as signalwire-typescript's
//! `WebhookValidator` accepts them:
//! - A: lowercase hex `HMAC-SHA1(key, url + raw body)`;
//! - B: Twilio's algorithm (base64 HMAC-SHA1 over the URL and the sorted form parameters), with
//!   SignalWire's rule for repeated names — a stable sort by name, values in submission order,
//!   no de-duplication. Only form bodies are checked: a JSON webhook is refused (415), its
//!   signature never computed.
//!
//! Port variants: a URL without a port is also tried with the default one, a URL with the
//! default port also without it; a non-standard port is used as it is.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

fn mac(key: &str) -> Hmac<Sha1> {
    Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key")
}

/// Scheme A: hex HMAC-SHA1 over the URL followed by the raw body.
pub fn scheme_a(key: &str, url: &str, body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(url.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Scheme B: base64 HMAC-SHA1 over the URL and `name + value` of each parameter, names in
/// byte order (stable: a repeated name keeps its values in submission order).
pub fn scheme_b<K: AsRef<str>, V: AsRef<str>>(key: &str, url: &str, params: &[(K, V)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut mac = mac(key);
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is SignalWire's for a form-encoded request to `url` with the raw `body`
/// and its decoded `params`. Every candidate is compared in constant time, and all of them
/// are computed whatever matched, so the timing does not tell which came closest.
pub fn validate_form<K: AsRef<str>, V: AsRef<str>>(
    key: &str,
    signature: &str,
    url: &str,
    body: &[u8],
    params: &[(K, V)],
) -> bool {
    if signature.is_empty() {
        return false;
    }
    let mut ok = Choice::from(0);
    for candidate in url_candidates(url) {
        ok |= scheme_a(key, &candidate, body)
            .as_bytes()
            .ct_eq(signature.as_bytes());
        ok |= scheme_b(key, &candidate, params)
            .as_bytes()
            .ct_eq(signature.as_bytes());
    }
    ok.into()
}

/// The URL as received, plus the default-port variant SignalWire's validators try.
fn url_candidates(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Ok(parsed) = url::Url::parse(url) else {
        return out;
    };
    let default = match parsed.scheme() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return out;
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    let port_at = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match port_at {
        None => out.push(format!(
            "{}:{default}{}",
            &url[..authority_end],
            &url[authority_end..]
        )),
        Some(at) if &host[at + 1..] == default => {
            let cut = scheme_end + host_start + at;
            out.push(format!("{}{}", &url[..cut], &url[authority_end..]));
        }
        Some(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/fixtures/provider_vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn s<'a>(v: &'a Value, k: &str) -> &'a str {
        v[k].as_str().unwrap()
    }

    #[test]
    fn scheme_a_matches_the_official_vector() {
        let v = &vectors()["signalwire_signature"]["scheme_a_json_hex"];
        let (key, url, body) = (s(v, "signing_key"), s(v, "url"), s(v, "body"));
        assert_eq!(scheme_a(key, url, body.as_bytes()), s(v, "signature"));
    }

    #[test]
    fn scheme_b_is_twilios_base_vector() {
        let all = vectors();
        let t = &all["twilio_signature"];
        let params: Vec<(String, String)> = t["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        assert_eq!(
            scheme_b("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate_form(
            "12345",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            url,
            body.as_bytes(),
            &params
        ));
        // Signed with :443 added: the default-port variant is tried.
        assert!(validate_form(
            "12345",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
            url,
            body.as_bytes(),
            &params
        ));
        assert!(!validate_form(
            "54321",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            url,
            body.as_bytes(),
            &params
        ));
    }

    #[test]
    fn repeated_names_keep_submission_order() {
        let ab = scheme_b("k", "https://x/", &[("To", "a"), ("To", "b")]);
        let ba = scheme_b("k", "https://x/", &[("To", "b"), ("To", "a")]);
        assert_ne!(ab, ba);
        assert_eq!(
            ab,
            scheme_b(
                "k",
                "https://x/",
                &[("ToX", ""), ("To", "a"), ("To", "b")][1..]
            )
        );
    }

    #[test]
    fn port_variants() {
        assert_eq!(
            url_candidates("https://h.example/p?q=1"),
            ["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_candidates("http://u:p@h.example:80/p"),
            ["http://u:p@h.example:80/p", "http://u:p@h.example/p"]
        );
        assert_eq!(url_candidates("http://h:1234/p"), ["http://h:1234/p"]);
    }
}
