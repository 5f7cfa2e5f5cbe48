//! Hostile and odd input at the public edge: bad path parameters, duplicate JSON keys, unusual
//! `Authorization` headers, deceptive display names, phone numbers inside provider error text.
//! Every refusal is a 4xx problem+json (checked by `support::read`), never a 5xx.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::stub_twilio::Mode;
use crate::support::{ADMIN_KEY, PORTAL_KEY, StubTwilio, TestServer, read};

async fn setup() -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    (stub, server)
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://callverify.dev/problems/")
}

/// A valid value for each path parameter, so that only the one under test is bad.
fn valid(param: &str) -> &'static str {
    match param {
        "tenant" => "contoso",
        "user" => "ann",
        "number" => "+14255550100",
        // A well-formed verification id and a well-formed method id (neither exists).
        "id" => "0123456789abcdef0123456789abcdef0123456789abcdef",
        other => panic!("no valid value for {{{other}}}"),
    }
}

#[tokio::test]
async fn bad_bytes_and_huge_segments_in_any_path_parameter_are_4xx_problems() {
    let (_stub, server) = setup().await;
    let long = "a".repeat(10 * 1024);
    let bad_values = ["%FF", "a%C3", "%C3", "%00", "a%00b", long.as_str()];
    let mut requests = 0;
    for route in callverify::api::routes() {
        let params: Vec<&str> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert!(!params.is_empty(), "{}", route.path);
        for bad_param in &params {
            for bad in bad_values {
                let path = params.iter().fold(route.path.to_owned(), |path, p| {
                    let value = if p == bad_param { bad } else { valid(p) };
                    path.replace(&format!("{{{p}}}"), value)
                });
                for key in [Some(ADMIN_KEY), Some(PORTAL_KEY), None] {
                    let mut request = server.http.request(route.method.clone(), server.url(&path));
                    if let Some(key) = key {
                        request = request.bearer_auth(key);
                    }
                    if matches!(route.method, Method::POST | Method::PUT) {
                        request = request.json(&json!({}));
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let shown = &path[..path.len().min(80)];
                    // `read` asserts problem+json with a problem type under our base.
                    let (_, body) = read(response).await;
                    // The number lookup answers any number it was given, `valid: false`
                    // when it cannot be read (documented).
                    if *bad_param == "number" && status == 200 {
                        assert_eq!(body["valid"], false, "{shown}: {body}");
                        requests += 1;
                        continue;
                    }
                    assert!(
                        (400..500).contains(&status),
                        "{} {shown}: {status}",
                        route.method
                    );
                    if bad.contains("%FF") || bad.contains("%C3") {
                        if key.is_some() {
                            assert_eq!(problem_type(&body), "invalid-request", "{shown}");
                        } else {
                            assert_eq!(problem_type(&body), "unauthenticated", "{shown}");
                        }
                    }
                    requests += 1;
                }
            }
        }
    }
    assert!(requests > 200, "{requests}");
}

#[tokio::test]
async fn invalid_utf8_in_the_user_is_a_422_not_a_500() {
    let (_stub, server) = setup().await;
    let (status, body) = server
        .get_json(PORTAL_KEY, "/v1/tenants/contoso/users/a%C3/methods")
        .await;
    assert_eq!((status, problem_type(&body)), (422, "invalid-request"));
    let (status, _) = server
        .delete(ADMIN_KEY, "/v1/tenants/contoso/users/%FF/block")
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn bad_bytes_in_query_parameters_are_422_problems() {
    let (_stub, server) = setup().await;
    for query in [
        "wait=%FF",
        "wait=%00",
        "wait=-1",
        "wait=99999999999999999999",
        "x=1",
    ] {
        let path = format!("/v1/tenants/contoso/verifications/{}?{query}", valid("id"));
        let (status, body) = server.get_json(PORTAL_KEY, &path).await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-request"),
            "{query}"
        );
    }
    for query in ["limit=%C3", "limit=0", "limit=1&limit=2"] {
        let path = format!("/v1/tenants/contoso/users/ann/audit?{query}");
        let (status, body) = server.get_json(PORTAL_KEY, &path).await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-request"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn duplicate_json_keys_are_a_422_on_every_route_with_a_body() {
    let (_stub, server) = setup().await;
    let cases = [
        (
            Method::POST,
            "/v1/tenants/contoso/users/dup/methods",
            r#"{"kind": "email", "address": "a@example.com", "address": "b@example.com"}"#,
        ),
        (
            Method::POST,
            "/v1/tenants/contoso/users/dup/methods",
            r#"{"kind": "security_questions", "kind": "email", "answered_count": 2}"#,
        ),
        (
            Method::POST,
            "/v1/tenants/contoso/users/dup/verifications",
            r#"{"phone_number": "+14255550100", "phone_number": "+14255550101", "purpose": "registration"}"#,
        ),
        (
            Method::PUT,
            "/v1/tenants/contoso/users/dup/default-method",
            r#"{"default_method": "sms", "default_method": "voice_mobile"}"#,
        ),
        (
            Method::PUT,
            "/v1/tenants/contoso/policy",
            r#"{"methods": {"phone": {"enabled": true, "enabled": false}}}"#,
        ),
    ];
    for (method, path, body) in cases {
        let response = server
            .http
            .request(method.clone(), server.url(path))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, problem) = read(response).await;
        assert_eq!(
            (status, problem_type(&problem)),
            (422, "invalid-request"),
            "{method} {path}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("duplicate"),
            "{problem}"
        );
    }
    // Nothing was stored for the user.
    assert_eq!(server.methods("dup").await["methods"], json!([]));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (_stub, server) = setup().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEARER"] {
        let response = server
            .http
            .get(server.url("/v1/tenants/contoso/users/ann/methods"))
            .header("authorization", format!("{scheme} {PORTAL_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_a_401_even_if_one_is_valid() {
    let (_stub, server) = setup().await;
    for pair in [
        [format!("Bearer {PORTAL_KEY}"), "Bearer nope".to_owned()],
        ["Bearer nope".to_owned(), format!("Bearer {PORTAL_KEY}")],
        [
            format!("Bearer {PORTAL_KEY}"),
            format!("Bearer {PORTAL_KEY}"),
        ],
    ] {
        let mut headers = reqwest::header::HeaderMap::new();
        for value in &pair {
            headers.append("authorization", value.parse().unwrap());
        }
        let response = server
            .http
            .get(server.url("/v1/tenants/contoso/users/ann/methods"))
            .headers(headers)
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_eq!(
            (status, problem_type(&body)),
            (401, "unauthenticated"),
            "{pair:?}"
        );
    }
}

#[tokio::test]
async fn display_names_with_bidi_controls_or_nothing_visible_are_422() {
    let (_stub, server) = setup().await;
    for name in [
        "My\u{202E}yeK",
        "\u{2066}key\u{2069}",
        "key\u{200F}",
        "\u{200B}\u{200B}",
        "\u{2060}\u{FEFF}\u{200D}",
        "tab\there",
    ] {
        let (status, body) = server
            .add_method(
                "bidi",
                json!({"kind": "authenticator_app", "display_name": name}),
            )
            .await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-request"),
            "{name:?}"
        );
    }
    assert_eq!(server.methods("bidi").await["methods"], json!([]));
    let (status, _) = server
        .add_method(
            "bidi",
            json!({"kind": "authenticator_app", "display_name": "Jan's 📱"}),
        )
        .await;
    assert_eq!(status, 201);
}

/// Every value stored under `prefix`, as text (strings, hashes, streams, lists, sets).
async fn stored_text(prefix: &str) -> String {
    let mut conn = crate::support::redis().await;
    let mut all = String::new();
    for key in crate::support::keys_under(prefix).await {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let command = match kind.as_str() {
            "string" => vec!["GET"],
            "hash" => vec!["HGETALL"],
            "stream" => vec!["XRANGE", "-", "+"],
            "list" => vec!["LRANGE", "0", "-1"],
            "set" => vec!["SMEMBERS"],
            "zset" => vec!["ZRANGE", "0", "-1"],
            _ => continue,
        };
        let mut cmd = redis::cmd(command[0]);
        cmd.arg(&key).arg(&command[1..]);
        let value: redis::Value = cmd.query_async(&mut conn).await.unwrap();
        all.push_str(&format!("{key} {value:?}\n"));
    }
    all
}

#[tokio::test]
async fn numbers_in_provider_errors_are_masked_in_whatever_form_they_are_written() {
    let (stub, server) = setup().await;
    // The dialled number is +14255550127; the provider's messages quote other numbers.
    let quoted = [
        (
            Mode::RejectedSaying("The 'To' number +1 (206) 555-0142 is not a valid phone number."),
            json!("invalid_number"),
        ),
        (
            Mode::RejectedSaying("Number 206.555.0143 is unverified; see +31 6 12345678"),
            json!("invalid_number"),
        ),
        // A 5xx leaves the outcome unknown: still open, no reason yet, the error kept.
        (
            Mode::FailedSaying("upstream refused 206-555-0144"),
            serde_json::Value::Null,
        ),
    ];
    for (i, (mode, reason)) in quoted.into_iter().enumerate() {
        stub.set_mode(mode);
        let (status, v) = server.register(&format!("mask{i}"), "+14255550127").await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v.get("reason").cloned().unwrap_or_default(), reason, "{v}");
        let error = v["provider_error"].as_str().unwrap().to_owned();
        let read_back = server.verification(v["id"].as_str().unwrap()).await;
        assert_eq!(read_back["provider_error"], error.as_str());
        let digits: String = error.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !digits.contains("2065550"),
            "unmasked in the answer: {error}"
        );
        assert!(
            !digits.contains("612345"),
            "unmasked in the answer: {error}"
        );
        assert!(error.contains("**"), "{error}");
    }
    // Separators dropped, so that any written form of the quoted numbers shows as digits.
    let stored: String = stored_text(&server.prefix)
        .await
        .chars()
        .filter(|c| !" ().-+".contains(*c))
        .collect();
    assert!(!stored.is_empty());
    assert!(!stored.contains("2065550"), "a quoted number reached Redis");
    assert!(
        !stored.contains("612345678"),
        "a quoted number reached Redis"
    );
}
