//! `Idempotency-Key` on `POST …/verifications` and `POST …/methods`: the same key and body answer
//! the same result (the same id) while the call is live and after it ended, never a second
//! call; another body is a 422 `idempotency-key-reused`; concurrent identical requests place
//! one call. Calls go to the Twilio stub, which counts them.

use serde_json::{Value, json};

use crate::support::stub_twilio::setup;
use crate::support::{PORTAL_KEY, TestServer, read};

const START: &str = "/v1/tenants/contoso/users/idem/verifications";

/// POSTs `body` to `path` with `Idempotency-Key: key`; status, body and whether it was replayed.
async fn post(server: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value, bool) {
    let response = server
        .http
        .post(server.url(path))
        .bearer_auth(PORTAL_KEY)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let (status, body) = read(response).await;
    (status, body, replayed)
}

fn registration(number: &str) -> Value {
    json!({"purpose": "registration", "phone_number": number})
}

#[tokio::test]
async fn a_retried_start_while_the_call_is_live_answers_the_same_verification() {
    let (stub, server) = setup().await;
    let body = registration("+14255550101");
    let (status, first, replayed) = post(&server, START, "order-1", &body).await;
    assert_eq!(status, 202, "{first}");
    assert!(!replayed);
    // Without the key the same start is refused: a call is live.
    let (status, refused) = server.post_json(PORTAL_KEY, START, body.clone()).await;
    assert_eq!(status, 409, "{refused}");
    let (status, again, replayed) = post(&server, START, "order-1", &body).await;
    assert_eq!(status, 202, "{again}");
    assert!(replayed);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(stub.calls().len(), 1);
}

#[tokio::test]
async fn a_retried_start_after_the_call_ended_answers_the_same_verification() {
    let (stub, server) = setup().await;
    let body = registration("+14255550102");
    let (status, first, _) = post(&server, START, "order-2", &body).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);
    let id = first["id"].as_str().unwrap();
    assert_eq!(server.verification(id).await["status"], "failed");
    let (status, again, replayed) = post(&server, START, "order-2", &body).await;
    assert_eq!((status, replayed), (202, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(stub.calls().len(), 1, "never a second call");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_calls_no_one() {
    let (stub, server) = setup().await;
    let (status, first, _) = post(&server, START, "order-3", &registration("+14255550103")).await;
    assert_eq!(status, 202, "{first}");
    let other = registration("+14255550104");
    let (status, problem, _) = post(&server, START, "order-3", &other).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "https://callverify.dev/problems/idempotency-key-reused"
    );
    assert_eq!(stub.calls().len(), 1);
    // The same key on another user is another record: it starts a call of its own.
    let path = "/v1/tenants/contoso/users/idem-other/verifications";
    let (status, body, replayed) = post(&server, path, "order-3", &other).await;
    assert_eq!((status, replayed), (202, false), "{body}");
    assert_eq!(stub.calls().len(), 2);
}

#[tokio::test]
async fn concurrent_identical_starts_place_one_call_and_answer_one_id() {
    let (stub, server) = setup().await;
    let body = registration("+14255550105");
    let answers =
        futures_util::future::join_all((0..8).map(|_| post(&server, START, "order-4", &body)))
            .await;
    let first = &answers[0].1["id"];
    assert!(first.is_string(), "{answers:?}");
    for (status, answer, _) in &answers {
        assert_eq!(*status, 202, "{answer}");
        assert_eq!(&answer["id"], first);
    }
    assert_eq!(
        answers.iter().filter(|(_, _, replayed)| !replayed).count(),
        1
    );
    assert_eq!(stub.calls().len(), 1);
}

#[tokio::test]
async fn a_failed_start_releases_its_key_and_bad_keys_are_refused() {
    let (stub, server) = setup().await;
    // Invalid number: 422, nothing stored under the key, so a corrected retry may reuse it.
    let (status, problem, _) = post(&server, START, "order-5", &registration("+1 12")).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "https://callverify.dev/problems/invalid-phone-number"
    );
    let (status, _, _) = post(&server, START, "order-5", &registration("+1 12")).await;
    assert_eq!(status, 422);
    assert!(stub.calls().is_empty());
    let long = "k".repeat(256);
    // Non-ASCII bytes (HTTP allows them in a header value; the key does not).
    let response = server
        .http
        .post(server.url(START))
        .bearer_auth(PORTAL_KEY)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"cl\xe9").unwrap(),
        )
        .json(&registration("+14255550106"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, 422);
    for bad in ["", long.as_str()] {
        let (status, problem, _) = post(&server, START, bad, &registration("+14255550106")).await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(
            problem["type"],
            "https://callverify.dev/problems/invalid-request"
        );
    }
    assert!(stub.calls().is_empty());
}

#[tokio::test]
async fn a_retried_method_add_answers_the_same_method_once() {
    let server = TestServer::start("http://unused.invalid", "").await;
    let path = "/v1/tenants/contoso/users/idem-methods/methods";
    let app = json!({"kind": "authenticator_app", "display_name": "Phone"});
    let (status, first, _) = post(&server, path, "app-1", &app).await;
    assert_eq!(status, 201, "{first}");
    let (status, again, replayed) = post(&server, path, "app-1", &app).await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    let methods = server.methods("idem-methods").await;
    assert_eq!(methods["methods"].as_array().unwrap().len(), 1, "{methods}");
    let other = json!({"kind": "authenticator_app", "display_name": "Tablet"});
    let (status, problem, _) = post(&server, path, "app-1", &other).await;
    assert_eq!(status, 422, "{problem}");
    // No key name holds the caller's key.
    let keys = crate::support::keys_under(&server.prefix).await;
    assert!(keys.iter().all(|k| !k.contains("app-1")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(":idem:")), "{keys:?}");
}
