//! No lost outcome: a private redis-server is paused (SIGSTOP) while a `#` or a status callback
//! is applied. The transition's answer is unknown, so callverify asks again until Redis answers
//! (within the webhook's time) and tells the caller what happened; the end's portal events are
//! owed from the same atomic step as the end, so they are sent even when the webhook gave up —
//! once per event id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use serde_json::Value;

use crate::private_redis::PrivateRedis;
use crate::support::stub_twilio::{StubCall, answered_registration, gather_action};
use crate::support::{Options, StubTwilio, TestServer};

/// The portal: records each event's `webhook-id` and `type`.
#[derive(Clone, Default)]
struct Portal {
    got: Arc<Mutex<Vec<(String, String)>>>,
}

impl Portal {
    async fn start(&self) -> String {
        let got = self.got.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let event: Value = serde_json::from_slice(&body).unwrap();
                let type_ = event["type"].as_str().unwrap().to_owned();
                got.lock().unwrap().push((id, type_));
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Waits (up to 40 s) until events of every type in `types` arrived; returns the distinct
    /// (id, type) pairs received.
    async fn wait_for(&self, types: &[&str]) -> Vec<(String, String)> {
        let since = Instant::now();
        loop {
            let mut got = self.got.lock().unwrap().clone();
            if types.iter().all(|t| got.iter().any(|(_, g)| g == t)) {
                got.sort();
                got.dedup();
                return got;
            }
            assert!(
                since.elapsed() < Duration::from_secs(40),
                "events {types:?} never came: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn server(redis: &PrivateRedis, stub: &StubTwilio, portal: &str) -> TestServer {
    let contoso = format!(
        "events_url = \"{portal}\"\nevents_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""
    );
    let url = redis.url.clone();
    TestServer::start_tweaked(
        &stub.base,
        Options {
            extra: "[verification]\nreconcile_interval_secs = 2\n",
            contoso: &contoso,
            ..Options::default()
        },
        move |config| {
            config.redis.mode = callverify::config::RedisMode::Standalone;
            config.redis.url = callverify::config::Secret::new(url);
            config.redis.timeout_ms = 1000;
        },
    )
    .await
}

/// Presses `#` while Redis is paused for `stall`; returns the TwiML the caller got.
async fn press_during_stall(
    redis: &PrivateRedis,
    stub: &StubTwilio,
    call: &StubCall,
    twiml: &str,
    stall: Duration,
) -> String {
    let action = gather_action(twiml);
    redis.pause();
    let pressed = stub.press(call, &action, "#");
    let ((status, twiml), ()) = tokio::join!(pressed, async {
        tokio::time::sleep(stall).await;
        redis.resume();
    });
    assert_eq!(status, 200, "{twiml}");
    twiml
}

/// Exactly one event of each type (the same id when queued twice).
fn once_each(events: &[(String, String)], types: &[&str]) {
    for t in types {
        let n = events.iter().filter(|(_, g)| g == t).count();
        assert_eq!(n, 1, "{t}: {events:?}");
    }
}

#[tokio::test]
async fn a_3_s_stall_during_the_keypress_still_approves_tells_the_caller_and_sends_the_events() {
    let (redis, stub, portal) = (
        PrivateRedis::start().await,
        StubTwilio::start().await,
        Portal::default(),
    );
    let server = server(&redis, &stub, &portal.start().await).await;
    let (id, call, twiml) = answered_registration(&stub, &server, "ada", "+14255550180").await;
    let said = press_during_stall(&redis, &stub, &call, &twiml, Duration::from_secs(3)).await;
    assert!(said.contains("verification is complete"), "{said}");
    assert_eq!(server.verification(&id).await["status"], "approved");
    let types = ["verification.approved", "method.registered"];
    once_each(&portal.wait_for(&types).await, &types);
}

#[tokio::test]
async fn a_10_s_stall_during_the_keypress_loses_no_event() {
    let (redis, stub, portal) = (
        PrivateRedis::start().await,
        StubTwilio::start().await,
        Portal::default(),
    );
    let server = server(&redis, &stub, &portal.start().await).await;
    let (id, call, twiml) = answered_registration(&stub, &server, "bob", "+14255550181").await;
    // The webhook's time runs out before Redis answers: the caller hears the apology; the
    // `#` it carried is applied when Redis resumes.
    let said = press_during_stall(&redis, &stub, &call, &twiml, Duration::from_secs(10)).await;
    assert!(!said.contains("verification is complete"), "{said}");
    let types = ["verification.approved", "method.registered"];
    once_each(&portal.wait_for(&types).await, &types);
    assert_eq!(server.verification(&id).await["status"], "approved");
    let methods = server.methods("bob").await;
    assert_eq!(methods["methods"].as_array().unwrap().len(), 1, "{methods}");
    assert_eq!(methods["default_method"], "voice_mobile", "{methods}");
}

#[tokio::test]
async fn a_3_s_stall_during_a_status_callback_records_it_and_sends_the_event() {
    let (redis, stub, portal) = (
        PrivateRedis::start().await,
        StubTwilio::start().await,
        Portal::default(),
    );
    let server = server(&redis, &stub, &portal.start().await).await;
    let (status, body) = server.register("cy", "+14255550182").await;
    assert_eq!(status, 202, "{body}");
    let call = stub.last_call();
    redis.pause();
    let busy = stub.status(&call, "busy", "1");
    let (status, ()) = tokio::join!(busy, async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.resume();
    });
    assert_eq!(status, 204);
    let v = server.verification(body["id"].as_str().unwrap()).await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("failed"), Some("busy"))
    );
    once_each(
        &portal.wait_for(&["verification.failed"]).await,
        &["verification.failed"],
    );
}
