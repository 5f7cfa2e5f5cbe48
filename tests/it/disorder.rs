//! A disorderly phone network, one test per case: races between a
//! keypress and the hang-up, lost final callbacks, unknown and classified provider errors,
//! failures before dialling, repeated and duplicated webhooks, API-key credentials, and the
//! bounds on every call. Everything goes over real, signed HTTP against the stub provider.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::stub_twilio::{Mode, StubCall, answered_registration, gather_action};
use crate::support::{AUTH_TOKEN, Options, StubTwilio, TestServer};

/// A short grace and a fast reconciliation, so the tests do not wait out the defaults.
const FAST: &str = "[verification]\nhangup_grace_ms = 300\nreconcile_interval_secs = 1\n";

async fn server(extra: &str) -> (StubTwilio, TestServer) {
    tuned("", "", extra).await
}

/// With keys added to `[provider]` and `[verification]` (each table appears once in TOML).
async fn tuned(provider: &str, verification: &str, extra: &str) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let extra = format!("{FAST}{verification}\n{extra}");
    let options = Options {
        extra: &extra,
        provider,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    (stub, server)
}

/// Polls the verification until `done` holds (the issue's own bound: 30 s), returning it.
async fn wait_for(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = server.verification(id).await;
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(v: &Value) -> bool {
    !matches!(
        v["status"].as_str(),
        Some("calling" | "ringing" | "answered")
    )
}

async fn method_count(server: &TestServer, user: &str) -> usize {
    server.methods(user).await["methods"]
        .as_array()
        .unwrap()
        .len()
}

async fn zcard(key: &str) -> u64 {
    let mut conn = crate::support::redis().await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn metrics(server: &TestServer) -> String {
    let r = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

// --- 1. Pressing # and hanging up at once ---

#[tokio::test]
async fn pound_then_hang_up_approves_whichever_arrives_first() {
    let (stub, server) = server("").await;
    // `completed` applied before the keypress, then the keypress, then both at once (25 each).
    for (user, number) in [("hh1", "+14255550301"), ("hh2", "+14255550302")] {
        let (id, call, twiml) = answered_registration(&stub, &server, user, number).await;
        let action = gather_action(&twiml);
        if user == "hh1" {
            assert_eq!(stub.status(&call, "completed", "4").await, 204);
            let (_, closing) = stub.press(&call, &action, "#").await;
            assert!(closing.contains("verification is complete"), "{closing}");
        } else {
            let presses = (0..25).map(|_| stub.press(&call, &action, "#"));
            let hangups = (0..25).map(|_| stub.status(&call, "completed", "4"));
            let (_, _) = tokio::join!(
                futures_util::future::join_all(presses),
                futures_util::future::join_all(hangups)
            );
        }
        let v = wait_for(&server, &id, ended).await;
        assert_eq!(v["status"], "approved", "{v}");
        assert_eq!(method_count(&server, user).await, 1);
    }
    // Without a keypress the hang-up ends the verification `hung_up` once the grace is over.
    let (id, call, _) = answered_registration(&stub, &server, "hh3", "+14255550303").await;
    assert_eq!(stub.status(&call, "completed", "4").await, 204);
    let v = wait_for(&server, &id, ended).await;
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("hung_up"))
    );
}

// --- 2. A lost final callback ---

#[tokio::test]
async fn a_lost_final_callback_is_reconciled_from_the_providers_record_even_after_a_restart() {
    let stub = StubTwilio::start().await;
    let prefix = crate::support::unique_prefix();
    let options = |prefix: &str| Options {
        extra: FAST,
        prefix: Some(prefix.to_owned()),
        ..Options::default()
    };
    let first = TestServer::start_with(&stub.base, options(&prefix)).await;
    let (id, call, _) = answered_registration(&stub, &first, "lost", "+14255550310").await;
    // The instance stops; the call ends meanwhile and its `completed` is never delivered.
    first.stop().await;
    stub.set_call_status(&call.request.sid, "completed");
    let second = TestServer::start_with(&stub.base, options(&prefix)).await;
    let v = wait_for(&second, &id, ended).await;
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("hung_up")),
        "{v}"
    );
    assert!(stub.fetches() >= 1, "the provider's record was read");
    // The user is not locked out: the live slot is free again.
    let (status, body) = second.register("lost", "+14255550311").await;
    assert_eq!(status, 202, "{body}");
    assert!(
        metrics(&second)
            .await
            .contains("callverify_reconciliations_total")
    );
}

// --- 3. "We don't know" is not "nothing was dialled" ---

#[tokio::test]
async fn an_unknown_placement_outcome_stays_open_refunds_nothing_and_binds_the_first_call() {
    let (stub, server) = tuned(
        "",
        "unknown_outcome_margin_secs = 6",
        "[abuse.limits]\nuser = { max = 5, window_secs = 3600 }\n[provider.twilio]\nring_timeout_secs = 1\n",
    )
    .await;
    let user_key = |user: &str| format!("{}:{{t:contoso}}:rl:user:{user}", server.prefix);
    let mut ids = Vec::new();
    for (user, mode) in [
        ("unk1", Mode::Failed500),
        ("unk2", Mode::Unreadable),
        ("unk3", Mode::SlowMs(4000)),
    ] {
        stub.set_mode(mode);
        let (status, v) = server.register(user, "+14255550320").await;
        assert_eq!(
            (status, &v["status"]),
            (202, &json!("calling")),
            "{user}: {v}"
        );
        assert_eq!(zcard(&user_key(user)).await, 1, "{user}: still counted");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // The first call reports back for unk1: it binds, and the callee approves.
    let call = StubCall {
        request: stub.calls()[0].clone(),
    };
    let (status, twiml) = stub.answer(&call).await;
    assert_eq!(status, 200);
    stub.press(&call, &gather_action(&twiml), "#").await;
    assert_eq!(method_count(&server, "unk1").await, 1);
    // Nothing reports back for the others: still live (409) until the ring timeout plus the
    // margin, then `provider_unknown` — and the counts are never refunded.
    let (status, _) = server.register("unk2", "+14255550321").await;
    assert_eq!(status, 409);
    for (user, id) in [("unk2", &ids[1]), ("unk3", &ids[2])] {
        let v = wait_for(&server, id, ended).await;
        assert_eq!(
            (&v["status"], &v["reason"]),
            (&json!("failed"), &json!("provider_unknown")),
            "{v}"
        );
        assert_eq!(zcard(&user_key(user)).await, 1, "{user}: never refunded");
    }
}

// --- 4. Provider errors classified by code ---

#[tokio::test]
async fn provider_errors_are_classified_by_their_code() {
    // The circuit breaker is off here: it would open after five of these certain
    // failures and skip the account (`provider_failed`).
    let (stub, server) = tuned("max_queue_ms = 1500\ncircuit_failures = 0", "", "").await;
    let table = [
        (400, 21211, "invalid_number"),
        (400, 21217, "invalid_number"),
        (400, 21215, "number_not_allowed_by_provider"),
        (400, 21216, "number_not_allowed_by_provider"),
        (401, 20003, "provider_misconfigured"),
        (400, 21210, "provider_misconfigured"),
        (400, 21212, "provider_misconfigured"),
        (400, 21219, "provider_misconfigured"),
        (403, 20403, "provider_misconfigured"),
        (400, 21201, "provider_rejected"),
    ];
    for (i, (http, code, reason)) in table.into_iter().enumerate() {
        stub.set_mode(Mode::Error(http, code));
        let (status, v) = server.register(&format!("cls{i}"), "+14255550330").await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(
            (&v["status"], &v["reason"]),
            (&json!("failed"), &json!(reason)),
            "{code}"
        );
        assert!(
            v["provider_error"]
                .as_str()
                .unwrap()
                .contains(&code.to_string())
        );
    }
    let exposition = metrics(&server).await;
    assert!(
        exposition.contains("callverify_provider_misconfigured_total")
            && exposition.contains("code=\"20003\""),
        "{exposition}"
    );
    // 20429 is retried with backoff and then placed…
    stub.set_mode(Mode::Created);
    stub.throttle_next(2);
    let before = stub.calls().len();
    let (status, v) = server.register("thr1", "+14255550331").await;
    assert_eq!((status, &v["status"]), (202, &json!("calling")), "{v}");
    assert_eq!(stub.calls().len() - before, 3);
    // …or, throttled beyond provider.max_queue_ms, fails provider_throttled.
    stub.throttle_next(1000);
    let (status, v) = server.register("thr2", "+14255550332").await;
    assert_eq!(status, 202);
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("provider_throttled"))
    );
    stub.throttle_next(0);
}

// --- 5. Every failure before dialling cleans up ---

#[tokio::test]
async fn every_failure_before_dialling_cleans_up_the_live_slot_and_the_counts() {
    let stub = StubTwilio::start().await;
    let options = Options {
        extra: "[abuse.limits]\nnumber_spacing = { max = 0, window_secs = 30 }\n",
        provider: "calls_per_second = 1000",
        production_limits: true,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    let p = server.prefix.clone();
    let mut conn = crate::support::redis().await;
    // Each step made to fail in turn by giving its key the wrong type.
    let steps = [
        ("rate limits", format!("{p}:{{t:contoso}}:rl:tenant:-")),
        ("pacing", format!("{p}:{{provider:twilio}}:next-call")),
        ("reconciliation schedule", format!("{p}:{{recon}}:due")),
    ];
    for (step, key) in steps {
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("x")
            .arg("1")
            .query_async(&mut conn)
            .await
            .unwrap();
        let (status, body) = server.register("pre", "+14255550340").await;
        assert!(status >= 500, "{step}: {status} {body}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let keys = crate::support::keys_under(&p).await;
        assert!(
            !keys
                .iter()
                .any(|k| k.ends_with(":live") || k.contains(":vf:")),
            "{step}: {keys:?}"
        );
        for limit in [
            "number:+14255550340",
            "user:pre",
            "tenant:-",
            "ip:127.0.0.1",
        ] {
            let key = format!("{p}:{{t:contoso}}:rl:{limit}");
            assert_eq!(zcard(&key).await, 0, "{step}: {limit} counted");
        }
    }
    // Repaired, the same user can be called at once.
    let (status, body) = server.register("pre", "+14255550340").await;
    assert_eq!(
        (status, &body["status"]),
        (202, &json!("calling")),
        "{body}"
    );
    assert!(stub.calls().len() == 1);
}

// --- 6. A repeated # after approval ---

#[tokio::test]
async fn a_repeated_pound_after_approval_hears_its_own_thank_you() {
    let (stub, server) = server("").await;
    let (_, call, twiml) = answered_registration(&stub, &server, "rep", "+14255550350").await;
    let action = gather_action(&twiml);
    let (_, first) = stub.press(&call, &action, "#").await;
    let (status, again) = stub.press(&call, &action, "#").await;
    assert_eq!(status, 200);
    assert!(first.contains("verification is complete"));
    assert!(again.contains("verification is complete"), "{again}");
    assert!(!again.contains("no longer valid"));
    assert_eq!(method_count(&server, "rep").await, 1);
    // Another call's keypress is still refused.
    let mut other = call.clone();
    other.request.sid = format!("CA{:032x}", 0xdead);
    assert_eq!(stub.press(&other, &action, "#").await.0, 403);
}

// --- 7. Duplicated voice and gather deliveries ---

#[tokio::test]
async fn duplicated_voice_and_gather_deliveries_do_not_consume_prompts() {
    let (stub, server) = server("").await;
    let (id, call, twiml) = answered_registration(&stub, &server, "dup", "+14255550360").await;
    let voices = (0..50).map(|_| stub.answer(&call));
    for (status, _) in futures_util::future::join_all(voices).await {
        assert_eq!(status, 200);
    }
    let action = gather_action(&twiml);
    // The same wrong key delivered 50 times re-prompts each time, counted once.
    let presses = (0..50).map(|_| stub.press(&call, &action, "5"));
    let answers = futures_util::future::join_all(presses).await;
    assert!(answers.iter().all(|(_, b)| b.contains("not valid")));
    let v = server.verification(&id).await;
    assert_eq!(v["status"], "answered", "{v}");
    // Two prompts heard (the first and one re-prompt): one more wrong key still re-prompts.
    let next = gather_action(&answers[0].1);
    let (_, third) = stub.press(&call, &next, "5").await;
    assert!(third.contains("<Gather"), "{third}");
    let (_, closing) = stub.press(&call, &gather_action(&third), "#").await;
    assert!(closing.contains("verification is complete"), "{closing}");
}

// --- 8. Twilio API keys and token rotation ---

#[tokio::test]
async fn an_api_key_authenticates_the_calls_api_and_a_secondary_token_signs_webhooks() {
    let (stub, server) = server(
        "[provider.twilio]\napi_key_sid = \"SK0123456789abcdef0123456789abcdef\"\napi_key_secret = \"key-secret\"\nauth_token_secondary = \"next-token\"\n",
    )
    .await;
    let (status, v) = server.register("key", "+14255550370").await;
    // The stub only serves …/Accounts/{ACCOUNT_SID}/Calls.json: the account stays the path.
    assert_eq!((status, &v["status"]), (202, &json!("calling")), "{v}");
    let call = stub.last_call();
    let basic = call.request.authorization.strip_prefix("Basic ").unwrap();
    let credentials =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, basic).unwrap();
    assert_eq!(
        String::from_utf8(credentials).unwrap(),
        "SK0123456789abcdef0123456789abcdef:key-secret"
    );
    let params = StubTwilio::call_params(&call, "in-progress");
    let url = call.request.field("Url");
    for (token, expected) in [(AUTH_TOKEN, 200), ("next-token", 200), ("key-secret", 403)] {
        let (status, _, _) = stub.signed_post(url, &params, token).await;
        assert_eq!(status, expected, "signed with {token}");
    }
}

// --- 9. Cost and fallback bounds, answering machines ---

#[tokio::test]
async fn every_call_is_bounded_and_a_machine_hears_nothing() {
    let (stub, server) = server("[provider.twilio]\nmachine_detection = \"enable\"\n").await;
    let (status, v) = server.register("vm", "+14255550380").await;
    assert_eq!(status, 202, "{v}");
    let call = stub.last_call();
    // 3 prompts × (5 s gather + 30 s) + 30 s.
    assert_eq!(call.request.field("TimeLimit"), "135");
    assert_eq!(call.request.field("MachineDetection"), "Enable");
    let fallback = call.request.field("FallbackUrl").to_owned();
    assert!(fallback.ends_with("/fallback"), "{fallback}");
    let params = StubTwilio::call_params(&call, "in-progress");
    let (status, content_type, apology) = stub.signed_post(&fallback, &params, AUTH_TOKEN).await;
    assert_eq!((status, content_type.as_str()), (200, "text/xml"));
    assert!(
        apology.contains("We are sorry") && apology.contains("<Hangup/>"),
        "{apology}"
    );
    assert_eq!(stub.signed_post(&fallback, &params, "forged").await.0, 403);

    let mut params = params.clone();
    params.push(("AnsweredBy", "machine_start"));
    let (status, _, twiml) = stub
        .signed_post(call.request.field("Url"), &params, AUTH_TOKEN)
        .await;
    assert_eq!(status, 200);
    assert!(
        twiml.contains("<Hangup/>") && !twiml.contains("<Say"),
        "{twiml}"
    );
    let v = server.verification(v["id"].as_str().unwrap()).await;
    assert_eq!(
        (&v["status"], &v["reason"]),
        (&json!("failed"), &json!("voicemail"))
    );
}

#[tokio::test]
async fn each_due_check_is_claimed_by_exactly_one_instance() {
    use callverify::ids::{TenantId, UserId, VerificationId};
    let prefix = crate::support::unique_prefix();
    let config = crate::support::redis_config(&prefix, 2000);
    let connect = || callverify::store::Store::open(&config);
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let tenant = TenantId::parse("contoso").unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let id = VerificationId::generate(&tenant, &UserId::parse(&format!("u{i}")).unwrap());
        a.schedule_reconcile(&id, 0, false).await.unwrap();
        ids.push(id.as_str().to_owned());
    }
    // Two instances claim at once, several times: every check goes to one of them, once.
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let (x, y) = tokio::join!(a.claim_reconcile(16, 30_000), b.claim_reconcile(16, 30_000));
        claimed.extend(x.unwrap());
        claimed.extend(y.unwrap());
    }
    claimed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(claimed, expected, "each claimed exactly once");
    // Leased, not gone: still scheduled (a dead instance's checks are taken over later).
    assert_eq!(a.reconcile_backlog().await.unwrap(), 40);
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:{{recon}}:due"))
        .query_async(&mut crate::support::redis().await)
        .await
        .unwrap();
}
