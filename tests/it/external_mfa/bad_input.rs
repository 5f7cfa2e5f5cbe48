//! Bad input to the authorization endpoint and the calling page's routes: oversized,
//! duplicated, malformed or missing fields and hints get a 400 page or an OAuth error back to
//! Entra — never a 5xx, never a call.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::entra::{self, field};
use super::{OID, Setup, setup};

/// `body` POSTed to the authorization endpoint is refused: a 400 page, or an OAuth error posted
/// back to Entra's redirect URI (no id_token).
async fn refused(s: &Setup, what: &str, body: String) {
    let page = s.post("/authorize", body, "en").await;
    match page.post_back() {
        Some((action, fields)) => {
            assert_eq!(page.status, 200, "{what}");
            assert_eq!(action, entra::REDIRECT_URI, "{what}");
            assert!(
                field(&fields, "error").is_some() && field(&fields, "id_token").is_none(),
                "{what}: {fields:?}"
            );
        }
        None => assert_eq!(page.status, 400, "{what}: {}", page.body),
    }
}

#[tokio::test]
async fn bad_input_is_a_400_page_or_an_oauth_error_never_a_5xx_or_a_call() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    let hint = s.entra.sign(&s.entra.hint(OID));
    let good = entra::request_fields(&hint, "n-bad");
    let mut bodies: Vec<(String, String)> = Vec::new();
    bodies.push((
        "oversized".into(),
        format!("{}&pad={}", entra::encode(&good), "x".repeat(70_000)),
    ));
    bodies.push(("oversized hint".into(), {
        let mut f = good.clone();
        entra::set(&mut f, "id_token_hint", Some(&"a".repeat(20_000)));
        entra::encode(&f)
    }));
    bodies.push((
        "duplicated client_id".into(),
        format!("{}&client_id=x", entra::encode(&good)),
    ));
    bodies.push((
        "duplicated nonce".into(),
        format!("{}&nonce=again", entra::encode(&good)),
    ));
    bodies.push((
        "duplicated hint".into(),
        format!("{}&id_token_hint={hint}", entra::encode(&good)),
    ));
    bodies.push(("malformed encoding".into(), "%%%&&==&client_id=%ZZ".into()));
    bodies.push((
        "binary".into(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41]).into_owned(),
    ));
    bodies.push(("empty".into(), String::new()));
    for name in [
        "scope",
        "response_type",
        "response_mode",
        "nonce",
        "state",
        "id_token_hint",
        "claims",
    ] {
        let mut f = good.clone();
        entra::set(&mut f, name, None);
        bodies.push((format!("missing {name}"), entra::encode(&f)));
    }
    for (name, value) in [
        ("response_type", "code"),
        ("response_mode", "query"),
        ("scope", "profile"),
        ("claims", "{not json"),
        ("claims", "{}"),
    ] {
        let mut f = good.clone();
        entra::set(&mut f, name, Some(value));
        bodies.push((format!("{name}={value}"), entra::encode(&f)));
    }
    for (what, body) in bodies {
        refused(&s, &what, body).await;
    }
    // Not a form at all.
    let json = s
        .server
        .http
        .post(format!("{}/authorize", s.issuer))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 400);
    // Unknown or forged sign-in ids.
    for id in ["0123456789abcdef0123456789abcdef", "../../x", "zz"] {
        let r = s
            .server
            .http
            .post(format!("{}/signin/{id}/finish", s.issuer))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{id}: {}", r.status());
    }
    assert_eq!(s.calls(), before, "bad input never places a call");
}

/// A JWT with this header and payload (JSON) and signature bytes, unsigned.
fn jwt(header: &serde_json::Value, payload: &str, signature: &[u8]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.as_bytes()),
        b64(signature)
    )
}

#[tokio::test]
async fn malformed_or_incomplete_hints_and_fields_are_refused_without_a_call() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    let good_claims = s.entra.hint(OID);
    let mut hints: Vec<(&str, String)> = Vec::new();
    hints.push((
        "alg none",
        jwt(
            &json!({"alg": "none", "kid": "entra-key-1"}),
            &good_claims.to_string(),
            b"",
        ),
    ));
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some("entra-key-1".into());
    hints.push((
        "HS256 with Entra's public key as secret",
        jsonwebtoken::encode(
            &hs256,
            &good_claims,
            &EncodingKey::from_secret(s.entra.key.cert_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    let mut no_kid = Header::new(Algorithm::RS256);
    no_kid.kid = None;
    hints.push((
        "no kid",
        jsonwebtoken::encode(
            &no_kid,
            &good_claims,
            &EncodingKey::from_rsa_pem(s.entra.key.key_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    hints.push((
        "payload not JSON",
        jwt(
            &json!({"alg": "RS256", "kid": "entra-key-1"}),
            "not json",
            b"sig",
        ),
    ));
    hints.push(("three empty parts", "..".into()));
    hints.push(("garbage within the size limit", "a.b.c".repeat(3000)));
    for (what, claim) in ["oid", "sub", "iat", "iss", "aud", "tid"]
        .into_iter()
        .map(|c| (c, c))
    {
        let mut claims = s.entra.hint(OID);
        claims.as_object_mut().unwrap().remove(claim);
        hints.push((what, s.entra.sign(&claims)));
    }
    let mut future = s.entra.hint(OID);
    future["iat"] = json!(entra::now() + 3600);
    hints.push(("iat an hour ahead", s.entra.sign(&future)));
    let mut not_a_user = s.entra.hint(OID);
    not_a_user["oid"] = json!("../../../etc");
    hints.push(("oid not a user id", s.entra.sign(&not_a_user)));
    let mut numeric = s.entra.hint(OID);
    numeric["oid"] = json!(42);
    hints.push(("oid a number", s.entra.sign(&numeric)));
    for (what, hint) in hints {
        let body = entra::encode(&entra::request_fields(&hint, "n-hint"));
        refused(&s, what, body).await;
    }

    let hint = s.entra.sign(&s.entra.hint(OID));
    let good = entra::request_fields(&hint, "n-fields");
    let mut bodies: Vec<(String, String)> = Vec::new();
    for name in ["state", "claims", "redirect_uri", "response_type", "scope"] {
        let value = field(&good, name).unwrap().to_owned();
        bodies.push((
            format!("duplicated {name}"),
            format!("{}&{name}={}", entra::encode(&good), urlencode(&value)),
        ));
    }
    for name in ["client_id", "nonce", "state", "id_token_hint", "claims"] {
        let mut f = good.clone();
        entra::set(&mut f, name, Some(""));
        bodies.push((format!("empty {name}"), entra::encode(&f)));
    }
    for (name, len) in [
        ("state", 9 * 1024),
        ("nonce", 3 * 1024),
        ("claims", 9 * 1024),
    ] {
        let mut f = good.clone();
        entra::set(&mut f, name, Some(&"x".repeat(len)));
        bodies.push((format!("oversized {name}"), entra::encode(&f)));
    }
    for claims in [
        "[]",
        "null",
        r#"{"id_token":{"acr":{"values":[1,2]}}}"#,
        r#"{"id_token":"x"}"#,
    ] {
        let mut f = good.clone();
        entra::set(&mut f, "claims", Some(claims));
        bodies.push((format!("claims={claims}"), entra::encode(&f)));
    }
    for (what, body) in bodies {
        refused(&s, &what, body).await;
    }
    assert_eq!(s.calls(), before, "nothing invalid places a call");
}

#[tokio::test]
async fn the_calling_page_routes_refuse_unknown_foreign_and_malformed_sign_ins() {
    let s = setup().await;
    s.register(OID).await;
    s.simulator()
        .script(super::NUMBER, callverify_simulator::Behaviour::silent());
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s.authorize(&entra::request_fields(&hint, "n-routes")).await;
    let status_url = page
        .attribute("id=\"signin\"", "data-status-url")
        .expect("a calling page");
    let id = status_url.split('/').rev().nth(1).unwrap().to_owned();
    s.until_placed(&page).await;
    let calls = s.calls();
    // Another tenant (no External MFA issuer) cannot reach this sign-in.
    for action in ["finish", "cancel", "retry"] {
        let r = s
            .server
            .http
            .post(format!(
                "{}/external-mfa/fabrikam/signin/{id}/{action}",
                s.server.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{action}");
    }
    let r = s
        .server
        .http
        .get(format!(
            "{}/external-mfa/fabrikam/signin/{id}/status",
            s.server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Unknown and malformed ids: a 4xx, never a 5xx.
    for id in [
        "0123456789abcdef0123456789abcdef",
        "ZZ",
        &"a".repeat(300),
        "%00",
    ] {
        for action in ["finish", "cancel", "retry"] {
            let r = s
                .server
                .http
                .post(format!("{}/signin/{id}/{action}", s.issuer))
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_client_error(),
                "{action} {id}: {}",
                r.status()
            );
        }
        let r = s
            .server
            .http
            .get(format!("{}/signin/{id}/status?known=calling", s.issuer))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "status {id}: {}", r.status());
    }
    // The real sign-in is untouched: still calling, Cancel still ends it.
    let (_, fields) = s.press(&page, "cancel").await.post_back().unwrap();
    assert_eq!(field(&fields, "error"), Some("access_denied"));
    assert_eq!(s.calls(), calls, "no route placed another call");
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
