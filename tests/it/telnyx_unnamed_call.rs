//! A Telnyx call placed without a call id (docs/PROVIDERS.md#telnyx-relied-on-behaviour): Telnyx
//! documents the TeXML create answer as `{from, to, status}`. That answer is a placed call, not
//! an unknown outcome: the verification stays open with no provider error, the first signed
//! callback for it binds its `CallSid`, a callback naming another call changes nothing, and
//! reconciliation never asks Telnyx about a call it cannot name — it ends the verification
//! `provider_unknown` past the ring timeout plus the margin when no callback ever comes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method as HttpMethod, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use callverify_simulator::dialect::Signer;
use callverify_simulator::twiml::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

/// A Telnyx Calls API that answers a create with the documented example's shape (no call id)
/// and records every request it gets (method and path).
async fn documented_telnyx() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(move |method: HttpMethod, uri: Uri, body: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(format!("{method} {}", uri.path()));
            let sent: Value = serde_json::from_str(&body).unwrap_or_default();
            // "Initiate an outbound call": 200 with `from`, `to` and `status` only.
            let answer = json!({"from": sent["From"], "to": sent["To"], "status": "queued"});
            axum::Json(answer).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// callverify with one Telnyx account whose calls go to `base`, and the key its webhooks are
/// signed with.
async fn server(base: &str, verification: &str) -> (TestServer, ed25519_dalek::SigningKey) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    let extra = format!(
        "[verification]\n{verification}\n[[providers]]\nname = \"tx\"\nkind = \"telnyx\"\napi_key = \"KEYtelnyx\"\naccount_sid = \"acc\"\napplication_sid = \"app\"\npublic_key = \"{public}\"\napi_base = \"{base}\"\nfrom = \"+15005550006\"\nring_timeout_secs = 5\n"
    );
    (TestServer::start(base, &extra).await, key)
}

/// Posts a TeXML callback signed as Telnyx signs it (Ed25519 over `timestamp|body`).
async fn post_signed(
    server: &TestServer,
    key: &ed25519_dalek::SigningKey,
    path: &str,
    params: &[(&str, &str)],
) -> u16 {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let url = server.url(path);
    let signer = Signer::Telnyx { key: key.clone() };
    let mut request = server
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (name, value) in signer.headers(Method::Post, &url, &params, &body) {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_telnyx_call_created_without_an_id_is_placed_and_bound_by_its_first_callback() {
    let (base, seen) = documented_telnyx().await;
    let (server, key) = server(&base, "").await;
    let (status, body) = server.register("una", "+14255551240").await;
    assert_eq!(status, 202, "{body}");
    // Placed, not an unknown outcome: open, on this account, no provider error.
    assert_eq!(body["status"], "calling", "{body}");
    assert_eq!(body["provider"], "tx", "{body}");
    assert!(body["provider_error"].is_null(), "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "one create request");

    // The first signed callback for this verification binds its CallSid.
    let status_path = format!("/telephony/tx/{id}/status");
    let ringing = [("CallSid", "v3:first-call"), ("CallStatus", "ringing")];
    let code = post_signed(&server, &key, &status_path, &ringing).await;
    assert!((200..300).contains(&code), "ringing callback: {code}");
    assert_eq!(server.verification(id).await["status"], "ringing");

    // Another call's callback for the same verification is refused and changes nothing.
    let before = server.verification(id).await;
    let gather_path = format!("/telephony/tx/{id}/gather?step=prompt");
    let other = [
        ("CallSid", "v3:other-call"),
        ("CallStatus", "in-progress"),
        ("Digits", "#"),
    ];
    assert_eq!(post_signed(&server, &key, &gather_path, &other).await, 403);
    let after = server.verification(id).await;
    assert_eq!(
        (&after["status"], &after["updated_at"]),
        (&before["status"], &before["updated_at"]),
        "{after}"
    );

    // The bound call's # approves.
    let pound = [
        ("CallSid", "v3:first-call"),
        ("CallStatus", "in-progress"),
        ("Digits", "#"),
    ];
    assert_eq!(post_signed(&server, &key, &gather_path, &pound).await, 200);
    let v = server.verification(id).await;
    assert_eq!(v["status"], "approved", "{v}");
    assert!(v["provider_error"].is_null(), "{v}");
}

#[tokio::test]
async fn a_telnyx_call_without_an_id_that_never_reports_back_ends_without_asking_telnyx() {
    let (base, seen) = documented_telnyx().await;
    let settings = "reconcile_interval_secs = 1\nunknown_outcome_margin_secs = 1";
    let (server, _key) = server(&base, settings).await;
    let (status, body) = server.register("una", "+14255551241").await;
    assert_eq!(status, 202, "{body}");
    assert!(body["provider_error"].is_null(), "{body}");
    let id = body["id"].as_str().unwrap();
    // No callback ever comes: ended by reconciliation past the ring timeout plus the margin.
    let v = server.wait_for_end(id).await;
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("provider_unknown")),
        "{v}"
    );
    assert!(
        v["provider_error"]
            .as_str()
            .is_some_and(|e| e.contains("placed the call without naming it")),
        "{v}"
    );
    // Telnyx heard only the create: nobody asked it about a call without an id.
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        ["POST /v2/texml/Accounts/acc/Calls"],
        "{requests:?}"
    );
}
