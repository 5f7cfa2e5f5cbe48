//! Twilio signature checks against the official helper-library vectors (docs/PROVIDERS.md#twilio-signature-vectors).

use super::*;
use serde_json::Value;

const VECTORS: &str = include_str!("../../../../tests/fixtures/provider_vectors.json");
const BASE_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn twilio() -> Value {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors are JSON");
    all["twilio_signature"].clone()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

fn default_params(v: &Value) -> Vec<(String, String)> {
    v["params"]
        .as_object()
        .expect("params is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn go_params() -> Vec<(String, String)> {
    pairs(&[
        ("Digits", "1234"),
        ("CallSid", "CA1234567890ABCDE"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
        ("From", "+14158675309"),
        ("ReasonConferenceEnded", "test"),
        ("Reason", "Participant"),
    ])
}

#[test]
fn every_form_vector_gives_its_expected_verdict() {
    let v = twilio();
    let params = default_params(&v);
    let cases = v["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let token = case["auth_token"]
            .as_str()
            .unwrap_or_else(|| str_of(&v, "auth_token"));
        let got = validate_form(
            token,
            str_of(case, "signature"),
            str_of(case, "url"),
            &params,
        );
        assert_eq!(
            got,
            case["valid"].as_bool().unwrap(),
            "case {}",
            case["name"]
        );
    }
}

#[test]
fn repeated_keys_use_sorted_distinct_values() {
    let v = twilio();
    let case = &v["repeated_keys_case"];
    let params: Vec<(String, String)> = case["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| (str_of_index(p, 0), str_of_index(p, 1)))
        .collect();
    let sig = str_of(case, "signature");
    assert!(validate_form(
        str_of(&v, "auth_token"),
        sig,
        str_of(case, "url"),
        &params
    ));
    let mut reordered = params.clone();
    reordered.reverse();
    assert!(validate_form("12345", sig, str_of(case, "url"), &reordered));
}

fn str_of_index(v: &Value, i: usize) -> String {
    v[i].as_str().expect("string").to_owned()
}

#[test]
fn credentials_in_the_url_are_part_of_the_signed_string() {
    let v = twilio();
    let params = default_params(&v);
    for case in v["url_credentials_cases"].as_array().expect("cases") {
        let got = validate_form(
            "12345",
            str_of(case, "signature"),
            str_of(case, "url"),
            &params,
        );
        assert_eq!(got, case["valid"].as_bool().unwrap(), "url {}", case["url"]);
    }
}

#[test]
fn credentials_survive_the_default_port_candidate() {
    // node vector "creds + port": Twilio signed https://user:pass@mycompany.com:443/...
    let params = default_params(&twilio());
    let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert!(validate_form(
        "12345",
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
        url,
        &params
    ));
}

#[test]
fn prefix_key_sorts_before_longer_key() {
    assert!(validate_form(
        "12345",
        "vOEb5UThFn24KEfnOFLQY2AE5FY=",
        BASE_URL,
        &go_params()
    ));
}

#[test]
fn signature_over_the_wrong_key_order_is_rejected() {
    assert!(!validate_form(
        "12345",
        "95+Bu0JVPi0r/SsESZCVf0dWAjw=",
        BASE_URL,
        &go_params()
    ));
}

#[test]
fn any_port_is_stripped_for_the_portless_candidate() {
    let sig = "n2xBNyzSW7rfYStDtOFiFMv7qNo=";
    let params = go_params();
    assert!(validate_form(
        "12345",
        sig,
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &params
    ));
    assert!(validate_form(
        "12345",
        sig,
        "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &params
    ));
}

#[test]
fn received_default_port_matches_a_portless_signature() {
    let params = default_params(&twilio());
    let url = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert!(validate_form(
        "12345",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        url,
        &params
    ));
}

#[test]
fn form_body_vector_from_twilio_go() {
    let params = pairs(&[("property", "value"), ("boolean", "true")]);
    assert!(validate_form(
        "12345",
        "NBdBDr/T/lgjI+tlgpXjKZQZs/k=",
        BASE_URL,
        &params
    ));
}

#[test]
fn tampered_param_is_rejected() {
    let mut params = default_params(&twilio());
    for (k, v) in &mut params {
        if k == "Digits" {
            *v = "9999".to_owned();
        }
    }
    assert!(!validate_form(
        "12345",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        BASE_URL,
        &params
    ));
}

#[test]
fn added_param_is_rejected() {
    let mut params = default_params(&twilio());
    params.push(("Extra".to_owned(), "1".to_owned()));
    assert!(!validate_form(
        "12345",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        BASE_URL,
        &params
    ));
}

#[test]
fn tampered_url_is_rejected() {
    let params = default_params(&twilio());
    let url = "https://mycompany.com/myapp.php?foo=1&bar=3";
    assert!(!validate_form(
        "12345",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        url,
        &params
    ));
}

#[test]
fn missing_or_empty_signature_is_rejected() {
    let params = default_params(&twilio());
    assert!(!validate_form("12345", "", BASE_URL, &params));
    assert!(!validate_form("12345", "   ", BASE_URL, &params));
}

#[test]
fn signature_for_an_empty_token_does_not_validate_under_a_real_token() {
    let params = default_params(&twilio());
    let forged = compute_signature("", BASE_URL, &params);
    assert!(!validate_form("12345", &forged, BASE_URL, &params));
}

#[test]
fn candidates_cover_received_stripped_and_default_port() {
    assert_eq!(
        url_candidates("https://a.example/x?y=1"),
        ["https://a.example/x?y=1", "https://a.example:443/x?y=1"]
    );
    assert_eq!(
        url_candidates("http://u:p@a.example:8080"),
        ["http://u:p@a.example:8080", "http://u:p@a.example"]
    );
    assert_eq!(
        url_candidates("https://[::1]:8443/cb"),
        ["https://[::1]:8443/cb", "https://[::1]/cb"]
    );
    assert_eq!(url_candidates("not a url"), ["not a url"]);
}
