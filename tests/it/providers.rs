//! Four providers from one call flow: a registration approved end to end in each
//! provider's dialect (the simulator signs every webhook with its own implementation of that
//! provider's scheme), signatures refused per provider with no state change, per-tenant
//! choice, failover only when nothing was dialled, and the circuit breaker across instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use callverify_simulator::dialect::{Signer, plivo_v3, signalwire};
use callverify_simulator::twiml::Method;
use serde_json::{Value, json};

use crate::support::{Options, PORTAL_KEY, TestServer, unique_prefix};

const SIMULATED: &str = "[provider.simulator]\ntime_scale = 0.01\n";

async fn register_and_wait(server: &TestServer, user: &str, number: &str) -> Value {
    let (status, body) = server.register(user, number).await;
    assert_eq!(status, 202, "{body}");
    server.wait_for_end(body["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn every_dialect_approves_a_registration_end_to_end() {
    for dialect in ["twilio", "signalwire", "telnyx", "plivo"] {
        let extra = format!(
            "{SIMULATED}[[providers]]\nname = \"sim-{dialect}\"\nkind = \"simulator\"\ndialect = \"{dialect}\"\n"
        );
        let server = TestServer::start("http://unused.invalid", &extra).await;
        let v = register_and_wait(&server, "amy", "+14255551234").await;
        assert_eq!(v["status"], "approved", "{dialect}: {v}");
        assert_eq!(v["provider"], format!("sim-{dialect}"), "{dialect}");
        let simulator = server.simulator.as_ref().unwrap();
        let call = simulator.calls_to("+14255551234").pop().unwrap();
        let t = simulator
            .wait_until_finished(&call.call_sid, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(t.pressed(), ["#"], "{dialect}");
        assert!(
            t.said()
                .iter()
                .any(|s| s.contains("verification is complete")),
            "{dialect}: {:?}",
            t.said()
        );
        let methods = server.methods("amy").await;
        assert_eq!(methods["default_method"], "voice_mobile", "{dialect}");
        let (_, audit) = server
            .get_json(PORTAL_KEY, "/v1/tenants/contoso/users/amy/audit")
            .await;
        assert!(
            audit.to_string().contains(&format!("sim-{dialect}")),
            "{audit}"
        );
    }
}

/// A stub provider: answers every Calls API request with `status` (a call resource in the
/// shape of the path's provider on 2xx), counts them, and optionally answers slowly.
#[derive(Clone)]
struct Stub {
    base: String,
    hits: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
}

async fn stub(delay: Duration) -> Stub {
    let hits = Arc::new(AtomicUsize::new(0));
    let status = Arc::new(AtomicU16::new(201));
    let (h, s) = (hits.clone(), status.clone());
    let app = Router::new().fallback(move |uri: Uri| {
        let (h, s) = (h.clone(), s.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            let status = StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
            let path = uri.path();
            let body = if status == StatusCode::BAD_REQUEST {
                // Twilio's "not a valid phone number".
                json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})
            } else if !status.is_success() {
                json!({"code": 20003, "message": "Authenticate", "errors": [{"code": "10009", "title": "Authentication failed"}], "error": "authentication failed"})
            } else if path.contains("/texml/") {
                json!({"call_sid": "v3:stubcall", "status": "queued"})
            } else if path.contains("/v1/Account/") {
                json!({"request_uuid": "stub-uuid", "message": "call fired"})
            } else {
                json!({"sid": "CAstub", "status": "queued"})
            };
            (status, axum::Json(body)).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { base, hits, status }
}

/// The four accounts of a server whose calls go to `stub` (nothing calls back), with the keys
/// the test signs with. The telnyx account's public key is `telnyx_key`'s.
fn stub_accounts(stub: &Stub, telnyx_key: &ed25519_dalek::SigningKey) -> String {
    let public =
        base64::engine::general_purpose::STANDARD.encode(telnyx_key.verifying_key().as_bytes());
    let base = &stub.base;
    format!(
        r#"
[[providers]]
name = "tw"
kind = "twilio"
account_sid = "AC1"
auth_token = "twilio-token"
api_base = "{base}"
from = "+15005550006"
[[providers]]
name = "sw"
kind = "signalwire"
project_id = "p1"
api_token = "sw-api-token"
signing_key = "PSKsigning"
api_base = "{base}/api/laml"
from = "+15005550006"
[[providers]]
name = "tx"
kind = "telnyx"
api_key = "KEYtelnyx"
account_sid = "acc"
application_sid = "app"
public_key = "{public}"
api_base = "{base}"
from = "+15005550006"
[[providers]]
name = "pl"
kind = "plivo"
auth_id = "MA1"
auth_token = "plivo-token"
api_base = "{base}"
from = "+15005550006"
"#
    )
}

/// Signature headers for a gather webhook as `account` signs it with `key`.
fn sign(
    account: &str,
    key: &str,
    telnyx: &ed25519_dalek::SigningKey,
    url: &str,
    params: &[(String, String)],
    body: &str,
) -> Vec<(&'static str, String)> {
    let signer = match account {
        "tw" => Signer::Twilio {
            auth_token: key.into(),
        },
        "sw" => Signer::SignalWire {
            signing_key: key.into(),
        },
        "tx" => Signer::Telnyx {
            key: if key == "right" {
                telnyx.clone()
            } else {
                ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            },
        },
        _ => Signer::Plivo {
            auth_token: key.into(),
        },
    };
    let _ = (signalwire, plivo_v3);
    signer.headers(Method::Post, url, params, body)
}

#[tokio::test]
async fn forged_missing_and_wrong_key_signatures_are_refused_by_every_provider() {
    let stub = stub(Duration::ZERO).await;
    let telnyx = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let accounts = stub_accounts(&stub, &telnyx);
    let right_keys = [
        ("tw", "twilio-token"),
        ("sw", "PSKsigning"),
        ("tx", "right"),
        ("pl", "plivo-token"),
    ];
    let wrong_keys = [
        ("tw", "sw-api-token"),
        ("sw", "sw-api-token"),
        ("tx", "wrong"),
        ("pl", "MA1"),
    ];
    for (i, ((account, right), (_, wrong))) in right_keys.iter().zip(wrong_keys).enumerate() {
        // The tenant's calls go to this one account (`[[tenants]] providers`).
        let contoso = format!("providers = [\"{account}\"]");
        let server = TestServer::start_with(
            &stub.base,
            Options {
                extra: &accounts,
                contoso: &contoso,
                ..Options::default()
            },
        )
        .await;
        let server = &server;
        let user = format!("u{i}");
        let (status, body) = server
            .register(&user, &format!("+1425555{:04}", 2000 + i))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap();
        let call_id = match *account {
            "tx" => "v3:stubcall",
            "pl" => "stub-uuid",
            _ => "CAstub",
        };
        let id_param = if *account == "pl" {
            "RequestUUID"
        } else {
            "CallSid"
        };
        let params = vec![
            (id_param.to_owned(), call_id.to_owned()),
            ("Digits".to_owned(), "#".to_owned()),
            ("CallStatus".to_owned(), "in-progress".to_owned()),
        ];
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let url = server.url(&format!("/telephony/{account}/{id}/gather?step=prompt"));
        let post = |headers: Vec<(&'static str, String)>, body: String| {
            let mut r = server
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.send()
        };
        let before = server.verification(id).await;
        let wrong_h = sign(account, wrong, &telnyx, &url, &params, &form);
        assert_eq!(
            post(wrong_h, form.clone()).await.unwrap().status(),
            403,
            "{account} wrong key"
        );
        assert_eq!(
            post(vec![], form.clone()).await.unwrap().status(),
            403,
            "{account} missing"
        );
        let mut forged = sign(account, right, &telnyx, &url, &params, &form);
        let tampered = form.replace("in-progress", "completed");
        assert_eq!(
            post(forged.clone(), tampered).await.unwrap().status(),
            403,
            "{account} forged body"
        );
        for (_, v) in forged.iter_mut().take(1) {
            v.replace_range(0..2, if v.starts_with("AA") { "BB" } else { "AA" });
        }
        assert_eq!(
            post(forged, form.clone()).await.unwrap().status(),
            403,
            "{account} forged signature"
        );
        let after = server.verification(id).await;
        assert_eq!(
            before["status"], after["status"],
            "{account}: no state change"
        );
        assert_eq!(before["updated_at"], after["updated_at"], "{account}");
        // The same request signed as the provider signs it is accepted: the refusals above
        // were about the signature.
        assert_eq!(after["provider"], *account);
        let good = sign(account, right, &telnyx, &url, &params, &form);
        let answer = post(good, form.clone()).await.unwrap();
        assert_eq!(answer.status(), 200, "{account}");
        assert_eq!(
            server.verification(id).await["status"],
            "approved",
            "{account}"
        );
    }
}

fn failover_accounts(first_base: &str) -> String {
    format!(
        r#"{SIMULATED}
[[providers]]
name = "first"
kind = "twilio"
account_sid = "AC1"
auth_token = "t"
api_base = "{first_base}"
from = "+15005550006"
request_timeout_ms = 300
[[providers]]
name = "backup"
kind = "simulator"
dialect = "telnyx"
"#
    )
}

#[tokio::test]
async fn a_refused_call_fails_over_to_the_next_account() {
    let stub = stub(Duration::ZERO).await;
    stub.status.store(401, Ordering::SeqCst);
    let server = failover_server(&stub.base).await;
    let v = register_and_wait(&server, "amy", "+14255551234").await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["provider"], "backup");
    assert_eq!(
        stub.hits.load(Ordering::SeqCst),
        1,
        "the first account was asked once"
    );
    assert_eq!(
        server
            .simulator
            .as_ref()
            .unwrap()
            .calls_to("+14255551234")
            .len(),
        1
    );
}

#[tokio::test]
async fn an_invalid_number_refusal_never_fails_over() {
    let stub = stub(Duration::ZERO).await;
    stub.status.store(400, Ordering::SeqCst);
    let server = failover_server(&stub.base).await;
    let (code, body) = server.register("amy", "+14255551234").await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    // Its own reason (it was `provider_rejected`).
    assert_eq!(body["reason"], "invalid_number");
    assert_eq!(body["provider"], "first");
    assert!(body["provider_error"].as_str().unwrap().contains("21211"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server
            .simulator
            .as_ref()
            .unwrap()
            .calls_to("+14255551234")
            .is_empty()
    );
}

#[tokio::test]
async fn timeouts_and_server_errors_never_place_a_second_call() {
    for (status, delay) in [(500u16, Duration::ZERO), (201, Duration::from_millis(1500))] {
        let stub = stub(delay).await;
        stub.status.store(status, Ordering::SeqCst);
        let server = failover_server(&stub.base).await;
        let (code, body) = server.register("amy", "+14255551234").await;
        assert_eq!(code, 202, "{body}");
        // An unknown outcome stays open (it failed `provider_failed` before); the
        // first call that reports back binds, else it ends `provider_unknown`.
        assert_eq!(body["status"], "calling", "{status}: {body}");
        assert_eq!(body["provider"], "first");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let simulator = server.simulator.as_ref().unwrap();
        assert!(
            simulator.calls_to("+14255551234").is_empty(),
            "{status}: no second call"
        );
    }
}

#[tokio::test]
async fn the_circuit_opens_across_instances_and_closes_after_a_probe() {
    let stub = stub(Duration::ZERO).await;
    stub.status.store(401, Ordering::SeqCst);
    let extra = failover_accounts(&stub.base);
    let circuit = "circuit_failures = 2\ncircuit_cooldown_ms = 1500";
    let prefix = unique_prefix();
    let one = TestServer::start_with(
        &stub.base,
        Options {
            extra: &extra,
            provider: circuit,
            prefix: Some(prefix.clone()),
            ..Options::default()
        },
    )
    .await;
    let two = TestServer::start_with(
        &stub.base,
        Options {
            extra: &extra,
            provider: circuit,
            prefix: Some(prefix),
            ..Options::default()
        },
    )
    .await;
    for (i, user) in ["a", "b"].iter().enumerate() {
        let v = register_and_wait(&one, user, &format!("+142555510{i}9")).await;
        assert_eq!(v["provider"], "backup");
    }
    assert_eq!(stub.hits.load(Ordering::SeqCst), 2);
    // Open: the other instance does not ask the first account at all.
    let v = register_and_wait(&two, "c", "+14255551029").await;
    assert_eq!(
        (v["status"].as_str(), v["provider"].as_str()),
        (Some("approved"), Some("backup")),
        "{v}"
    );
    assert_eq!(stub.hits.load(Ordering::SeqCst), 2, "skipped while open");
    // After the cool-down one call probes it; the provider is back, so it takes the call.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    stub.status.store(201, Ordering::SeqCst);
    let (code, body) = two.register("d", "+14255551039").await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["provider"], "first");
    assert_eq!(stub.hits.load(Ordering::SeqCst), 3);
    // Closed again: the next call goes to the first account from either instance.
    let (_, body) = one.register("e", "+14255551049").await;
    assert_eq!(body["provider"], "first");
    assert_eq!(stub.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn switching_a_tenant_to_telnyx_is_configuration_only() {
    let extra = format!(
        "{SIMULATED}[[providers]]\nname = \"twilio-main\"\nkind = \"simulator\"\n[[providers]]\nname = \"telnyx\"\nkind = \"simulator\"\ndialect = \"telnyx\"\n"
    );
    let server = TestServer::start_with(
        "http://unused.invalid",
        Options {
            extra: &extra,
            contoso: "providers = [\"telnyx\", \"twilio-main\"]",
            ..Options::default()
        },
    )
    .await;
    let v = register_and_wait(&server, "amy", "+14255551234").await;
    assert_eq!(
        (v["status"].as_str(), v["provider"].as_str()),
        (Some("approved"), Some("telnyx"))
    );
}

/// Unknown outcomes and failover together: an unknown outcome from a Telnyx or Plivo account (a 5xx after the
/// call was placed, or no answer before the deadline) never fails over: the verification stays
/// `calling` with that account, the next account is never asked, and the call that was placed
/// after all binds when it reports back.
#[tokio::test]
async fn an_unknown_outcome_from_telnyx_or_plivo_stays_calling_and_never_fails_over() {
    use callverify_simulator::{ApiChaos, Behaviour, Chaos};
    let cases = [
        ("telnyx", ApiChaos::ErrorAfterPlacing),
        ("plivo", ApiChaos::TimeoutAfterPlacing { stall_ms: 1500 }),
    ];
    for (dialect, api) in cases {
        let backup = stub(Duration::ZERO).await;
        // Slow enough that the call is still going when the Calls API's answer is given up on.
        let extra = format!(
            r#"[provider.simulator]
time_scale = 0.2
[provider.twilio]
request_timeout_ms = 500
[[providers]]
name = "first"
kind = "simulator"
dialect = "{dialect}"
[[providers]]
name = "backup"
kind = "twilio"
account_sid = "AC1"
auth_token = "t"
api_base = "{}"
from = "+15005550006"
"#,
            backup.base
        );
        let server = TestServer::start(&backup.base, &extra).await;
        let simulator = server.simulator.as_ref().unwrap();
        let chaos = Chaos {
            api,
            ..Chaos::default()
        };
        simulator.script(
            "+14255551234",
            Behaviour::presses(["#"])
                .with_key_delay(2.0)
                .with_chaos(chaos),
        );
        let (code, body) = server.register("amy", "+14255551234").await;
        assert_eq!(code, 202, "{body}");
        // Open (`calling`, or already bound by the call's first callbacks), never failed.
        assert!(
            matches!(
                body["status"].as_str(),
                Some("calling" | "ringing" | "answered")
            ),
            "{dialect}: {body}"
        );
        assert_eq!(body["provider"], "first", "{dialect}");
        assert_eq!(
            backup.hits.load(Ordering::SeqCst),
            0,
            "{dialect}: no failover"
        );
        // The call the provider placed after all reports back, binds, and approves.
        let v = server.wait_for_end(body["id"].as_str().unwrap()).await;
        assert_eq!(v["status"], "approved", "{dialect}: {v}");
        assert_eq!(v["provider"], "first", "{dialect}");
        assert_eq!(backup.hits.load(Ordering::SeqCst), 0, "{dialect}");
        assert_eq!(simulator.calls_to("+14255551234").len(), 1, "{dialect}");
    }
}

/// Reconciliation reads the call back from the account that placed it (the verification's
/// `provider`), in that provider's own API: a call through a Plivo or Telnyx account whose final
/// callback was lost still ends, with the reason the provider's record gives.
#[tokio::test]
async fn reconciliation_ends_a_call_through_a_non_twilio_account_whose_final_callback_was_lost() {
    use callverify_simulator::{Behaviour, Chaos};
    for dialect in ["telnyx", "plivo"] {
        let extra = format!(
            "{SIMULATED}[verification]\nhangup_grace_ms = 300\nreconcile_interval_secs = 1\n\
             [[providers]]\nname = \"sim-{dialect}\"\nkind = \"simulator\"\ndialect = \"{dialect}\"\n"
        );
        let server = TestServer::start("http://unused.invalid", &extra).await;
        let simulator = server.simulator.as_ref().unwrap();
        let chaos = Chaos {
            drop_final: true,
            ..Chaos::default()
        };
        simulator.script(
            "+14255551234",
            Behaviour::hangs_up_mid_prompt().with_chaos(chaos),
        );
        let (code, body) = server.register("amy", "+14255551234").await;
        assert_eq!(code, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let call = simulator.calls_to("+14255551234").pop().unwrap();
        let t = simulator
            .wait_until_finished(&call.call_sid, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            !t.entries.iter().any(|e| matches!(
                e,
                callverify_simulator::Entry::Webhook { params, .. }
                    if params.get("CallStatus").is_some_and(|s| s == "completed")
            )),
            "{dialect}: the final callback was never sent"
        );
        // Ended by reconciliation alone, within a few check intervals.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut v = server.verification(&id).await;
        while v["status"] != "failed" && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            v = server.verification(&id).await;
        }
        assert_eq!(
            (&v["status"], &v["reason"], &v["provider"]),
            (
                &json!("failed"),
                &json!("hung_up"),
                &json!(format!("sim-{dialect}"))
            ),
            "{dialect}: {v}"
        );
        let metrics = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("callverify_reconciliations_total{outcome=\"ended\"}"),
            "{dialect}"
        );
    }
}

/// A callverify whose tenant has the two accounts of [`failover_accounts`].
async fn failover_server(stub_base: &str) -> TestServer {
    let extra = failover_accounts(stub_base);
    TestServer::start(stub_base, &extra).await
}
