//! Signed events to the portal back-end: a receiver in the test checks every request with a
//! Standard Webhooks verifier written here from the spec (not our signer), and answers as
//! scripted to exercise retries, a restart mid-retry, and 410.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

use crate::support::stub_twilio::gather_action;
use crate::support::{ADMIN_KEY, Options, StubTwilio, TestServer};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOLERANCE_SECS: i64 = 5 * 60;

/// Standard Webhooks verification, from the spec: HMAC-SHA256 over `id.timestamp.body` with the
/// base64 key after `whsec_`, any `v1` signature of the space-separated list may match,
/// timestamps within 5 minutes either way.
fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "bad secret")?;
    let ts: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if now - ts > TOLERANCE_SECS {
        return Err("too old");
    }
    if ts - now > TOLERANCE_SECS {
        return Err("too new");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    let matches = signatures.split(' ').any(|candidate| {
        candidate.split_once(',').is_some_and(|(version, sig)| {
            version == "v1" && same(sig.as_bytes(), expected.as_bytes())
        })
    });
    if matches {
        Ok(())
    } else {
        Err("no matching signature")
    }
}

/// Equal without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[test]
fn the_test_verifier_agrees_with_the_spec_vectors() {
    let all: Value =
        serde_json::from_str(include_str!("../fixtures/provider_vectors.json")).unwrap();
    for case in all["standard_webhooks"].as_array().unwrap() {
        let (secret, id) = (
            case["secret"].as_str().unwrap(),
            case["msg_id"].as_str().unwrap(),
        );
        let ts = case["timestamp"].as_i64().unwrap();
        let (payload, sig) = (
            case["payload"].as_str().unwrap(),
            case["signature"].as_str().unwrap(),
        );
        let check = |sigs: &str, now: i64| {
            verify(secret, id, &ts.to_string(), sigs, payload.as_bytes(), now)
        };
        assert_eq!(check(sig, ts), Ok(()));
        // Key rotation: other versions and non-matching v1 signatures around the valid one.
        let filler = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        let v2 = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        assert_eq!(check(&format!("{filler} {v2} {sig} {filler}"), ts), Ok(()));
        assert!(check(filler, ts).is_err());
        assert!(check(&sig.replacen("v1,", "v2,", 1), ts).is_err());
        assert_eq!(check(sig, ts + TOLERANCE_SECS + 1), Err("too old"));
        assert_eq!(check(sig, ts - TOLERANCE_SECS - 1), Err("too new"));
        assert!(verify(secret, id, &ts.to_string(), sig, b"{}", ts).is_err());
    }
    // The python library's off-by-one-character signature.
    let python = &all["standard_webhooks"][0];
    let bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    let ts = python["timestamp"].as_i64().unwrap();
    assert!(
        verify(
            SECRET,
            python["msg_id"].as_str().unwrap(),
            &ts.to_string(),
            bad,
            python["payload"].as_str().unwrap().as_bytes(),
            ts
        )
        .is_err()
    );
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    body: String,
    verified: Result<(), &'static str>,
    answered: u16,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<u16>,
    got: Vec<Received>,
}

/// A portal back-end: answers each request with the next scripted status (then 200).
#[derive(Clone)]
struct Receiver {
    url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let mut verified = verify(SECRET, &id, &ts, &sig, &body, now);
    if header("content-type") != "application/json" {
        verified = Err("content type");
    }
    let mut inner = inner.lock().unwrap();
    let answered = inner.script.pop_front().unwrap_or(200);
    inner.got.push(Received {
        id,
        body: String::from_utf8_lossy(&body).into_owned(),
        verified,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.iter().copied().collect(),
            got: Vec::new(),
        }));
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    fn got(&self) -> Vec<Received> {
        self.inner.lock().unwrap().got.clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.answered < 300)
            .collect()
    }

    /// Waits (up to 10 s) until `n` requests arrived.
    async fn wait_for(&self, n: usize, ok_only: bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = if ok_only {
                self.delivered()
            } else {
                self.got()
            };
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "only {got:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `[events]` tuned to milliseconds.
fn events_config(schedule: &str) -> String {
    format!(
        "[events]\nretry_schedule_ms = {schedule}\nrequest_timeout_ms = 2000\nclaim_idle_ms = 3000\npoll_interval_ms = 50"
    )
}

async fn start(
    stub: &StubTwilio,
    receiver: &Receiver,
    extra: &str,
    prefix: Option<String>,
) -> TestServer {
    let contoso = format!(
        "events_url = \"{}\"\nevents_secret = \"{SECRET}\"",
        receiver.url
    );
    TestServer::start_with(
        &stub.base,
        Options {
            extra,
            contoso: &contoso,
            prefix,
            ..Options::default()
        },
    )
    .await
}

/// A verification of `user` that fails busy: queues one `verification.failed` event.
async fn failed_call(stub: &StubTwilio, server: &TestServer, user: &str, number: &str) -> String {
    let (status, body) = server.register(user, number).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);
    body["id"].as_str().unwrap().to_owned()
}

fn all_verified(got: &[Received]) {
    for r in got {
        assert_eq!(r.verified, Ok(()), "{r:?}");
    }
}

#[tokio::test]
async fn a_failing_portal_gets_the_same_event_again_until_it_succeeds_once() {
    let stub = StubTwilio::start().await;
    let receiver = Receiver::start(&[500, 500, 503]).await;
    let server = start(
        &stub,
        &receiver,
        &events_config("[100, 100, 100, 100]"),
        None,
    )
    .await;
    let id = failed_call(&stub, &server, "ada", "+14255550300").await;

    receiver.wait_for(1, true).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = receiver.got();
    assert_eq!(
        got.len(),
        4,
        "three failures, one success, nothing after: {got:?}"
    );
    all_verified(&got);
    assert_eq!(receiver.delivered().len(), 1);
    assert!(
        got.iter()
            .all(|r| r.id == got[0].id && r.body == got[0].body),
        "{got:?}"
    );
    assert!(got[0].id.starts_with("msg_"));
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "verification.failed");
    assert_eq!(
        (event["tenant"].as_str(), event["user"].as_str()),
        (Some("contoso"), Some("ada"))
    );
    assert_eq!(event["data"]["verification"]["id"], id);
    assert_eq!(event["data"]["verification"]["reason"], "busy");
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    // Nothing left to deliver or retry.
    let leftovers: Vec<_> = crate::support::keys_under(&server.prefix)
        .await
        .into_iter()
        .filter(|k| k.contains("{outbox}:retries") || k.contains("{outbox}:attempts"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn an_event_mid_retry_survives_a_restart_of_callverify() {
    let stub = StubTwilio::start().await;
    let receiver = Receiver::start(&[500]).await;
    let config = events_config("[700, 100]");
    let first = start(&stub, &receiver, &config, None).await;
    let prefix = first.prefix.clone();
    failed_call(&stub, &first, "bea", "+14255550310").await;
    receiver.wait_for(1, false).await;
    first.stop().await;
    assert_eq!(receiver.got().len(), 1, "the retry is not due yet");

    let second = start(&stub, &receiver, &config, Some(prefix)).await;
    let delivered = receiver.wait_for(1, true).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    all_verified(&got);
    assert_eq!(
        delivered[0].id, got[0].id,
        "the same webhook-id after the restart"
    );
    drop(second);
}

#[tokio::test]
async fn a_410_turns_delivery_off_for_that_tenant() {
    let stub = StubTwilio::start().await;
    let receiver = Receiver::start(&[410]).await;
    let server = start(&stub, &receiver, &events_config("[100, 100]"), None).await;
    failed_call(&stub, &server, "cal", "+14255550320").await;
    receiver.wait_for(1, false).await;
    let mut conn = crate::support::redis().await;
    let key = format!("{}:{{outbox}}:disabled", server.prefix);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let url: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("contoso")
            .query_async(&mut conn)
            .await
            .unwrap();
        if url.is_some() {
            assert_eq!(url.as_deref(), Some(receiver.url.as_str()));
            break;
        }
        assert!(Instant::now() < deadline, "410 not persisted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    failed_call(&stub, &server, "dan", "+14255550321").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.got().len(),
        1,
        "nothing more sent to a URL that answered 410"
    );
}

#[tokio::test]
async fn a_fraud_report_reaches_the_portal_signed_and_blocks_the_user_until_unblocked() {
    let stub = StubTwilio::start().await;
    let receiver = Receiver::start(&[]).await;
    let server = start(&stub, &receiver, &events_config("[100]"), None).await;
    let (_, v) = server.register("eve", "+14255550330").await;
    let call = stub.last_call();
    let (_, twiml) = stub.answer(&call).await;
    let (_, confirm) = stub.press(&call, &gather_action(&twiml), "0").await;
    let (_, closing) = stub.press(&call, &gather_action(&confirm), "#").await;
    assert!(closing.contains("reported this call as fraud"));

    let got = receiver.wait_for(1, true).await;
    all_verified(&got);
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "verification.fraud_reported");
    assert_eq!(event["user"], "eve");
    assert_eq!(event["data"]["verification"]["id"], v["id"]);
    assert_eq!(event["data"]["verification"]["status"], "fraud_reported");

    let (status, body) = server.register("eve", "+14255550331").await;
    assert_eq!(status, 423, "{body}");
    let (status, _) = server
        .delete(ADMIN_KEY, "/v1/tenants/contoso/users/eve/block")
        .await;
    assert_eq!(status, 204);
    let (status, body) = server.register("eve", "+14255550331").await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn a_first_attempt_left_pending_by_a_crashed_instance_is_taken_over() {
    let stub = StubTwilio::start().await;
    let receiver = Receiver::start(&[]).await;
    let prefix = crate::support::unique_prefix();
    let stream = format!("{prefix}:{{outbox}}:events");
    let mut conn = crate::support::redis().await;
    let body = r#"{"type":"method.deleted","tenant":"contoso","user":"fay","timestamp":"2026-01-01T00:00:00Z","data":{}}"#;
    // An instance read the event and died before acknowledging it.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("delivery")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(&[("id", "msg_crashed"), ("tenant", "contoso"), ("body", body)])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("delivery")
        .arg("crashed")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();

    let config = "[events]\nrequest_timeout_ms = 200\nclaim_idle_ms = 400\npoll_interval_ms = 50";
    let _server = start(&stub, &receiver, config, Some(prefix)).await;
    let got = receiver.wait_for(1, true).await;
    all_verified(&got);
    assert_eq!(got[0].id, "msg_crashed");
    assert_eq!(
        got[0].body, body,
        "the stored bytes, not a re-serialisation"
    );
}

/// The worker's outbox read blocks longer than one Redis round trip may take: the read waits its
/// whole `BLOCK` and comes back empty, not timed out. (On a cluster the client's overall
/// deadline was once `redis.timeout_ms` whatever the connection asked for: every idle read
/// timed out, and the worker reconnected and logged a warning every two seconds.)
#[tokio::test]
async fn an_idle_outbox_read_waits_its_whole_block_without_timing_out() {
    let config = crate::support::redis_config(&crate::support::unique_prefix(), 300);
    let store = callverify::store::Store::open(&config).await.unwrap();
    store.ensure_delivery_group().await.unwrap();
    let block = Duration::from_millis(900);
    let mut conn = store.blocking_connection(block).await.unwrap();
    let started = Instant::now();
    let events = store
        .read_new_events(&mut conn, "idle-reader", 10, block)
        .await
        .expect("an idle read is not an error");
    assert!(events.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "the read waited its block: {:?}",
        started.elapsed()
    );
}
