//! Tenant policy: admin-only document, validation, and its enforcement on methods, defaults and
//! calls.

use serde_json::{Value, json};

use crate::methods::key;
use crate::support::{ADMIN_KEY, OTHER_KEY, PORTAL_KEY, StubTwilio, TestServer, open_policy};

const POLICY: &str = "/v1/tenants/contoso/policy";

async fn setup() -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    (stub, server)
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://callverify.dev/problems/")
}

fn with(mut policy: Value, pointer: &str, value: Value) -> Value {
    *policy.pointer_mut(pointer).unwrap() = value;
    policy
}

#[tokio::test]
async fn only_admin_keys_read_or_replace_the_policy() {
    let (_stub, server) = setup().await;
    let (status, body) = server.get_json(PORTAL_KEY, POLICY).await;
    assert_eq!((status, problem_type(&body)), (403, "admin-key-required"));
    let (status, body) = server.put_json(PORTAL_KEY, POLICY, open_policy()).await;
    assert_eq!((status, problem_type(&body)), (403, "admin-key-required"));
    // Even a malformed body gets the scope answer first.
    let (status, _) = server.put_json(PORTAL_KEY, POLICY, json!({"x": 1})).await;
    assert_eq!(status, 403);
    let (status, body) = server.get_json(OTHER_KEY, POLICY).await;
    assert_eq!((status, problem_type(&body)), (403, "forbidden"));
    let (status, _) = server.get_json("nope", POLICY).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_default_policy_comes_from_config_and_a_stored_one_replaces_it() {
    let (_stub, server) = setup().await;
    let (status, policy) = server.get_json(ADMIN_KEY, POLICY).await;
    assert_eq!(status, 200);
    let mut expected = open_policy();
    expected["blocked_number_types"] = json!(["premium_rate", "shared_cost", "unknown"]);
    assert_eq!(policy, expected);

    let new = with(open_policy(), "/allowed_countries", json!(["US", "NL"]));
    let new = with(new, "/default_locale", json!("nl-NL"));
    let new = with(new, "/methods/email/enabled", json!(false));
    let stored = server.set_policy(new).await;
    assert_eq!(stored["allowed_countries"], json!(["NL", "US"]));
    assert_eq!(
        stored["blocked_number_types"],
        expected["blocked_number_types"]
    );
    let (_, read) = server.get_json(ADMIN_KEY, POLICY).await;
    assert_eq!(read, stored);
}

#[tokio::test]
async fn invalid_policies_are_refused_and_change_nothing() {
    let (_stub, server) = setup().await;
    let bad = [
        with(open_policy(), "/allowed_countries", json!(["nl"])),
        with(open_policy(), "/allowed_countries", json!(["ZZ"])),
        with(open_policy(), "/allowed_countries", json!(["USA"])),
        with(open_policy(), "/allowed_countries", json!([])),
        with(open_policy(), "/allowed_countries", json!("NL")),
        with(open_policy(), "/default_locale", json!("fr-FR")),
        with(open_policy(), "/default_locale", json!("nl")),
        with(open_policy(), "/methods/email", json!({"enabled": "yes"})),
        with(open_policy(), "/methods/phone", json!({"enabled": true})),
        with(
            open_policy(),
            "/methods/email",
            json!({"enabled": true, "x": 1}),
        ),
        json!({"methods": open_policy()["methods"], "blocked_number_types": ["premium"]}),
        json!({"methods": open_policy()["methods"], "fax": {"enabled": true}}),
        json!({"allowed_countries": null}),
    ];
    for body in bad {
        let (status, problem) = server.put_json(ADMIN_KEY, POLICY, body.clone()).await;
        assert_eq!(
            (status, problem_type(&problem)),
            (422, "invalid-request"),
            "{body}"
        );
    }
    let (_, read) = server.get_json(ADMIN_KEY, POLICY).await;
    assert_eq!(read["allowed_countries"], Value::Null);
}

#[tokio::test]
async fn a_disabled_kind_cannot_be_added_or_made_default() {
    let (_stub, server) = setup().await;
    server.add_method("lea", key(1)).await;
    server
        .add_method(
            "lea",
            json!({"kind": "authenticator_app", "display_name": "a"}),
        )
        .await;
    server
        .set_policy(with(
            open_policy(),
            "/methods/security_key/enabled",
            json!(false),
        ))
        .await;
    let (status, body) = server.add_method("lea", key(2)).await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    let (status, body) = server.set_default("lea", "security_key").await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    server
        .set_policy(with(open_policy(), "/methods/email/enabled", json!(false)))
        .await;
    let (status, body) = server
        .add_method(
            "lea",
            json!({"kind": "email", "address": "lea@contoso.com"}),
        )
        .await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    assert_eq!(
        server.methods("lea").await["methods"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_default_the_policy_disables_reads_as_the_next_enabled_option() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "max", "+14255550150", "mobile")
        .await;
    server.add_method("max", key(3)).await;
    let (status, _) = server.set_default("max", "security_key").await;
    assert_eq!(status, 200);
    server
        .set_policy(with(
            open_policy(),
            "/methods/security_key/enabled",
            json!(false),
        ))
        .await;
    let doc = server.methods("max").await;
    assert_eq!(doc["default_method"], "voice_mobile");
    // The methods are shown as stored.
    assert_eq!(doc["methods"].as_array().unwrap().len(), 2);
    // Switched back on, the stored default is in effect again (nothing was rewritten).
    server.set_policy(open_policy()).await;
    assert_eq!(
        server.methods("max").await["default_method"],
        "security_key"
    );

    // Phones off too: nothing enabled backs a default.
    let off = with(open_policy(), "/methods/security_key/enabled", json!(false));
    let off = with(off, "/methods/phone/enabled", json!(false));
    server.set_policy(off).await;
    assert_eq!(server.methods("max").await["default_method"], Value::Null);
}

#[tokio::test]
async fn office_phones_follow_office_phone_allowed() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "ned", "+14255550151", "mobile")
        .await;
    server
        .approve_registration(&stub, "ned", "+31201234568", "office")
        .await;
    assert_eq!(server.set_default("ned", "voice_office").await.0, 200);
    server
        .set_policy(with(
            open_policy(),
            "/methods/phone/office_phone_allowed",
            json!(false),
        ))
        .await;
    assert_eq!(
        server.methods("ned").await["default_method"],
        "voice_mobile"
    );
    let (status, body) = server.set_default("ned", "voice_office").await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    let calls = stub.calls().len();
    let (status, body) = server
        .approve_registration(&stub, "ned", "+31201234569", "office")
        .await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    let (status, body) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/ned/verifications",
            json!({"purpose": "sign_in", "method_id": "e37fc753-ff3b-4958-9484-eaa9425c82bc"}),
        )
        .await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));
    assert_eq!(stub.calls().len(), calls, "nothing dialled");
}

#[tokio::test]
async fn calls_follow_the_phone_switch_countries_number_types_and_locale() {
    let (stub, server) = setup().await;
    let user = "/v1/tenants/contoso/users/olu/verifications";
    let start = |number: &str| json!({"purpose": "registration", "phone_number": number});

    server
        .set_policy(with(open_policy(), "/methods/phone/enabled", json!(false)))
        .await;
    let (status, body) = server
        .post_json(PORTAL_KEY, user, start("+14255550152"))
        .await;
    assert_eq!((status, problem_type(&body)), (422, "method-disabled"));

    let nl_only = with(open_policy(), "/allowed_countries", json!(["NL"]));
    server.set_policy(nl_only.clone()).await;
    let (status, body) = server
        .post_json(PORTAL_KEY, user, start("+14255550152"))
        .await;
    assert_eq!((status, problem_type(&body)), (422, "country-not-allowed"));
    assert!(stub.calls().is_empty());
    let (status, body) = server
        .post_json(PORTAL_KEY, user, start("+31612345678"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["locale"], "en-US");
    // End the call, so the next one is not refused as a second live call.
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);

    // UK premium rate: blocked by default, callable once the policy stops blocking it.
    let premium = "+44 909 879 0000";
    server.set_policy(open_policy()).await;
    let (status, body) = server.post_json(PORTAL_KEY, user, start(premium)).await;
    assert_eq!((status, problem_type(&body)), (422, "number-type-blocked"));
    let mut allow = with(open_policy(), "/default_locale", json!("nl-NL"));
    allow["blocked_number_types"] = json!(["unknown"]);
    server.set_policy(allow).await;
    let (status, body) = server.post_json(PORTAL_KEY, user, start(premium)).await;
    assert_eq!(status, 202, "{body}");
    // The policy's locale when the request names none; the request's when it does.
    assert_eq!(body["locale"], "nl-NL");
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);
    let mut asked = start("+14255550153");
    asked["locale"] = json!("en-US");
    let (_, body) = server.post_json(PORTAL_KEY, user, asked).await;
    assert_eq!(body["locale"], "en-US");
    // Mobile numbers can be blocked too.
    let mut no_mobiles = open_policy();
    no_mobiles["blocked_number_types"] = json!(["mobile"]);
    server.set_policy(no_mobiles).await;
    let (status, body) = server
        .post_json(PORTAL_KEY, user, start("+31612345678"))
        .await;
    assert_eq!((status, problem_type(&body)), (422, "number-type-blocked"));
}

#[tokio::test]
async fn a_registered_phone_in_a_country_no_longer_allowed_is_not_called() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "pat", "+14255550154", "mobile")
        .await;
    let calls = stub.calls().len();
    server
        .set_policy(with(open_policy(), "/allowed_countries", json!(["NL"])))
        .await;
    let (status, body) = server
        .post_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/pat/verifications",
            json!({"purpose": "sign_in"}),
        )
        .await;
    assert_eq!((status, problem_type(&body)), (422, "country-not-allowed"));
    assert_eq!(stub.calls().len(), calls);
}
