//! Each adapter's real Calls API request against its provider's published contract
//! (tests/fixtures/openapi): Twilio's OpenAPI document (twilio-oai `CreateCall`), Telnyx's as the
//! SDK generated from its OpenAPI document types it, Plivo's SDK `calls.create` (Plivo publishes
//! no OpenAPI document), and SignalWire against Twilio's (its compatibility API mirrors Twilio's
//! `CreateCall`). A stub provider captures the request a registration really sends; every
//! parameter must be in the schema, every required one present, and each value must have the
//! schema's type and respect its enum and bounds.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::IntoResponse;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::support::{Options, TestServer};

/// One captured request: method, path, content type and body.
#[derive(Clone, Debug)]
struct Captured {
    method: Method,
    path: String,
    content_type: String,
    body: String,
}

/// A provider stub: records every request and answers a create in each provider's documented
/// shape (Twilio/SignalWire 201 with a `sid`, Telnyx `{from, to, status}`, Plivo the fixture).
async fn capturing_stub() -> (String, Arc<Mutex<Vec<Captured>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let path = uri.path().to_owned();
                log.lock().unwrap().push(Captured {
                    method,
                    path: path.clone(),
                    content_type,
                    body,
                });
                let (status, answer) = if path.contains("/texml/") {
                    (
                        200,
                        json!({"from": "+15005550006", "to": "+14255551260", "status": "queued"}),
                    )
                } else if path.contains("/v1/Account/") {
                    let created = include_str!("../fixtures/plivo/callCreateResponse.json");
                    (201, serde_json::from_str(created).unwrap())
                } else {
                    (
                        201,
                        json!({"sid": "CA0123456789abcdef0123456789abcdef", "status": "queued"}),
                    )
                };
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                (status, axum::Json(answer)).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn accounts(base: &str) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    // Every optional parameter the adapters can send is on: machine detection, a time limit.
    format!(
        r#"
[[providers]]
name = "tw"
kind = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "twilio-token"
api_base = "{base}"
from = "+15005550006"
machine_detection = "enable"
time_limit_secs = 600
[[providers]]
name = "sw"
kind = "signalwire"
project_id = "p1"
api_token = "sw-api-token"
signing_key = "PSKsigning"
api_base = "{base}/api/laml"
from = "+15005550006"
machine_detection = "enable"
time_limit_secs = 600
[[providers]]
name = "tx"
kind = "telnyx"
api_key = "KEYtelnyx"
account_sid = "acc"
application_sid = "app"
public_key = "{public}"
api_base = "{base}"
from = "+15005550006"
machine_detection = "enable"
time_limit_secs = 600
[[providers]]
name = "pl"
kind = "plivo"
auth_id = "MA1"
auth_token = "plivo-token"
api_base = "{base}"
from = "+15005550006"
machine_detection = "enable"
time_limit_secs = 600
"#
    )
}

/// The create-call request `account` really sends for a registration.
async fn captured_create(account: &str) -> Captured {
    let (base, seen) = capturing_stub().await;
    let extra = accounts(&base);
    let contoso = format!("providers = [\"{account}\"]");
    let options = Options {
        extra: &extra,
        contoso: &contoso,
        ..Options::default()
    };
    let server = TestServer::start_with(&base, options).await;
    let (status, body) = server.register("contract", "+14255551260").await;
    assert_eq!(status, 202, "{account}: {body}");
    assert_eq!(body["provider"], account, "{body}");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{account}: {requests:?}");
    requests.into_iter().next().unwrap()
}

/// The request's parameters as JSON values: a form's repeated keys become arrays of strings.
fn parameters(request: &Captured) -> Map<String, Value> {
    if request.content_type.starts_with("application/json") {
        return serde_json::from_str::<Value>(&request.body)
            .unwrap()
            .as_object()
            .unwrap()
            .clone();
    }
    let mut params = Map::new();
    for (k, v) in form_urlencoded::parse(request.body.as_bytes()) {
        match params.get_mut(k.as_ref()) {
            Some(Value::Array(list)) => list.push(json!(v)),
            Some(first) => *first = json!([first.clone(), v]),
            None => {
                params.insert(k.into_owned(), json!(v));
            }
        }
    }
    params
}

/// Why `value` breaks `schema` (a property of the excerpt), if it does. A form sends every value
/// as text, so `form` reads integers and booleans from their text.
fn violation(schema: &Value, value: &Value, form: bool) -> Option<String> {
    let scalar = |schema: &Value, value: &Value| -> Option<String> {
        let text = value.as_str();
        match schema["type"].as_str() {
            Some("string") if text.is_none() => return Some(format!("{value} is not a string")),
            Some("integer") => {
                let n = value
                    .as_i64()
                    .or_else(|| text.filter(|_| form).and_then(|t| t.parse().ok()));
                let Some(n) = n else {
                    return Some(format!("{value} is not an integer"));
                };
                if schema["minimum"].as_i64().is_some_and(|min| n < min) {
                    return Some(format!("{n} is below {}", schema["minimum"]));
                }
                if schema["maximum"].as_i64().is_some_and(|max| n > max) {
                    return Some(format!("{n} is above {}", schema["maximum"]));
                }
            }
            Some("boolean") => {
                let form_boolean = form && matches!(text, Some("true" | "false"));
                if !value.is_boolean() && !form_boolean {
                    return Some(format!("{value} is not a boolean"));
                }
            }
            _ => {}
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            return Some(format!("{value} is not one of {allowed:?}"));
        }
        if schema["format"] == "uri" {
            let parsed = text.and_then(|t| url::Url::parse(t).ok());
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Some(format!("{value} is not an absolute http(s) URL"));
            }
        }
        None
    };
    if schema["type"] == "array" {
        let items = match value {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        return items.iter().find_map(|v| scalar(&schema["items"], v));
    }
    if value.is_array() {
        return Some(format!("{value} repeats a parameter that is not a list"));
    }
    scalar(schema, value)
}

/// Checks `request` against the excerpt `contract` served under `server_prefix`.
fn check(account: &str, request: &Captured, contract: &str, server_prefix: &str) {
    let contract: Value = serde_json::from_str(contract).unwrap();
    assert_eq!(request.method, Method::POST, "{account}");
    let template = format!("{server_prefix}{}", contract["path"].as_str().unwrap());
    let matches_template = template.split('/').count() == request.path.split('/').count()
        && template
            .split('/')
            .zip(request.path.split('/'))
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()));
    assert!(
        matches_template,
        "{account}: {} is not {template}",
        request.path
    );
    let content_type = contract["content_type"].as_str().unwrap();
    assert!(
        request.content_type.starts_with(content_type),
        "{account}: sent {}, the contract takes {content_type}",
        request.content_type
    );
    let form = content_type == "application/x-www-form-urlencoded";
    let schema = &contract["schema"];
    let params = parameters(request);
    for (name, value) in &params {
        let property = &schema["properties"][name];
        assert!(
            property.is_object(),
            "{account}: {name} is not a parameter of the published contract ({})",
            request.body
        );
        if let Some(why) = violation(property, value, form) {
            panic!("{account}: {name}: {why}");
        }
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        assert!(params.contains_key(name), "{account}: {name} is required");
    }
}

#[tokio::test]
async fn every_adapters_create_call_request_fits_its_providers_published_contract() {
    let twilio = include_str!("../fixtures/openapi/twilio/create_call.json");
    let telnyx = include_str!("../fixtures/openapi/telnyx/create_call.json");
    let plivo = include_str!("../fixtures/openapi/plivo/create_call.json");
    for (account, contract, prefix) in [
        ("tw", twilio, ""),
        ("sw", twilio, "/api/laml"),
        ("tx", telnyx, "/v2"),
        ("pl", plivo, ""),
    ] {
        let request = captured_create(account).await;
        check(account, &request, contract, prefix);
    }
}

#[test]
fn the_contract_check_refuses_what_the_contracts_refuse() {
    let telnyx = include_str!("../fixtures/openapi/telnyx/create_call.json");
    let request = |body: Value| Captured {
        method: Method::POST,
        path: "/v2/texml/Accounts/acc/Calls".into(),
        content_type: "application/json".into(),
        body: body.to_string(),
    };
    let fine = json!({"Url": "https://example.com/voice", "UrlMethod": "POST", "Timeout": 30});
    check("tx", &request(fine), telnyx, "/v2");
    for bad in [
        // Twilio's names, not Telnyx's.
        json!({"Url": "https://example.com/voice", "Method": "POST"}),
        json!({"Url": "https://example.com/voice", "FallbackMethod": "POST"}),
        // Outside an enum and outside the bounds.
        json!({"Url": "https://example.com/voice", "MachineDetection": "true"}),
        json!({"Url": "https://example.com/voice", "Timeout": 600}),
        json!({"Url": "https://example.com/voice", "TimeLimit": 10}),
        // The required Url missing.
        json!({"To": "+14255551260"}),
    ] {
        let refused =
            std::panic::catch_unwind(|| check("tx", &request(bad.clone()), telnyx, "/v2"));
        assert!(refused.is_err(), "accepted {bad}");
    }
}
