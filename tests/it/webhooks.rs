//! Provider webhooks at the edge: provider-named routes, and signed requests that must still be
//! refused (no call id, a body that is not a form, a fraud confirmation nobody asked for).
//! Every refused request is checked to have changed nothing.

use serde_json::json;

use crate::support::stub_twilio::{answered_registration, gather_action, setup, twilio_signature};
use crate::support::{AUTH_TOKEN, StubTwilio};

#[tokio::test]
async fn webhook_urls_name_the_provider_account_and_an_unknown_account_is_404() {
    let (stub, server) = setup().await;
    let (status, body) = server.register("paula", "+14255550140").await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let call = stub.last_call();
    // The single-provider configuration's account is named `twilio`: the provider-named URL is
    // the one calls placed before it used, so calls in flight keep working.
    let voice = call.request.field("Url");
    assert_eq!(voice, server.url(&format!("/telephony/twilio/{id}/voice")));
    assert_eq!(
        call.request.field("StatusCallback"),
        server.url(&format!("/telephony/twilio/{id}/status"))
    );

    let other = server.url(&format!("/telephony/no-such-account/{id}/voice"));
    let params = StubTwilio::call_params(&call, "in-progress");
    let (status, ct, _) = stub.signed_post(&other, &params, AUTH_TOKEN).await;
    assert_eq!((status, ct.as_str()), (404, "application/problem+json"));
    assert_eq!(server.verification(id).await["status"], "calling");

    let (status, twiml) = stub.answer(&call).await;
    assert_eq!(status, 200);
    assert!(
        gather_action(&twiml)
            .starts_with(&server.url(&format!("/telephony/twilio/{id}/gather?step=prompt")))
    );
}

#[tokio::test]
async fn a_signed_webhook_without_a_call_id_is_refused_and_changes_nothing() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "quinn", "+14255550141").await;
    let action = gather_action(&twiml);
    for call_sid in [None, Some("")] {
        let mut params = vec![("Digits", "#"), ("CallStatus", "in-progress")];
        if let Some(sid) = call_sid {
            params.push(("CallSid", sid));
        }
        let (status, _, _) = stub.signed_post(&action, &params, AUTH_TOKEN).await;
        assert_eq!(status, 403, "CallSid {call_sid:?}");
        let busy = [("CallStatus", "busy")];
        let (status, _, _) = stub
            .signed_post(call.request.field("StatusCallback"), &busy, AUTH_TOKEN)
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(server.verification(&id).await["status"], "answered");
    assert_eq!(server.methods("quinn").await["methods"], json!([]));

    // A voice webhook without a call id does not answer a verification still calling.
    let (status, body) = server.register("rita", "+14255550142").await;
    assert_eq!(status, 202);
    let voice = stub.last_call().request.field("Url").to_owned();
    let (status, _, _) = stub
        .signed_post(&voice, &[("CallStatus", "in-progress")], AUTH_TOKEN)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        server.verification(body["id"].as_str().unwrap()).await["status"],
        "calling"
    );
}

#[tokio::test]
async fn a_webhook_body_that_is_not_a_form_is_415_and_changes_nothing() {
    let (stub, server) = setup().await;
    let (id, _call, twiml) = answered_registration(&stub, &server, "sam", "+14255550143").await;
    let action = gather_action(&twiml);
    let http = reqwest::Client::new();
    for body in ["[]", "{}", r##"{"CallSid":"x","Digits":"#"}"##] {
        let r = http
            .post(&action)
            .header("content-type", "application/json")
            .header(
                "X-Twilio-Signature",
                twilio_signature(AUTH_TOKEN, &action, &[]),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415, "{body}");
    }
    assert_eq!(server.verification(&id).await["status"], "answered");
    assert_eq!(server.methods("sam").await["methods"], json!([]));
}

#[tokio::test]
async fn a_fraud_confirmation_counts_only_after_zero_was_pressed() {
    let (stub, server) = setup().await;
    // Still calling: a signed "confirm fraud" with # reports nothing and blocks nobody.
    let (status, body) = server.register("tina", "+14255550144").await;
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap().to_owned();
    let call = stub.last_call();
    let fraud = server.url(&format!("/telephony/twilio/{id}/gather?step=fraud"));
    let (status, twiml) = stub.press(&call, &fraud, "#").await;
    assert_eq!(status, 200);
    assert!(!twiml.contains("reported"), "{twiml}");
    assert_ne!(server.verification(&id).await["status"], "fraud_reported");

    // Answered, no 0 pressed: the same request still reports nothing.
    let (status, twiml) = stub.answer(&call).await;
    assert_eq!(status, 200);
    let (status, _) = stub.press(&call, &fraud, "#").await;
    assert_eq!(status, 200);
    assert_eq!(server.verification(&id).await["status"], "answered");

    // 0, then # at the confirmation it asked for: reported.
    let (status, confirm) = stub.press(&call, &gather_action(&twiml), "0").await;
    assert_eq!(status, 200);
    let (status, _) = stub.press(&call, &gather_action(&confirm), "#").await;
    assert_eq!(status, 200);
    assert_eq!(server.verification(&id).await["status"], "fraud_reported");
}

#[tokio::test]
async fn bad_bytes_and_huge_segments_in_webhook_urls_are_never_a_server_error() {
    let (stub, server) = setup().await;
    let long = "a".repeat(10 * 1024);
    let bad_values = ["%FF", "a%C3", "%C3", "%00", "a%00b", long.as_str()];
    let params = [
        ("CallSid", "CA0123"),
        ("CallStatus", "in-progress"),
        ("Digits", "#"),
    ];
    for kind in ["voice", "gather", "status"] {
        for bad in bad_values {
            // A bad account name: no such account (404 problem), whatever the signature.
            let url = server.url(&format!("/telephony/{bad}/{}/{kind}", "a".repeat(48)));
            let (status, ct, _) = stub.signed_post(&url, &params, AUTH_TOKEN).await;
            assert_eq!(
                (status, ct.as_str()),
                (404, "application/problem+json"),
                "{kind}"
            );
            // A bad verification id, correctly signed: the caller is told goodbye (voice,
            // gather) or the callback is acknowledged (status); nothing exists to change.
            let url = server.url(&format!("/telephony/twilio/{bad}/{kind}"));
            let (status, _, body) = stub.signed_post(&url, &params, AUTH_TOKEN).await;
            match kind {
                "status" => assert_eq!(status, 204),
                _ => {
                    assert_eq!(status, 200);
                    assert!(body.contains("<Hangup/>"), "{body}");
                }
            }
        }
    }
}
