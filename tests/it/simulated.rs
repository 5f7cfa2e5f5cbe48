//! The "call me" flow end to end against the built-in carrier simulator: the production Twilio
//! client places the call, the simulator plays it against our signed webhooks, and each scenario
//! is checked by the verification's final status, the call transcript and the user's methods.

use std::time::Duration;

use callverify_simulator::{Behaviour, CallStatus, Transcript, WebhookKind};
use serde_json::{Value, json};

use crate::support::{PORTAL_KEY, TestServer};

/// Starts a registration call to `number` and waits for the verification to end and the call to
/// hang up; returns the final verification and the call's transcript.
async fn register_and_finish(server: &TestServer, user: &str, number: &str) -> (Value, Transcript) {
    let (status, body) = server.register(user, number).await;
    assert_eq!(status, 202, "{body}");
    finish(server, body["id"].as_str().unwrap(), number).await
}

async fn finish(server: &TestServer, id: &str, number: &str) -> (Value, Transcript) {
    let mut v = server.verification(id).await;
    for _ in 0..20 {
        if !matches!(
            v["status"].as_str(),
            Some("calling" | "ringing" | "answered")
        ) {
            break;
        }
        let (_, next) = server
            .get_json(
                PORTAL_KEY,
                &format!("/v1/tenants/contoso/verifications/{id}?wait=5"),
            )
            .await;
        v = next;
    }
    let simulator = server.simulator.as_ref().expect("simulated server");
    let without_extension = number.split(['x', 'X']).next().unwrap();
    let e164: String = without_extension
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    let call = simulator
        .calls_to(&e164)
        .pop()
        .expect("the simulator got the call");
    let transcript = simulator
        .wait_until_finished(&call.call_sid, Duration::from_secs(10))
        .await
        .expect("the call ends");
    (v, transcript)
}

fn said(t: &Transcript, fragment: &str) -> bool {
    t.said().iter().any(|s| s.contains(fragment))
}

#[tokio::test]
async fn a_callee_pressing_pound_registers_the_phone() {
    let server = TestServer::start_simulated("").await;
    let (v, t) = register_and_finish(&server, "amy", "+1 4255551234X12345").await;
    assert_eq!(v["status"], "approved");
    assert_eq!(
        t.to, "+14255551234",
        "the extension never reaches the carrier"
    );
    assert_eq!(t.pressed(), ["#"]);
    assert!(said(&t, "press the pound key"));
    assert!(said(&t, "verification is complete"));
    assert_eq!(t.status, CallStatus::Completed);
    let methods = server.methods("amy").await;
    assert_eq!(methods["default_method"], "voice_mobile");
    assert_eq!(methods["methods"][0]["phone_number"], "+14255551234");
}

#[tokio::test]
async fn every_scripted_number_ends_with_its_outcome() {
    let server = TestServer::start_simulated("").await;
    // (number ending, final status, reason, pressed keys, a sentence the callee heard)
    let cases = [
        ("+14255550100", "failed", Some("busy"), vec![], None),
        ("+14255550101", "failed", Some("no_answer"), vec![], None),
        (
            "+14255550102",
            "failed",
            Some("no_input"),
            vec![],
            Some("could not verify you"),
        ),
        (
            "+14255550103",
            "approved",
            None,
            vec!["5", "#"],
            Some("not valid"),
        ),
        (
            "+14255550104",
            "fraud_reported",
            None,
            vec!["0", "#"],
            Some("reported this call as fraud"),
        ),
        ("+14255550105", "failed", Some("hung_up"), vec![], None),
        (
            "+14255550106",
            "failed",
            Some("provider_failed"),
            vec![],
            None,
        ),
    ];
    for (i, (number, status, reason, keys, heard)) in cases.into_iter().enumerate() {
        let user = format!("user{i}");
        let (v, t) = register_and_finish(&server, &user, number).await;
        assert_eq!(v["status"], status, "{number}: {v}");
        assert_eq!(v["reason"].as_str(), reason, "{number}");
        assert_eq!(t.pressed(), keys, "{number}");
        if let Some(h) = heard {
            assert!(said(&t, h), "{number}: {:?}", t.said());
        }
        let registered = server.methods(&user).await["methods"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(registered, usize::from(status == "approved"), "{number}");
    }
}

#[tokio::test]
async fn a_scripted_digit_sequence_is_played_one_gather_at_a_time() {
    let server = TestServer::start_simulated("").await;
    let number = "+31612345678";
    let simulator = server.simulator.as_ref().unwrap();
    simulator.script(number, Behaviour::presses(["7", "", "#"]));
    let (v, t) = register_and_finish(&server, "bea", number).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(t.pressed(), ["7", "#"]);
    assert!(said(&t, "not valid") && said(&t, "did not receive a key"));
    // Three gathers (first, after 7, after silence): max_prompts = 3 allows it.
    assert_eq!(t.webhooks(WebhookKind::Gather).len(), 3);
}

#[tokio::test]
async fn every_webhook_is_answered_and_signed_calls_pass_the_check() {
    let server = TestServer::start_simulated("").await;
    let (_, t) = register_and_finish(&server, "cleo", "+14255550199").await;
    let answers: Vec<Option<u16>> = t
        .entries
        .iter()
        .filter_map(|e| match e {
            callverify_simulator::Entry::Webhook { status_code, .. } => Some(*status_code),
            _ => None,
        })
        .collect();
    assert!(answers.len() >= 5, "{answers:?}");
    assert!(
        answers.iter().all(|c| matches!(c, Some(200 | 204))),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_sign_in_call_through_the_simulator_approves_without_registering() {
    let server = TestServer::start_simulated("").await;
    let number = "+14255550177";
    register_and_finish(&server, "dina", number).await;
    let before = server.methods("dina").await;
    let (status, body) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/dina/verifications",
            json!({"purpose": "password_reset", "locale": "nl-NL"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (v, t) = finish(&server, body["id"].as_str().unwrap(), number).await;
    assert_eq!(v["status"], "approved");
    assert!(said(&t, "wachtwoord"), "{:?}", t.said());
    assert_eq!(server.methods("dina").await, before);
}
