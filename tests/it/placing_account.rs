//! Webhooks are bound to the provider account that placed the call: two Twilio accounts (`main`
//! for contoso, `other` for fabrikam). A webhook correctly signed by one account, sent to its
//! own URL for the other tenant's verification, changes nothing — bound to a call or not (the
//! Calls API answered 500, so no call id is known yet and an invented one must not bind).

use serde_json::{Value, json};

use crate::support::stub_twilio::{Mode, StubCall, gather_action};
use crate::support::{ACCOUNT_SID, OTHER_KEY, PORTAL_KEY, StubTwilio, TestServer};

const MAIN_TOKEN: &str = "main-account-token-0123456789";
const OTHER_TOKEN: &str = "other-account-token-0123456789";

async fn two_accounts() -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let base = &stub.base;
    let extra = format!(
        r#"
[[providers]]
name = "main"
kind = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "{MAIN_TOKEN}"
api_base = "{base}"
from = "+15005550006"
[[providers]]
name = "other"
kind = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "{OTHER_TOKEN}"
api_base = "{base}"
from = "+15005550007"
"#
    );
    let server = TestServer::start_custom(base, &extra, |config| {
        for tenant in &mut config.tenants {
            let account = if tenant.id.as_str() == "contoso" {
                "main"
            } else {
                "other"
            };
            tenant.providers = Some(vec![account.to_owned()]);
        }
    })
    .await;
    (stub, server)
}

/// Starts a registration for `tenant`/`user`; returns the verification id.
async fn start(server: &TestServer, tenant: &str, user: &str, number: &str) -> String {
    let key = if tenant == "contoso" {
        PORTAL_KEY
    } else {
        OTHER_KEY
    };
    let (status, body) = server
        .post_json(
            key,
            &format!("/v1/tenants/{tenant}/users/{user}/verifications"),
            json!({"phone_number": number, "purpose": "registration"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn read(server: &TestServer, tenant: &str, id: &str) -> Value {
    let key = if tenant == "contoso" {
        PORTAL_KEY
    } else {
        OTHER_KEY
    };
    let (status, body) = server
        .get_json(key, &format!("/v1/tenants/{tenant}/verifications/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn methods(server: &TestServer, tenant: &str, user: &str) -> Value {
    let key = if tenant == "contoso" {
        PORTAL_KEY
    } else {
        OTHER_KEY
    };
    let (status, body) = server
        .get_json(key, &format!("/v1/tenants/{tenant}/users/{user}/methods"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["methods"].clone()
}

fn params<'a>(sid: &'a str, status: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CallSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
    ]
}

fn url(server: &TestServer, account: &str, id: &str, hook: &str) -> String {
    server.url(&format!("/telephony/{account}/{id}/{hook}"))
}

#[tokio::test]
async fn a_bound_call_hears_only_the_account_that_placed_it() {
    let (stub, server) = two_accounts().await;
    let id = start(&server, "fabrikam", "fay", "+14255550190").await;
    let call: StubCall = stub.last_call();
    let sid = call.request.sid.as_str();
    assert_eq!(
        call.request.field("Url"),
        url(&server, "other", &id, "voice")
    );
    let (status, _, twiml) = stub
        .signed_post(
            &url(&server, "other", &id, "voice"),
            &params(sid, "in-progress"),
            OTHER_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{twiml}");
    let action = gather_action(&twiml);
    assert!(action.contains("/telephony/other/"), "{action}");

    // `main` signs correctly for its own URL, with the real call id: refused, nothing changes.
    let forged_action = action.replace("/telephony/other/", "/telephony/main/");
    let mut press = params(sid, "in-progress");
    press.push(("Digits", "#"));
    let (status, _, _) = stub.signed_post(&forged_action, &press, MAIN_TOKEN).await;
    assert_eq!(status, 403);
    for hook in ["voice", "status"] {
        let (status, _, _) = stub
            .signed_post(
                &url(&server, "main", &id, hook),
                &params(sid, "completed"),
                MAIN_TOKEN,
            )
            .await;
        assert_eq!(status, 403, "{hook}");
    }
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "answered");
    assert_eq!(methods(&server, "fabrikam", "fay").await, json!([]));
    // Signed by `main` but sent to `other`'s URL: the signature check refuses it.
    let (status, _, _) = stub.signed_post(&action, &press, MAIN_TOKEN).await;
    assert_eq!(status, 403);
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "answered");

    // The placing account's own `#` still approves.
    let (status, _, _) = stub.signed_post(&action, &press, OTHER_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "approved");

    // And the other way round: contoso's call (placed by `main`) refuses `other`.
    let id = start(&server, "contoso", "cody", "+14255550191").await;
    let sid = stub.last_call().request.sid;
    let (status, _, _) = stub
        .signed_post(
            &url(&server, "other", &id, "voice"),
            &params(&sid, "in-progress"),
            OTHER_TOKEN,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(read(&server, "contoso", &id).await["status"], "calling");
}

#[tokio::test]
async fn an_unbound_verification_binds_no_call_id_from_another_account() {
    let (stub, server) = two_accounts().await;
    // The Calls API answers 500: the outcome is unknown, the verification stays `calling` with
    // no call id bound — the first call to report back would bind.
    stub.set_mode(Mode::Failed500);
    let id = start(&server, "fabrikam", "finn", "+14255550192").await;
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "calling");

    let invented = "CAffffffffffffffffffffffffffff0001";
    let (status, _, _) = stub
        .signed_post(
            &url(&server, "main", &id, "voice"),
            &params(invented, "in-progress"),
            MAIN_TOKEN,
        )
        .await;
    assert_eq!(status, 403);
    let mut press = params(invented, "in-progress");
    press.push(("Digits", "#"));
    let gather = format!("{}?step=prompt&n=1", url(&server, "main", &id, "gather"));
    let (status, _, _) = stub.signed_post(&gather, &press, MAIN_TOKEN).await;
    assert_eq!(status, 403);
    let (status, _, _) = stub
        .signed_post(
            &url(&server, "main", &id, "status"),
            &params(invented, "ringing"),
            MAIN_TOKEN,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "calling");
    assert_eq!(methods(&server, "fabrikam", "finn").await, json!([]));

    // The call that `other` did place reports back: it binds (the invented id did not) and
    // approves.
    let real = "CAeeeeeeeeeeeeeeeeeeeeeeeeeeee0002";
    let (status, _, twiml) = stub
        .signed_post(
            &url(&server, "other", &id, "voice"),
            &params(real, "in-progress"),
            OTHER_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{twiml}");
    let mut press = params(real, "in-progress");
    press.push(("Digits", "#"));
    let (status, _, _) = stub
        .signed_post(&gather_action(&twiml), &press, OTHER_TOKEN)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read(&server, "fabrikam", &id).await["status"], "approved");
    // Now bound: the invented id from `main` is still refused.
    let (status, _, _) = stub
        .signed_post(&gather, &press_with(invented), MAIN_TOKEN)
        .await;
    assert_eq!(status, 403);
}

fn press_with(sid: &str) -> Vec<(&str, &str)> {
    let mut press = params(sid, "in-progress");
    press.push(("Digits", "#"));
    press
}
