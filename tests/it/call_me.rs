//! The "call me" flow against a stub Twilio: every webhook signed and sent over real HTTP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::stub_twilio::{
    Mode, answered_registration, gather_action, setup, twilio_signature,
};
use crate::support::{AUTH_TOKEN, OTHER_KEY, PORTAL_KEY, StubTwilio, TestServer};

#[tokio::test]
async fn pressing_pound_approves_and_registers_the_phone_as_default() {
    let (stub, server) = setup().await;
    let (id, call, twiml) =
        answered_registration(&stub, &server, "alice", "+1 425 555 1234 x12345").await;

    // The provider was asked for exactly the call Twilio expects.
    let req = &call.request;
    assert_eq!(
        req.field("To"),
        "+14255551234",
        "extension stripped before dialling"
    );
    assert_eq!(req.field("From"), "+15005550006");
    assert_eq!(req.field("Method"), "POST");
    assert_eq!(req.field("Timeout"), "30");
    assert_eq!(req.field("StatusCallbackMethod"), "POST");
    assert_eq!(
        req.fields("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert!(req.field("Url").starts_with(&server.base));
    assert!(req.field("Url").contains(&id));
    let basic = req
        .authorization
        .strip_prefix("Basic ")
        .expect("Basic auth");
    let credentials =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, basic).unwrap();
    assert_eq!(
        String::from_utf8(credentials).unwrap(),
        format!("{}:{AUTH_TOKEN}", crate::support::ACCOUNT_SID)
    );
    assert_eq!(
        req.field("StatusCallback"),
        req.field("Url").replace("/voice", "/status")
    );

    assert!(twiml.contains("finishOnKey=\"\""), "{twiml}");
    assert!(twiml.contains("press the pound key"));
    assert_eq!(server.verification(&id).await["status"], "answered");

    let (status, closing) = stub.press(&call, &gather_action(&twiml), "#").await;
    assert_eq!(status, 200);
    assert!(closing.contains("<Hangup/>"));
    assert!(closing.contains("verification is complete"));
    assert_eq!(stub.status(&call, "completed", "3").await, 204);

    let v = server.verification(&id).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(v["purpose"], "registration");
    assert_eq!(v["phone_number"], "+1********34");
    assert!(v.get("reason").is_none());
    let methods = server.methods("alice").await;
    assert_eq!(methods["default_method"], "voice_mobile");
    assert_eq!(methods["methods"].as_array().unwrap().len(), 1);
    let m = &methods["methods"][0];
    assert_eq!(m["kind"], "phone");
    assert_eq!(m["phone_number"], "+14255551234");
    assert_eq!(m["phone_type"], "mobile");
    assert_eq!(m["usable_for"], json!(["mfa", "sspr"]));
}

#[tokio::test]
async fn a_wrong_key_reprompts_and_pound_then_approves() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "bob", "+14255550123").await;
    let (status, again) = stub.press(&call, &gather_action(&twiml), "5").await;
    assert_eq!(status, 200);
    assert!(again.contains("not valid"), "{again}");
    assert!(again.contains("<Gather"));
    assert_eq!(server.verification(&id).await["status"], "answered");
    let (_, closing) = stub.press(&call, &gather_action(&again), "#").await;
    assert!(closing.contains("<Hangup/>"));
    assert_eq!(server.verification(&id).await["status"], "approved");
}

#[tokio::test]
async fn silence_reprompts_then_fails_with_no_input() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "carol", "+14255550124").await;
    let mut action = gather_action(&twiml);
    for _ in 0..2 {
        let (_, again) = stub.press(&call, &action, "").await;
        assert!(again.contains("did not receive a key"), "{again}");
        action = gather_action(&again);
    }
    let (_, last) = stub.press(&call, &action, "").await;
    assert!(
        last.contains("<Hangup/>") && !last.contains("<Gather"),
        "{last}"
    );
    let v = server.verification(&id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(v["reason"], "no_input");
    assert_eq!(server.methods("carol").await["methods"], json!([]));
    // The provider's "completed" afterwards changes nothing.
    assert_eq!(stub.status(&call, "completed", "4").await, 204);
    assert_eq!(server.verification(&id).await["reason"], "no_input");
}

#[tokio::test]
async fn zero_then_pound_reports_fraud_and_registers_nothing() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "dave", "+14255550125").await;
    let (_, confirm) = stub.press(&call, &gather_action(&twiml), "0").await;
    assert!(confirm.contains("report this call as fraud"), "{confirm}");
    let (_, closing) = stub.press(&call, &gather_action(&confirm), "#").await;
    assert!(closing.contains("reported this call as fraud"));
    assert_eq!(server.verification(&id).await["status"], "fraud_reported");
    assert_eq!(server.methods("dave").await["default_method"], Value::Null);
}

#[tokio::test]
async fn busy_no_answer_and_failed_calls_end_with_their_reason() {
    let (stub, server) = setup().await;
    for (i, (call_status, reason)) in [
        ("busy", "busy"),
        ("no-answer", "no_answer"),
        ("failed", "provider_failed"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, body) = server
            .register(&format!("erin{i}"), &format!("+1425555014{i}"))
            .await;
        let call = stub.last_call();
        assert_eq!(stub.status(&call, "initiated", "0").await, 204);
        assert_eq!(stub.status(&call, call_status, "1").await, 204);
        let v = server.verification(body["id"].as_str().unwrap()).await;
        assert_eq!(v["status"], "failed");
        assert_eq!(v["reason"], reason);
    }
}

#[tokio::test]
async fn provider_refusals_fail_the_verification_without_a_500() {
    let (stub, server) = setup().await;
    stub.set_mode(Mode::Rejected400);
    let (status, v) = server.register("frank", "+14255550127").await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["reason"], "invalid_number");
    assert!(v["provider_error"].as_str().unwrap().contains("21211"));

    // A 5xx: the call may have been placed, so the verification stays open.
    stub.set_mode(Mode::Failed500);
    let (status, v) = server.register("frank2", "+14255550128").await;
    assert_eq!(status, 202);
    assert_eq!(v["status"], "calling", "{v}");
    assert!(v.get("reason").is_none());
    assert_eq!(
        server.verification(v["id"].as_str().unwrap()).await["status"],
        "calling"
    );
}

#[tokio::test]
async fn an_unreachable_provider_fails_the_verification() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start(&format!("http://127.0.0.1:{port}"), "").await;
    let (status, v) = server.register("gina", "+14255550128").await;
    assert_eq!(status, 202);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["reason"], "provider_failed");
}

#[tokio::test]
async fn forged_or_missing_signatures_get_403_and_change_nothing() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "hank", "+14255550129").await;
    let action = gather_action(&twiml);
    let mut params = StubTwilio::call_params(&call, "in-progress");
    params.push(("Digits", "#"));

    let (status, _, _) = stub.signed_post(&action, &params, "not-the-token").await;
    assert_eq!(status, 403);
    let (status, _, _) = stub.post_with_signature(&action, &params, None).await;
    assert_eq!(status, 403);
    // Signed for other parameters than those sent.
    let sig = twilio_signature(AUTH_TOKEN, &action, &[("Digits", "5")]);
    let (status, _, _) = stub.post_with_signature(&action, &params, Some(&sig)).await;
    assert_eq!(status, 403);

    assert_eq!(server.verification(&id).await["status"], "answered");
    assert_eq!(server.methods("hank").await["methods"], json!([]));
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_are_harmless() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "ivy", "+14255550130").await;
    // A late "ringing" after the answer does not move the state back.
    assert_eq!(stub.status(&call, "ringing", "1").await, 204);
    assert_eq!(server.verification(&id).await["status"], "answered");
    let action = gather_action(&twiml);
    let (_, first) = stub.press(&call, &action, "#").await;
    let created_at = server.methods("ivy").await["methods"][0]["created_at"].clone();
    // A retried keypress (it hears its own "thank you"), then a "completed" and a stray wrong
    // key: nothing changes.
    let (_, second) = stub.press(&call, &action, "#").await;
    assert!(first.contains("complete") && second.contains("complete"));
    stub.status(&call, "completed", "3").await;
    stub.press(&call, &action, "5").await;
    let v = server.verification(&id).await;
    assert_eq!(v["status"], "approved");
    let methods = server.methods("ivy").await;
    assert_eq!(methods["methods"].as_array().unwrap().len(), 1);
    assert_eq!(methods["methods"][0]["created_at"], created_at);
}

#[tokio::test]
async fn concurrent_duplicate_keypresses_register_exactly_once() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "jack", "+14255550131").await;
    let action = gather_action(&twiml);
    let presses = (0..8).map(|_| stub.press(&call, &action, "#"));
    let answers = futures_util::future::join_all(presses).await;
    // Each delivery hears the verification's own closing; one registers the phone.
    assert!(answers.iter().all(|(_, b)| b.contains("complete")));
    assert_eq!(server.verification(&id).await["status"], "approved");
    assert_eq!(
        server.methods("jack").await["methods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_webhook_with_another_calls_sid_is_refused() {
    let (stub, server) = setup().await;
    let (id_a, _call_a, twiml_a) =
        answered_registration(&stub, &server, "kate", "+14255550132").await;
    let (_id_b, call_b, _) = answered_registration(&stub, &server, "liam", "+14255550133").await;
    // Call B's keypress posted to verification A's gather URL.
    let (status, _) = stub.press(&call_b, &gather_action(&twiml_a), "#").await;
    assert_eq!(status, 403);
    assert_eq!(server.verification(&id_a).await["status"], "answered");
    assert_eq!(server.methods("kate").await["methods"], json!([]));
}

#[tokio::test]
async fn long_poll_wakes_up_on_a_change() {
    let (stub, server) = setup().await;
    let (_, body) = server.register("mia", "+14255550134").await;
    let id = body["id"].as_str().unwrap().to_owned();
    let call = stub.last_call();
    let path = format!("/v1/tenants/contoso/verifications/{id}?wait=25");
    let started = Instant::now();
    let poll = server.get_json(PORTAL_KEY, &path);
    let change = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stub.status(&call, "ringing", "1").await
    };
    let ((status, v), _) = tokio::join!(poll, change);
    assert_eq!(status, 200);
    assert_eq!(v["status"], "ringing");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered on the change, not at the deadline"
    );
    // A terminal verification answers at once; wait beyond the cap is refused.
    let (status, _) = server
        .get_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/verifications/{id}?wait=31"),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn invalid_numbers_are_refused_with_422_and_nothing_is_dialled() {
    let (stub, server) = setup().await;
    for number in ["+1 425 CALL ME", "+1 425", "", "12345", "+44 909 879 0000"] {
        let (status, body) = server.register("noah", number).await;
        assert_eq!(status, 422, "{number}: {body}");
        let t = body["type"].as_str().unwrap();
        assert!(
            t.ends_with("/invalid-phone-number") || t.ends_with("/number-type-blocked"),
            "{number}: {t}"
        );
    }
    let (status, body) = server.register("noah", "+44 909 879 0000").await;
    assert_eq!(
        (status, body["type"].as_str().unwrap()),
        (422, "https://callverify.dev/problems/number-type-blocked")
    );
    assert!(stub.calls().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    let (stub, server) = setup().await;
    let path = "/v1/tenants/contoso/users/olga/verifications";
    let (status, _) = server
        .post_json(
            PORTAL_KEY,
            path,
            json!({"purpose": "registration", "phone_number": "+14255551234", "extra": 1}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = server
        .post_json(
            PORTAL_KEY,
            path,
            json!({"purpose": "teleport", "phone_number": "+14255551234"}),
        )
        .await;
    assert_eq!(status, 422);
    let r = server
        .http
        .post(server.url(path))
        .bearer_auth(PORTAL_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = crate::support::read(r).await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
    let (status, _) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/bad%20user/verifications",
            json!({"purpose": "registration", "phone_number": "+14255551234"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(stub.calls().is_empty());
}

#[tokio::test]
async fn tenants_are_isolated() {
    let (stub, server) = setup().await;
    let (_, body) = server.register("pia", "+14255550135").await;
    let id = body["id"].as_str().unwrap();
    let _ = stub;
    // No key, an unknown key, another tenant's key.
    let r = server
        .http
        .get(server.url(&format!("/v1/tenants/contoso/verifications/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(crate::support::read(r).await.0, 401);
    let (status, _) = server
        .get_json("nope", &format!("/v1/tenants/contoso/verifications/{id}"))
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .get_json(
            OTHER_KEY,
            &format!("/v1/tenants/contoso/verifications/{id}"),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .get_json(OTHER_KEY, "/v1/tenants/contoso/users/pia/methods")
        .await;
    assert_eq!(status, 403);
    // Through its own tenant's path, the other tenant cannot see the verification.
    let (status, _) = server
        .get_json(
            OTHER_KEY,
            &format!("/v1/tenants/fabrikam/verifications/{id}"),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_sign_in_call_goes_to_the_registered_phone_and_registers_nothing() {
    let stub = StubTwilio::start().await;
    // The sign-in call follows the registration call to the same number at once.
    let relaxed = "[abuse.limits]\nnumber_spacing = { max = 0, window_secs = 30 }";
    let server = TestServer::start(&stub.base, relaxed).await;
    let (_, call, twiml) = answered_registration(&stub, &server, "quinn", "+14255550136").await;
    stub.press(&call, &gather_action(&twiml), "#").await;
    let before = server.methods("quinn").await;

    let (status, v) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/quinn/verifications",
            json!({"purpose": "sign_in", "locale": "nl-NL"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["purpose"], "sign_in");
    assert_eq!(v["locale"], "nl-NL");
    let call = stub.last_call();
    assert_eq!(call.request.field("To"), "+14255550136");
    let (_, twiml) = stub.answer(&call).await;
    assert!(twiml.contains("language=\"nl-NL\""), "{twiml}");
    assert!(twiml.contains("hekje"));
    stub.press(&call, &gather_action(&twiml), "#").await;
    assert_eq!(
        server.verification(v["id"].as_str().unwrap()).await["status"],
        "approved"
    );
    assert_eq!(server.methods("quinn").await, before);

    // An unknown method id is 404; a phone_number is not accepted for sign-in.
    let (status, _) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/quinn/verifications",
            json!({"purpose": "sign_in", "method_id": "b6332ec1-7057-4abe-9331-3d72feddfe41"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/quinn/verifications",
            json!({"purpose": "password_reset", "phone_number": "+14255550136"}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_sign_in_for_a_user_without_a_phone_is_422() {
    let (stub, server) = setup().await;
    let (status, body) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/rita/verifications",
            json!({"purpose": "sign_in"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["type"],
        "https://callverify.dev/problems/no-phone-method"
    );
    assert!(stub.calls().is_empty());
}

#[tokio::test]
async fn webhooks_for_unknown_verifications_hang_up_politely() {
    let (stub, server) = setup().await;
    let url =
        server.url("/telephony/twilio/00000000000000000123456789abcdef0123456789abcdef/voice");
    let params = [("CallSid", "CA1"), ("CallStatus", "in-progress")];
    let (status, ct, body) = stub.signed_post(&url, &params, AUTH_TOKEN).await;
    assert_eq!((status, ct.as_str()), (200, "text/xml"));
    assert!(body.contains("<Hangup/>"));
}

#[tokio::test]
async fn state_lives_under_the_prefix_hash_tagged_per_user_with_ttls_where_due() {
    let (stub, server) = setup().await;
    let (id, call, twiml) = answered_registration(&stub, &server, "sam", "+14255550137").await;
    stub.press(&call, &gather_action(&twiml), "#").await;
    let keys = crate::support::keys_under(&server.prefix).await;
    let mut conn = crate::support::redis().await;
    let vkey = keys
        .iter()
        .find(|k| k.ends_with(&id))
        .expect("verification key");
    let mkey = keys
        .iter()
        .find(|k| k.ends_with(":methods"))
        .expect("methods key");
    let tag = &vkey[vkey.find('{').unwrap()..=vkey.find('}').unwrap()];
    // Tenant-wide rate-limit keys, each provider account's pacing slot and the event outbox have slots
    // of their own.
    assert!(
        keys.iter()
            .filter(|k| !["{t:contoso}", "{provider:", "{outbox}", "{recon}"]
                .iter()
                .any(|tag| k.contains(tag)))
            .all(|k| k.contains(tag)),
        "one hash slot per user: {keys:?}"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(vkey)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 600,
        "kept readable past its expiry, then dropped: {ttl}"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(mkey)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "methods do not expire");
    let bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(vkey)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(bytes < 1024, "a verification takes {bytes} bytes");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let (_stub, server) = setup().await;
    let r = server
        .http
        .patch(server.url("/v1/tenants/contoso/users/amy/methods"))
        .bearer_auth(PORTAL_KEY)
        .send()
        .await
        .unwrap();
    let (status, body) = crate::support::read(r).await;
    assert_eq!(status, 405);
    assert_eq!(
        body["type"],
        "https://callverify.dev/problems/method-not-allowed"
    );
    let (status, body) = server.get_json(PORTAL_KEY, "/v1/nothing/here").await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "https://callverify.dev/problems/not-found");
}
