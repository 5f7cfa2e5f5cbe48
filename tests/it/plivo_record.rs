//! Plivo reconciliation from the call record (docs/PROVIDERS.md#plivo-reconciliation), against a
//! stub Plivo built from plivo-python's own fixtures (tests/fixtures/plivo): the call ended and
//! its hangup callback was lost, so the live-call endpoint answers 404 and the record tells what
//! happened. Never answered (`answer_time` null) ends `no_answer`; answered without a `#` ends
//! `hung_up` — both within the reconciliation bound, with no callback at all.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::support::{Options, TestServer};

const CREATED: &str = include_str!("../fixtures/plivo/callCreateResponse.json");
const RECORD: &str = include_str!("../fixtures/plivo/callGetResponse.json");

/// A Plivo whose calls end at once and never call back: it answers a create with the fixture,
/// the live-call endpoint with 404 (the call is over) and the call record with `record`. Every
/// request is logged as `METHOD path?query`.
async fn ended_plivo(record: Value) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri| {
        let (log, record) = (log.clone(), record.clone());
        async move {
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            log.lock()
                .unwrap()
                .push(format!("{method} {}{query}", uri.path()));
            let created: Value = serde_json::from_str(CREATED).unwrap();
            match (method, uri.query()) {
                (Method::POST, _) => (StatusCode::CREATED, axum::Json(created)).into_response(),
                (Method::GET, Some("status=live")) => {
                    let gone = json!({"api_id": created["api_id"], "error": "not found"});
                    (StatusCode::NOT_FOUND, axum::Json(gone)).into_response()
                }
                (Method::GET, None) => axum::Json(record).into_response(),
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// Places one registration call through a Plivo account at `base` and waits for its end.
async fn lost_hangup(record: Value) -> (Value, Vec<String>) {
    let (base, seen) = ended_plivo(record).await;
    let extra = format!(
        "[verification]\nreconcile_interval_secs = 1\nhangup_grace_ms = 200\n[[providers]]\nname = \"pl\"\nkind = \"plivo\"\nauth_id = \"MA1\"\nauth_token = \"plivo-token\"\napi_base = \"{base}\"\nfrom = \"+15005550006\"\n"
    );
    let options = Options {
        extra: &extra,
        ..Options::default()
    };
    let server = TestServer::start_with(&base, options).await;
    let (status, body) = server.register("rec", "+14255551250").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "calling", "{body}");
    let v = server.wait_for_end(body["id"].as_str().unwrap()).await;
    let requests = seen.lock().unwrap().clone();
    (v, requests)
}

fn read_both_endpoints(requests: &[String]) {
    let created: Value = serde_json::from_str(CREATED).unwrap();
    let call = format!(
        "/v1/Account/MA1/Call/{}/",
        created["request_uuid"].as_str().unwrap()
    );
    assert!(
        requests.contains(&format!("GET {call}?status=live")),
        "{requests:?}"
    );
    assert!(requests.contains(&format!("GET {call}")), "{requests:?}");
}

#[tokio::test]
async fn a_plivo_call_never_answered_whose_hangup_was_lost_ends_no_answer_from_the_record() {
    // The fixture as plivo-python ships it: answer_time null, end_time set.
    let record: Value = serde_json::from_str(RECORD).unwrap();
    assert!(record["answer_time"].is_null() && record["end_time"].is_string());
    let (v, requests) = lost_hangup(record).await;
    assert_eq!(
        (&v["status"], &v["reason"], &v["provider"]),
        (&json!("failed"), &json!("no_answer"), &json!("pl")),
        "{v}"
    );
    read_both_endpoints(&requests);
}

#[tokio::test]
async fn a_plivo_call_answered_without_a_pound_whose_hangup_was_lost_ends_hung_up() {
    let mut record: Value = serde_json::from_str(RECORD).unwrap();
    record["answer_time"] = json!("2017-05-22 17:49:33+05:30");
    record["call_duration"] = json!(7);
    record["bill_duration"] = json!(7);
    let (v, requests) = lost_hangup(record).await;
    assert_eq!(
        (&v["status"], &v["reason"], &v["provider"]),
        (&json!("failed"), &json!("hung_up"), &json!("pl")),
        "{v}"
    );
    read_both_endpoints(&requests);
}
