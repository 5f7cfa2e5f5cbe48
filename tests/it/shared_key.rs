//! Twilio SharedKey webhooks: a request announcing `X-Twilio-Webhooks-Signature-Settings:
//! key=<id>,algorithm=HMAC_SHA256` is checked with that key's secret, signed by the carrier
//! simulator's own implementation; unknown keys, algorithms and secrets are refused with no
//! state change, and auth-token signatures keep working.

use callverify_simulator::dialect::Signer;
use callverify_simulator::twiml::Method;

use crate::support::stub_twilio::{answered_registration, gather_action};
use crate::support::{AUTH_TOKEN, StubTwilio, TestServer};

const KEYS: &str = r#"
[provider.twilio]
webhook_shared_keys = [
  { id = "webhooks_sharedkey_old", secret = "old-shared-secret" },
  { id = "webhooks_sharedkey_new", secret = "new-shared-secret" },
]
"#;

fn shared(key_id: &str, secret: &str, algorithm: &str) -> Signer {
    Signer::TwilioSharedKey {
        key_id: key_id.into(),
        secret: secret.into(),
        algorithm: algorithm.into(),
    }
}

/// POSTs the form `params` to `url` with the headers `signer` makes; returns the status.
async fn post(server: &TestServer, url: &str, params: &[(String, String)], signer: &Signer) -> u16 {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut request = server
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (name, value) in signer.headers(Method::Post, url, params, &body) {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

fn press(call_sid: &str, digits: &str) -> Vec<(String, String)> {
    [
        ("CallSid", call_sid),
        ("CallStatus", "in-progress"),
        ("Digits", digits),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[tokio::test]
async fn a_webhook_signed_with_a_configured_shared_key_is_accepted_and_others_are_403() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, KEYS).await;
    let (id, call, twiml) = answered_registration(&stub, &server, "sky", "+14255550177").await;
    let action = gather_action(&twiml);
    let params = press(&call.request.sid, "#");

    let refused = [
        shared(
            "webhooks_sharedkey_gone",
            "old-shared-secret",
            "HMAC_SHA256",
        ),
        shared("webhooks_sharedkey_new", "new-shared-secret", "HMAC_SHA512"),
        shared("webhooks_sharedkey_new", "old-shared-secret", "HMAC_SHA256"),
        shared("", "new-shared-secret", "HMAC_SHA256"),
        // The auth token is not a SharedKey: a request announcing a key is checked with it.
        shared("webhooks_sharedkey_new", AUTH_TOKEN, "HMAC_SHA1"),
    ];
    for signer in &refused {
        let Signer::TwilioSharedKey {
            key_id, algorithm, ..
        } = signer
        else {
            unreachable!()
        };
        assert_eq!(
            post(&server, &action, &params, signer).await,
            403,
            "key {key_id:?} algorithm {algorithm}"
        );
    }
    let before = server.verification(&id).await;
    assert_eq!(before["status"], "answered");

    // Either key of a rotation is accepted.
    let good = shared("webhooks_sharedkey_old", "old-shared-secret", "HMAC_SHA256");
    assert_eq!(post(&server, &action, &params, &good).await, 200);
    assert_eq!(server.verification(&id).await["status"], "approved");
}

#[tokio::test]
async fn the_newer_shared_key_and_the_auth_token_both_keep_working() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, KEYS).await;

    let (id, call, twiml) = answered_registration(&stub, &server, "tia", "+14255550178").await;
    let signer = shared("webhooks_sharedkey_new", "new-shared-secret", "HMAC_SHA256");
    let (action, params) = (gather_action(&twiml), press(&call.request.sid, "#"));
    assert_eq!(post(&server, &action, &params, &signer).await, 200);
    assert_eq!(server.verification(&id).await["status"], "approved");

    // An account with SharedKeys still accepts its auth token's signature (no settings header).
    let (id, call, twiml) = answered_registration(&stub, &server, "uma", "+14255550179").await;
    let token = Signer::Twilio {
        auth_token: AUTH_TOKEN.into(),
    };
    let (action, params) = (gather_action(&twiml), press(&call.request.sid, "#"));
    assert_eq!(post(&server, &action, &params, &token).await, 200);
    assert_eq!(server.verification(&id).await["status"], "approved");
}

#[test]
fn shared_key_secrets_are_redacted_in_debug() {
    let keys: callverify::provider::twilio::config::TwilioKeys = toml::from_str(
        r#"
account_sid = "AC1"
auth_token = "t"
webhook_shared_keys = [{ id = "webhooks_sharedkey_1", secret = "very-secret-value" }]
"#,
    )
    .unwrap();
    let debug = format!("{keys:?}");
    assert!(debug.contains("webhooks_sharedkey_1"), "{debug}");
    assert!(!debug.contains("very-secret-value"), "{debug}");
}
