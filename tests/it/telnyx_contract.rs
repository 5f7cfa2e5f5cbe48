//! Telnyx as Telnyx documents it (docs/PROVIDERS.md#telnyx-relied-on-behaviour): the
//! simulator's Telnyx dialect plays `<Gather>` by the documented rules only, so `#` must reach
//! callverify without `finishOnKey=""`; answering machines report `AnsweredBy=machine`; the
//! Calls API request uses only documented parameter names (`UrlMethod`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use base64::Engine;
use callverify_simulator::Behaviour;
use serde_json::{Value, json};

use crate::support::{Options, TestServer};

const TELNYX_SIMULATED: &str = "[provider.simulator]\ntime_scale = 0.01\n[[providers]]\nname = \"sim-telnyx\"\nkind = \"simulator\"\ndialect = \"telnyx\"\nmachine_detection = \"enable\"\n";

async fn telnyx_server() -> TestServer {
    TestServer::start("http://unused.invalid", TELNYX_SIMULATED).await
}

#[tokio::test]
async fn pound_reaches_callverify_under_telnyx_documented_gather_rules() {
    let server = telnyx_server().await;
    let simulator = server.simulator.as_ref().unwrap();
    simulator.script("+14255551234", Behaviour::presses(["#"]));
    let (status, body) = server.register("amy", "+14255551234").await;
    assert_eq!(status, 202, "{body}");
    let v = server.wait_for_end(body["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "approved", "{v}");
    let call = simulator.calls_to("+14255551234").pop().unwrap();
    let t = simulator
        .wait_until_finished(&call.call_sid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(t.pressed(), ["#"]);
}

#[tokio::test]
async fn a_telnyx_answering_machine_ends_voicemail() {
    let server = telnyx_server().await;
    let simulator = server.simulator.as_ref().unwrap();
    simulator.script("+14255551235", Behaviour::voicemail());
    let (status, body) = server.register("bob", "+14255551235").await;
    assert_eq!(status, 202, "{body}");
    let v = server.wait_for_end(body["id"].as_str().unwrap()).await;
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("voicemail")),
        "{v}"
    );
}

/// A Telnyx stub that records every create-call body and answers with a call resource.
async fn recording_stub() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = Router::new().fallback(move |body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                seen.lock().unwrap().push(v);
            }
            axum::Json(json!({"call_sid": "v3:stubcall", "status": "queued"})).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, bodies)
}

#[tokio::test]
async fn the_telnyx_create_call_uses_only_documented_parameter_names() {
    let (base, bodies) = recording_stub().await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    let extra = format!(
        "[[providers]]\nname = \"tx\"\nkind = \"telnyx\"\napi_key = \"KEYtelnyx\"\naccount_sid = \"acc\"\napplication_sid = \"app\"\npublic_key = \"{public}\"\napi_base = \"{base}\"\nfrom = \"+15005550006\"\nmachine_detection = \"enable\"\n"
    );
    let server = TestServer::start("http://unused.invalid", &extra).await;
    let (status, body) = server.register("cat", "+14255551236").await;
    assert_eq!(status, 202, "{body}");
    let mut sent = None;
    for _ in 0..100 {
        if let Some(b) = bodies.lock().unwrap().first().cloned() {
            sent = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.expect("a create-call request");
    // Parameter names of Telnyx's TeXML "Initiate an outbound call" (tests/fixtures/openapi).
    let contract: Value =
        serde_json::from_str(include_str!("../fixtures/openapi/telnyx/create_call.json")).unwrap();
    let documented = contract["schema"]["properties"].as_object().unwrap();
    for name in sent.as_object().unwrap().keys() {
        assert!(
            documented.contains_key(name),
            "{name} is not a documented TeXML call parameter: {sent}"
        );
    }
    assert_eq!(sent["UrlMethod"], "POST", "{sent}");
    assert_eq!(sent["StatusCallbackMethod"], "POST", "{sent}");
    assert_eq!(sent["MachineDetection"], "Enable", "{sent}");
}

/// Telnyx's "Invalid phone number" (error 10002, Telnyx's API error codes): an invalid number
/// on every account, so the verification fails `invalid_number` and the next account is never
/// asked (it failed over before).
#[tokio::test]
async fn telnyx_error_10002_is_an_invalid_number_and_never_fails_over() {
    let app = Router::new().fallback(|| async {
        let body = json!({"errors": [{"code": "10002", "title": "Invalid phone number", "detail": "The 'To' phone number is invalid."}]});
        (axum::http::StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    let extra = format!(
        "[provider.simulator]\ntime_scale = 0.01\n[[providers]]\nname = \"tx\"\nkind = \"telnyx\"\napi_key = \"KEYtelnyx\"\naccount_sid = \"acc\"\napplication_sid = \"app\"\npublic_key = \"{public}\"\napi_base = \"{base}\"\nfrom = \"+15005550006\"\n[[providers]]\nname = \"backup\"\nkind = \"simulator\"\n"
    );
    let options = Options {
        extra: &extra,
        contoso: "providers = [\"tx\", \"backup\"]",
        ..Options::default()
    };
    let server = TestServer::start_with(&base, options).await;
    let (status, body) = server.register("dan", "+14255551237").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (&body["status"], &body["reason"], &body["provider"]),
        (&json!("failed"), &json!("invalid_number"), &json!("tx")),
        "{body}"
    );
    // The start answers after dialling: a failover would already have placed this call.
    let simulator = server.simulator.as_ref().unwrap();
    assert!(simulator.calls_to("+14255551237").is_empty());
}
