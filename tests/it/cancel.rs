//! `POST …/verifications/{id}/cancel`: a live verification (queued, ringing, answered) ends
//! `canceled`, the provider is asked to end the call (Twilio: `POST …/Calls/{sid}.json`
//! `Status=completed`), the user's live slot is free at once and `verification.canceled` is
//! sent; a repeated cancel answers the same, an ended verification is a 409. Two instances
//! canceling the same verification at once agree, and the event is sent once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::stub_twilio::{StubTwilio, answered_registration, gather_action, setup};
use crate::support::{OTHER_KEY, Options, PORTAL_KEY, TestServer};

fn cancel_path(id: &str) -> String {
    format!("/v1/tenants/contoso/verifications/{id}/cancel")
}

async fn cancel(server: &TestServer, id: &str) -> (u16, Value) {
    server
        .post_json(PORTAL_KEY, &cancel_path(id), json!({}))
        .await
}

/// Cancels `id` and checks what a cancel does: canceled, the provider told, the slot free.
async fn cancels(stub: &StubTwilio, server: &TestServer, user: &str, id: &str, sid: &str) {
    let (status, body) = cancel(server, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["reason"].as_str()),
        (Some("canceled"), Some("canceled"))
    );
    assert_eq!(body["id"], id);
    assert_eq!(
        stub.updates(),
        vec![(sid.to_owned(), "completed".to_owned())]
    );
    // Repeated: the same answer, the provider not asked again.
    let (status, again) = cancel(server, id).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "canceled");
    assert_eq!(stub.updates().len(), 1);
    // The live slot is free: a new call starts at once (no 409 verification-in-progress).
    let (status, next) = server.register(user, "+14255550199").await;
    assert_eq!(status, 202, "{next}");
    let audit = server.audit(user).await;
    let ends: Vec<&Value> = audit.iter().filter(|e| e["verification"] == id).collect();
    assert_eq!(ends.len(), 1, "{audit:?}");
    assert_eq!(ends[0]["outcome"], "canceled");
}

#[tokio::test]
async fn a_queued_call_is_canceled() {
    let (stub, server) = setup().await;
    let (status, body) = server.register("cancel-queued", "+14255550111").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "calling");
    let id = body["id"].as_str().unwrap();
    let sid = stub.last_call().request.sid;
    cancels(&stub, &server, "cancel-queued", id, &sid).await;
}

#[tokio::test]
async fn a_ringing_call_is_canceled() {
    let (stub, server) = setup().await;
    let (status, body) = server.register("cancel-ringing", "+14255550112").await;
    assert_eq!(status, 202, "{body}");
    let call = stub.last_call();
    assert_eq!(stub.status(&call, "ringing", "1").await, 204);
    let id = body["id"].as_str().unwrap();
    assert_eq!(server.verification(id).await["status"], "ringing");
    cancels(&stub, &server, "cancel-ringing", id, &call.request.sid).await;
    // The provider's own "canceled" callback that follows changes nothing.
    assert_eq!(stub.status(&call, "canceled", "2").await, 204);
    assert_eq!(server.verification(id).await["status"], "canceled");
}

#[tokio::test]
async fn an_answered_call_is_canceled_and_a_late_pound_registers_nothing() {
    let (stub, server) = setup().await;
    let user = "cancel-answered";
    let (id, call, twiml) = answered_registration(&stub, &server, user, "+14255550113").await;
    assert_eq!(server.verification(&id).await["status"], "answered");
    cancels(&stub, &server, user, &id, &call.request.sid).await;
    let (status, _) = stub.press(&call, &gather_action(&twiml), "#").await;
    assert_eq!(status, 200);
    assert_eq!(server.verification(&id).await["status"], "canceled");
    assert_eq!(server.methods(user).await["methods"], json!([]));
}

#[tokio::test]
async fn an_ended_verification_is_a_409_and_others_are_404() {
    let (stub, server) = setup().await;
    let (status, body) = server
        .approve_registration(&stub, "cancel-ended", "+14255550114", "mobile")
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, problem) = cancel(&server, id).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        problem["type"],
        "https://callverify.dev/problems/verification-ended"
    );
    assert_eq!(server.verification(id).await["status"], "approved");
    assert!(stub.updates().is_empty());
    // Another tenant's key, an unknown id: 403 and 404, nothing changed.
    let (status, _) = server
        .post_json(OTHER_KEY, &cancel_path(id), json!({}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = cancel(&server, &"0".repeat(48)).await;
    assert_eq!(status, 404);
    let (status, _) = cancel(&server, "not-an-id").await;
    assert_eq!(status, 404);
}

/// A portal back-end that records the events it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    async fn receive(State(got): State<Arc<Mutex<Vec<Value>>>>, body: axum::body::Bytes) {
        got.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap());
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(got.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn two_instances_canceling_at_once_agree_and_send_one_event() {
    let stub = StubTwilio::start().await;
    let (url, got) = receiver().await;
    let contoso = format!(
        "events_url = \"{url}\"\nevents_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""
    );
    let extra = "[events]\npoll_interval_ms = 50";
    let options = |prefix| Options {
        extra,
        contoso: &contoso,
        prefix,
        ..Options::default()
    };
    let a = TestServer::start_with(&stub.base, options(None)).await;
    let b = TestServer::start_with(&stub.base, options(Some(a.prefix.clone()))).await;
    let (status, body) = a.register("cancel-two", "+14255550115").await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let (one, two) = tokio::join!(cancel(&a, id), cancel(&b, id));
    for (status, body) in [&one, &two] {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["status"], "canceled");
    }
    assert_eq!(stub.updates().len(), 1, "the provider is asked once");
    // The event arrives, once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let canceled = || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "verification.canceled")
            .cloned()
            .collect::<Vec<_>>()
    };
    while canceled().is_empty() {
        assert!(Instant::now() < deadline, "no verification.canceled event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = canceled();
    assert_eq!(events[0]["data"]["verification"]["id"], id);
    assert_eq!(events[0]["data"]["verification"]["status"], "canceled");
    // The event is what the document's `webhooks` entry says it is.
    let (status, doc) = a.get_json(PORTAL_KEY, "/openapi.json").await;
    assert_eq!(status, 200);
    let post = &doc["webhooks"]["verification.canceled"]["post"];
    let schema = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    assert_eq!(schema, "#/components/schemas/VerificationEvent");
    let schemas = &doc["components"]["schemas"];
    let has_required = |value: &Value, schema: &Value| {
        for field in schema["required"].as_array().unwrap() {
            let field = field.as_str().unwrap();
            assert!(value.get(field).is_some(), "{field} missing in {value}");
        }
    };
    has_required(&events[0], &schemas["VerificationEvent"]);
    has_required(
        &events[0]["data"]["verification"],
        &schemas["VerificationView"],
    );
    let types = schemas["VerificationEvent"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap();
    assert!(types.contains(&events[0]["type"]));
    // A later event (another verification of the user, busy) arrives too; the cancel's is
    // still there once.
    let (status, body) = b.register("cancel-two", "+14255550116").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);
    let failed = || {
        got.lock()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "verification.failed")
    };
    while !failed() {
        assert!(Instant::now() < deadline, "no verification.failed event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(canceled().len(), 1, "{:?}", got.lock().unwrap());
}

#[tokio::test]
async fn every_dialects_simulator_ends_a_canceled_call() {
    // Real time: the callee (a number ending in 01) would ring for the whole ring timeout, so a
    // call that ends within seconds was ended by callverify's request.
    for dialect in ["twilio", "signalwire", "telnyx", "plivo"] {
        let extra = format!(
            "[provider.simulator]\ntime_scale = 1.0\n[[providers]]\nname = \"sim-{dialect}\"\nkind = \"simulator\"\ndialect = \"{dialect}\"\n"
        );
        let options = Options {
            extra: &extra,
            ..Options::default()
        };
        let server = TestServer::start_with("http://unused.invalid", options).await;
        let (status, body) = server.register("cancel-sim", "+14255550101").await;
        assert_eq!(status, 202, "{dialect}: {body}");
        let id = body["id"].as_str().unwrap();
        let (status, body) = cancel(&server, id).await;
        assert_eq!(status, 200, "{dialect}: {body}");
        let simulator = server.simulator.as_ref().unwrap();
        let call = simulator.calls_to("+14255550101").pop().unwrap();
        let ended = simulator
            .wait_until_finished(&call.call_sid, Duration::from_secs(10))
            .await;
        assert!(ended.is_some(), "{dialect}: the simulated call still rings");
        assert_eq!(server.verification(id).await["status"], "canceled");
    }
}
