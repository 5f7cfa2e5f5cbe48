//! The carrier simulator end to end: real HTTP on loopback between a Twilio-style client, the
//! simulator, and a tiny IVR application that checks every webhook signature.
//!
//! It lives in the server crate rather than in crates/simulator because the IVR checks the
//! simulator's signatures with the server's own code: two independent implementations of
//! Twilio's algorithm must agree.

#[path = "support/ivr_app.rs"]
mod ivr_app;

use std::time::Duration;

use axum::http::StatusCode;
use callverify_simulator::{
    APPLICATION_ERROR_SPEECH, Behaviour, CallStatus, Entry, HangupCause, WebhookKind,
};
use ivr_app::{ACCOUNT, FROM, Harness, TOKEN, digits, gather_paths};
use serde_json::{Value, json};

#[tokio::test]
async fn callee_presses_pound_and_is_verified() {
    let h = Harness::start().await;
    let created = h.place("+15551230099", "/ivr/voice", &[]).await;
    let sid = created["sid"].as_str().unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["direction"], "outbound-api");
    assert_eq!(created["api_version"], "2010-04-01");
    assert_eq!(created["account_sid"], ACCOUNT);
    assert_eq!(created["to"], "+15551230099");
    assert_eq!(
        created["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")
    );
    assert!(created["date_created"].as_str().unwrap().ends_with("+0000"));

    let t = h.finished(&created).await;
    assert_eq!(t.status, CallStatus::Completed);
    assert_eq!(
        t.statuses(),
        [
            CallStatus::Initiated,
            CallStatus::Ringing,
            CallStatus::InProgress,
            CallStatus::Completed
        ]
    );
    assert_eq!(t.pressed(), ["#"]);
    assert_eq!(digits(&t), ["#"]);
    // Relative `action="gather?step=prompt"` resolves against the document URL /ivr/voice.
    assert_eq!(gather_paths(&t), ["/ivr/gather?step=prompt"]);
    // The key was pressed during the long prompt: barge-in cuts it.
    assert!(
        matches!(&t.entries[..], [.., Entry::Said { interrupted: true, language, .. }, Entry::Pressed { .. }, _, _, _, _] if language == "en-US"),
        "{t}"
    );
    assert_eq!(t.said().last(), Some(&"Thank you, you are verified."));
    assert!(t.entries.contains(&Entry::HungUp {
        cause: HangupCause::HangupVerb
    }));
    assert!(t.duration_secs.unwrap() > 0);
    let answer = t.webhooks(WebhookKind::Answer);
    assert_eq!(answer[0].0["CallStatus"], "in-progress");
    assert_eq!(answer[0].0["AccountSid"], ACCOUNT);

    let fetched: Value = h
        .client
        .get(h.call_url(sid))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "completed");
    assert_eq!(fetched["duration"], t.duration_secs.unwrap().to_string());
    assert_eq!(h.sim.calls_to("+15551230099"), vec![t]);
}

#[tokio::test]
async fn wrong_key_replays_the_prompt_then_pound_verifies() {
    let h = Harness::start().await;
    let t = h.call("+15551230003").await;
    assert_eq!(t.pressed(), ["5", "#"]);
    assert_eq!(digits(&t), ["5", "#"]);
    assert!(t.said().contains(&"That key is not valid."));
    assert_eq!(t.webhooks(WebhookKind::Redirect).len(), 1);
    assert_eq!(t.said().last(), Some(&"Thank you, you are verified."));
}

#[tokio::test]
async fn fraud_report_is_zero_then_pound_at_the_next_gather() {
    let h = Harness::start().await;
    let t = h.call("+15551230004").await;
    assert_eq!(t.pressed(), ["0", "#"]);
    assert_eq!(digits(&t), ["0", "#"]);
    assert_eq!(
        gather_paths(&t),
        ["/ivr/gather?step=prompt", "/ivr/gather?step=fraud"]
    );
    assert_eq!(t.said().last(), Some(&"Fraud reported."));
}

#[tokio::test]
async fn silence_posts_empty_digits_when_action_on_empty_result() {
    let h = Harness::start().await;
    let t = h.call("+15551230002").await;
    assert!(t.entries.contains(&Entry::Silence));
    assert!(t.pressed().is_empty());
    assert_eq!(digits(&t), [""]);
    assert_eq!(
        t.said().last(),
        Some(&"We did not get your answer. Goodbye.")
    );
    assert_eq!(t.status, CallStatus::Completed);
}

#[tokio::test]
async fn busy_no_answer_and_failed_never_reach_the_application() {
    let h = Harness::start().await;
    for (to, status) in [
        ("+15551230000", CallStatus::Busy),
        ("+15551230001", CallStatus::NoAnswer),
        ("+15551230006", CallStatus::Failed),
    ] {
        let created = h.place(to, "/ivr/voice", &[("Timeout", "10".into())]).await;
        let t = h.finished(&created).await;
        assert_eq!(t.status, status, "{t}");
        assert_eq!(t.statuses().last(), Some(&status));
        assert_eq!(t.duration_secs, Some(0));
        assert!(t.webhooks(WebhookKind::Answer).is_empty());
    }
    assert!(h.app.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn callee_hangs_up_mid_prompt() {
    let h = Harness::start().await;
    let t = h.call("+15551230005").await;
    assert!(matches!(
        &t.entries[..],
        [
            ..,
            Entry::Said {
                interrupted: true,
                ..
            },
            Entry::HungUp {
                cause: HangupCause::Callee
            },
            Entry::Status {
                status: CallStatus::Completed
            }
        ]
    ));
    assert!(t.webhooks(WebhookKind::Gather).is_empty());
}

#[tokio::test]
async fn scripted_callee_overrides_the_number_table() {
    let h = Harness::start().await;
    h.sim
        .script("+15551230000", Behaviour::presses(["7", "0", "#"]));
    let t = h.call("+15551230000").await;
    assert_eq!(t.pressed(), ["7", "0", "#"]);
    assert_eq!(t.said().last(), Some(&"Fraud reported."));
}

#[tokio::test]
async fn cancel_while_ringing_ends_the_call_canceled() {
    let h = Harness::start().await;
    h.sim.script("+15551239999", Behaviour::no_answer());
    let created = h.place("+15551239999", "/ivr/voice", &[]).await;
    let sid = created["sid"].as_str().unwrap();
    for _ in 0..200 {
        if h.sim.transcript(sid).unwrap().status == CallStatus::Ringing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = h
        .post(&h.call_url(sid), &[("Status", "canceled".into())])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sid"], sid);
    let t = h.finished(&created).await;
    assert_eq!(
        t.statuses(),
        [
            CallStatus::Initiated,
            CallStatus::Ringing,
            CallStatus::Canceled
        ]
    );

    let (status, body) = h
        .post(&h.call_url("CA00000000000000000000000000000000"), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 20404);
}

#[tokio::test]
async fn status_completed_hangs_up_an_answered_call() {
    let h = Harness::start().await;
    let created = h.place("+15551239999", "/ivr/long", &[]).await;
    let sid = created["sid"].as_str().unwrap();
    for _ in 0..200 {
        if h.sim.transcript(sid).unwrap().status == CallStatus::InProgress {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.post(&h.call_url(sid), &[("Status", "completed".into())])
        .await;
    let t = h.finished(&created).await;
    assert_eq!(t.status, CallStatus::Completed);
    assert!(t.entries.contains(&Entry::HungUp {
        cause: HangupCause::Api
    }));
}

#[tokio::test]
async fn wrong_credentials_get_twilio_20003() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.calls_url())
        .basic_auth(ACCOUNT, Some("wrong"))
        .form(&[("To", "+15551230099")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
}

#[tokio::test]
async fn invalid_requests_get_twilio_error_json() {
    let h = Harness::start().await;
    let url = || ("Url", "http://127.0.0.1:9/x".to_owned());
    let (status, body) = h
        .post(&h.calls_url(), &[("From", FROM.into()), url()])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 21201, "message": "No 'To' number is specified", "more_info": "https://www.twilio.com/docs/errors/21201", "status": 400})
    );
    let form = [("To", "5551234567".into()), ("From", FROM.into()), url()];
    let (status, body) = h.post(&h.calls_url(), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21211);
    assert_eq!(
        body["message"],
        "The 'To' number 5551234567 is not a valid phone number."
    );
}

#[tokio::test]
async fn status_callbacks_follow_the_requested_events_in_sequence() {
    let h = Harness::start().await;
    let callback = format!("{}/status", h.app.base_url);
    let mut extra = vec![("StatusCallback", callback)];
    for event in ["initiated", "ringing", "answered", "completed"] {
        extra.push(("StatusCallbackEvent", event.into()));
    }
    let created = h.place("+15551230099", "/ivr/voice", &extra).await;
    let t = h.finished(&created).await;
    let callbacks = t.webhooks(WebhookKind::StatusCallback);
    let got: Vec<(&str, &str)> = callbacks
        .iter()
        .map(|(p, _)| (p["SequenceNumber"].as_str(), p["CallStatus"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("0", "initiated"),
            ("1", "ringing"),
            ("2", "in-progress"),
            ("3", "completed")
        ]
    );
    let last = callbacks[3].0;
    assert_eq!(last["CallbackSource"], "call-progress-events");
    assert_eq!(last["CallDuration"], t.duration_secs.unwrap().to_string());
    assert!(last["Timestamp"].ends_with("+0000"));
    let received = h.app.seen.lock().unwrap().clone();
    let received = received.iter().filter(|s| s.path_and_query == "/status");
    assert_eq!(received.count(), 4);

    // Without StatusCallbackEvent only `completed` is sent.
    let callback = format!("{}/status", h.app.base_url);
    let created = h
        .place(
            "+15551230000",
            "/ivr/voice",
            &[("StatusCallback", callback)],
        )
        .await;
    let t = h.finished(&created).await;
    let only: Vec<&str> = t
        .webhooks(WebhookKind::StatusCallback)
        .iter()
        .map(|(p, _)| p["CallStatus"].as_str())
        .collect();
    assert_eq!(only, ["busy"]);
}

#[tokio::test]
async fn get_webhooks_are_signed_over_the_query_string() {
    let h = Harness::start().await;
    let created = h
        .place("+15551230099", "/ivr/voice", &[("Method", "GET".into())])
        .await;
    let t = h.finished(&created).await;
    assert_eq!(t.pressed(), ["#"]);
    let seen = h.app.seen.lock().unwrap();
    assert!(seen[0].path_and_query.starts_with("/ivr/voice?CallSid=CA"));
    assert_eq!(seen[0].params["CallStatus"], "in-progress");
    assert!(seen.iter().all(|s| s.signature_ok));
}

#[tokio::test]
async fn application_errors_end_the_call_like_twilio() {
    let h = Harness::start().await;
    for (path, code) in [("/ivr/broken", 11200), ("/ivr/not-xml", 12100)] {
        let created = h.place("+15551230099", path, &[]).await;
        let t = h.finished(&created).await;
        assert!(
            t.entries
                .iter()
                .any(|e| matches!(e, Entry::ApplicationError { code: c, .. } if *c == code)),
            "{t}"
        );
        assert_eq!(t.said(), [APPLICATION_ERROR_SPEECH]);
        assert!(t.entries.contains(&Entry::HungUp {
            cause: HangupCause::ApplicationError
        }));
        assert_eq!(t.status, CallStatus::Completed);
    }
}

#[tokio::test]
async fn shutdown_stops_the_api() {
    let h = Harness::start().await;
    let calls_url = h.calls_url();
    h.sim.shutdown().await.unwrap();
    let refused = h.client.post(calls_url).send().await;
    assert!(refused.is_err_and(|e| e.is_connect()));
}
