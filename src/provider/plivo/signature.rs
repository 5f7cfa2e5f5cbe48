//! Plivo's V3 webhook signature (docs/PROVIDERS.md#plivo): `X-Plivo-Signature-V3` holds one or
//! more comma-separated `base64(HMAC-SHA256(auth_token, base_url + "." + nonce))`, the nonce
//! in `X-Plivo-Signature-V3-Nonce`. `base_url` (plivo-python `signature_v3.py`):
//! - GET: `scheme://host/path` + `?` + every parameter (query and given) as `k=v`, sorted by
//!   name (a repeated name's values sorted), joined by `&`;
//! - POST: `scheme://host/path`, then `?` + the sorted query as for GET when there are body
//!   parameters or a query, then `.` if both, then the body parameters as `k` + `v`, sorted.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

pub const SIGNATURE_HEADER: &str = "x-plivo-signature-v3";
pub const NONCE_HEADER: &str = "x-plivo-signature-v3-nonce";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Parameters by name, each name's values sorted (Plivo sorts list values).
fn grouped<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    for values in map.values_mut() {
        values.sort_unstable();
    }
    map
}

fn query_string(map: &BTreeMap<&str, Vec<&str>>) -> String {
    map.iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join("&")
}

/// The string Plivo signs before `.nonce` is appended.
pub fn base_url<K: AsRef<str>, V: AsRef<str>>(
    method: Method,
    url: &str,
    params: &[(K, V)],
) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, q)) => (base, q),
        None => (url, ""),
    };
    let without_query = without_query.split('#').next().unwrap_or_default();
    let query_pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let query_refs = query_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let given = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    match method {
        Method::Get => {
            let all = grouped(query_refs.chain(given));
            let q = query_string(&all);
            if q.is_empty() {
                without_query.to_owned()
            } else {
                format!("{without_query}?{q}")
            }
        }
        Method::Post => {
            let body = grouped(given);
            let q = query_string(&grouped(query_refs));
            let mut out = without_query.to_owned();
            if !q.is_empty() || !body.is_empty() {
                out.push('?');
                out.push_str(&q);
            }
            if !q.is_empty() && !body.is_empty() {
                out.push('.');
            }
            for (k, vs) in &body {
                for v in vs {
                    out.push_str(k);
                    out.push_str(v);
                }
            }
            out
        }
    }
}

/// `base64(HMAC-SHA256(auth_token, base_url + "." + nonce))`.
pub fn sign(auth_token: &str, base_url: &str, nonce: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(base_url.as_bytes());
    mac.update(b".");
    mac.update(nonce.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether any of the comma-separated `header` signatures is Plivo's for this request; each
/// is compared in constant time.
pub fn validate<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    header: &str,
    nonce: &str,
    method: Method,
    url: &str,
    params: &[(K, V)],
) -> bool {
    if nonce.is_empty() {
        return false;
    }
    let expected = sign(auth_token, &base_url(method, url, params), nonce);
    let mut ok = Choice::from(0);
    for candidate in header.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        ok |= candidate.as_bytes().ct_eq(expected.as_bytes());
    }
    ok.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/fixtures/provider_vectors.json");

    #[test]
    fn the_official_v3_vectors_pass() {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        let v = &all["plivo_signature_v3"];
        let token = v["auth_token"].as_str().unwrap();
        let nonce = v["nonce"].as_str().unwrap();
        let params: Vec<(String, String)> = v["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        for case in v["cases"].as_array().unwrap() {
            let method = match case["method"].as_str().unwrap() {
                "GET" => Method::Get,
                _ => Method::Post,
            };
            let url = case["url"].as_str().unwrap();
            let signature = case["signature"].as_str().unwrap();
            assert_eq!(
                sign(token, &base_url(method, url, &params), nonce),
                signature,
                "{case}"
            );
            let header = format!("bogus=, {signature}");
            assert!(
                validate(token, &header, nonce, method, url, &params),
                "{case}"
            );
            assert!(!validate("wrong", signature, nonce, method, url, &params));
            assert!(!validate(
                token,
                signature,
                "31627761595286130199",
                method,
                url,
                &params
            ));
        }
    }

    #[test]
    fn post_with_a_query_separates_query_and_body_with_a_dot() {
        let base = base_url(
            Method::Post,
            "https://h/p/?c=d&a=b",
            &[("Z", "1"), ("A", "2")],
        );
        assert_eq!(base, "https://h/p/?a=b&c=d.A2Z1");
        assert_eq!(
            base_url::<&str, &str>(Method::Post, "https://h/p", &[]),
            "https://h/p"
        );
    }
}
