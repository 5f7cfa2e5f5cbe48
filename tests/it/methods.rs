//! Security-info methods: add, delete, default sign-in method, audit, input rules.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::{PORTAL_KEY, StubTwilio, TestServer};

async fn setup() -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    (stub, server)
}

fn app(name: &str) -> Value {
    json!({"kind": "authenticator_app", "display_name": name, "device": "Pixel 8"})
}

/// A security key with a distinct 16-byte credential id per `n`.
pub fn key(n: u8) -> Value {
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 16]);
    json!({"kind": "security_key", "display_name": format!("YubiKey {n}"), "credential_id": id})
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://callverify.dev/problems/")
}

#[tokio::test]
async fn each_kind_is_added_with_its_fields_and_usage() {
    let (_stub, server) = setup().await;
    let (status, m) = server.add_method("ann", app("Work phone")).await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["kind"], "authenticator_app");
    assert_eq!(m["display_name"], "Work phone");
    assert_eq!(m["device"], "Pixel 8");
    assert_eq!(m["usable_for"], json!(["mfa", "sspr"]));
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));
    let (_, k) = server.add_method("ann", key(1)).await;
    assert_eq!(k["usable_for"], json!(["mfa"]));
    let (_, e) = server
        .add_method(
            "ann",
            json!({"kind": "email", "address": "Ann@Contoso.COM"}),
        )
        .await;
    assert_eq!(e["address"], "Ann@contoso.com");
    assert_eq!(e["usable_for"], json!(["sspr"]));
    let (status, q) = server
        .add_method(
            "ann",
            json!({"kind": "security_questions", "answered_count": 3}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(q["usable_for"], json!(["sspr"]));

    let doc = server.methods("ann").await;
    let ids: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    for id in [&m, &k, &e, &q].map(|m| m["id"].as_str().unwrap()) {
        assert!(ids.contains(&id));
    }
    // The first method that can be a default became it.
    assert_eq!(doc["default_method"], "authenticator_push");
}

#[tokio::test]
async fn several_apps_and_keys_get_their_own_ids_but_singletons_and_duplicates_conflict() {
    let (_stub, server) = setup().await;
    let (_, a) = server.add_method("bo", app("one")).await;
    let (status, b) = server.add_method("bo", app("two")).await;
    assert_eq!(status, 201);
    assert_ne!(a["id"], b["id"]);
    assert_eq!(server.add_method("bo", key(1)).await.0, 201);
    assert_eq!(server.add_method("bo", key(2)).await.0, 201);
    let (status, body) = server.add_method("bo", key(1)).await;
    assert_eq!((status, problem_type(&body)), (409, "conflict"));
    let email = json!({"kind": "email", "address": "bo@contoso.com"});
    assert_eq!(server.add_method("bo", email.clone()).await.0, 201);
    assert_eq!(server.add_method("bo", email).await.0, 409);
    for i in 3..=5 {
        assert_eq!(
            server.add_method("bo", app(&format!("app {i}"))).await.0,
            201
        );
    }
    let (status, body) = server.add_method("bo", app("sixth")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("at most 5"));
}

#[tokio::test]
async fn phone_kind_points_to_the_verification_flow() {
    let (_stub, server) = setup().await;
    let (status, body) = server
        .add_method(
            "cy",
            json!({"kind": "phone", "phone_number": "+14255551234", "phone_type": "mobile"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem_type(&body), "phone-method-needs-verification");
    assert!(body["detail"].as_str().unwrap().contains("verifications"));
}

#[tokio::test]
async fn bad_bodies_get_problem_json_and_store_nothing() {
    let (_stub, server) = setup().await;
    let too_long_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 1024]);
    let bad = [
        json!({"kind": "email", "address": "x@contoso.com", "verified": true}),
        json!({"kind": "authenticator_app", "display_name": "a", "secret": "JBSWY3DP"}),
        json!({"kind": "email", "address": "not-an-address"}),
        json!({"kind": "email", "address": "a@contoso"}),
        json!({"kind": "email", "address": "a@@contoso.com"}),
        json!({"kind": "security_key", "display_name": "k", "credential_id": "not base64!"}),
        json!({"kind": "security_key", "display_name": "k", "credential_id": "AAECAw"}),
        json!({"kind": "security_key", "display_name": "k", "credential_id": too_long_id}),
        json!({"kind": "security_key", "display_name": "k"}),
        json!({"kind": "authenticator_app", "display_name": ""}),
        json!({"kind": "authenticator_app", "display_name": "x".repeat(65)}),
        json!({"kind": "security_questions", "answered_count": -1}),
        json!({"kind": "sms"}),
        json!({"display_name": "no kind"}),
        json!([1, 2]),
    ];
    for body in bad {
        let (status, problem) = server.add_method("dee", body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem_type(&problem), "invalid-request", "{body}");
    }
    let path = "/v1/tenants/contoso/users/dee/methods";
    let r = server
        .http
        .post(server.url(path))
        .bearer_auth(PORTAL_KEY)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let (status, problem) = crate::support::read(r).await;
    assert_eq!(status, 422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    let r = server
        .http
        .post(server.url(path))
        .bearer_auth(PORTAL_KEY)
        .body(app("x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(crate::support::read(r).await.0, 415);
    // Larger than server.body_limit_bytes (64 KiB).
    let huge = app(&"x".repeat(70_000));
    let (status, problem) = server.add_method("dee", huge).await;
    assert_eq!((status, problem_type(&problem)), (413, "payload-too-large"));
    assert_eq!(server.methods("dee").await["methods"], json!([]));
}

#[tokio::test]
async fn user_ids_have_a_charset_and_a_length() {
    let (_stub, server) = setup().await;
    for user in ["a%20b", "a%2Fb", "%7Btag%7D", &"u".repeat(65)] {
        let path = format!("/v1/tenants/contoso/users/{user}/methods");
        let (status, body) = server.get_json(PORTAL_KEY, &path).await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-request"),
            "{user}"
        );
        let (status, _) = server.post_json(PORTAL_KEY, &path, app("a")).await;
        assert_eq!(status, 422, "{user}");
    }
    let longest = "u".repeat(64);
    assert_eq!(server.add_method(&longest, app("a")).await.0, 201);
    assert_eq!(server.add_method("eve@contoso.com", app("a")).await.0, 201);
}

#[tokio::test]
async fn deleting_the_default_moves_it_in_preference_order_then_to_null() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "fay", "+14255550140", "mobile")
        .await;
    server
        .approve_registration(&stub, "fay", "+31201234567", "office")
        .await;
    let (_, a) = server.add_method("fay", app("a")).await;
    let (_, k) = server.add_method("fay", key(9)).await;
    assert_eq!(
        server.methods("fay").await["default_method"],
        "voice_mobile"
    );
    let (status, doc) = server.set_default("fay", "security_key").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["default_method"], "security_key");

    let order = [
        (k["id"].as_str().unwrap(), json!("authenticator_push")),
        (a["id"].as_str().unwrap(), json!("voice_mobile")),
        (
            "3179e48a-750b-4051-897c-87b9720928f7",
            json!("voice_office"),
        ),
        ("e37fc753-ff3b-4958-9484-eaa9425c82bc", Value::Null),
    ];
    for (id, next) in order {
        assert_eq!(server.delete_method("fay", id).await.0, 204, "{id}");
        assert_eq!(server.methods("fay").await["default_method"], next);
    }
    assert_eq!(server.methods("fay").await["methods"], json!([]));
    let audit = server.audit("fay").await;
    assert_eq!(audit[0]["action"], "default_method.changed");
    assert_eq!(audit[0]["previous"], "voice_office");
    assert_eq!(audit[1]["action"], "method.deleted");
    assert_eq!(audit[1]["kind"], "phone");
    assert_eq!(audit[1]["phone"], "+31*******67");
}

#[tokio::test]
async fn deleting_a_method_that_is_not_the_default_keeps_the_default() {
    let (_stub, server) = setup().await;
    let (_, a) = server.add_method("gus", app("a")).await;
    let (_, b) = server.add_method("gus", app("b")).await;
    assert_eq!(
        server
            .delete_method("gus", a["id"].as_str().unwrap())
            .await
            .0,
        204
    );
    // Another authenticator app still backs the default.
    assert_eq!(
        server.methods("gus").await["default_method"],
        "authenticator_push"
    );
    assert_eq!(
        server
            .delete_method("gus", b["id"].as_str().unwrap())
            .await
            .0,
        204
    );
    assert_eq!(server.methods("gus").await["default_method"], Value::Null);
}

#[tokio::test]
async fn unknown_or_malformed_method_ids_are_404() {
    let (_stub, server) = setup().await;
    let (_, a) = server.add_method("hal", app("a")).await;
    let id = a["id"].as_str().unwrap();
    for bad in [
        "0b5e0c1e-0000-4000-8000-000000000000",
        "nope",
        id.to_uppercase().as_str(),
        format!("{id}0").as_str(),
        "3179e48a-750b-4051-897c-87b9720928f7",
    ] {
        let (status, body) = server.delete_method("hal", bad).await;
        assert_eq!((status, problem_type(&body)), (404, "not-found"), "{bad}");
    }
    // Another user's method is unknown for this one.
    assert_eq!(server.delete_method("hal2", id).await.0, 404);
    assert_eq!(server.delete_method("hal", id).await.0, 204);
    assert_eq!(server.delete_method("hal", id).await.0, 404);
}

#[tokio::test]
async fn the_mobile_cannot_go_while_an_alternate_mobile_exists() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "ida", "+14255550141", "mobile")
        .await;
    server
        .approve_registration(&stub, "ida", "+14255550142", "alternate_mobile")
        .await;
    let mobile = "3179e48a-750b-4051-897c-87b9720928f7";
    let alternate = "b6332ec1-7057-4abe-9331-3d72feddfe41";
    let (status, body) = server.delete_method("ida", mobile).await;
    assert_eq!((status, problem_type(&body)), (409, "conflict"));
    assert_eq!(
        server.methods("ida").await["methods"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, doc) = server.set_default("ida", "voice_alternate_mobile").await;
    assert_eq!(
        (status, &doc["default_method"]),
        (200, &json!("voice_alternate_mobile"))
    );
    assert_eq!(server.delete_method("ida", alternate).await.0, 204);
    assert_eq!(
        server.methods("ida").await["default_method"],
        "voice_mobile"
    );
    assert_eq!(server.delete_method("ida", mobile).await.0, 204);
}

#[tokio::test]
async fn the_default_must_be_a_backed_sign_in_option() {
    let (stub, server) = setup().await;
    server
        .add_method("jo", json!({"kind": "email", "address": "jo@contoso.com"}))
        .await;
    server
        .add_method(
            "jo",
            json!({"kind": "security_questions", "answered_count": 5}),
        )
        .await;
    // Password-reset-only methods back no sign-in option.
    assert_eq!(server.methods("jo").await["default_method"], Value::Null);
    for option in ["email", "security_questions"] {
        let (status, body) = server.set_default("jo", option).await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-default-method")
        );
        assert!(body["detail"].as_str().unwrap().contains("password reset"));
    }
    for option in [
        "voice_mobile",
        "sms",
        "security_key",
        "authenticator_code",
        "carrier_pigeon",
    ] {
        let (status, body) = server.set_default("jo", option).await;
        assert_eq!(
            (status, problem_type(&body)),
            (422, "invalid-default-method"),
            "{option}"
        );
    }
    let path = "/v1/tenants/contoso/users/jo/default-method";
    for body in [
        json!({}),
        json!({"default_method": null}),
        json!({"default_method": "sms", "x": 1}),
    ] {
        let (status, problem) = server.put_json(PORTAL_KEY, path, body.clone()).await;
        assert_eq!(
            (status, problem_type(&problem)),
            (422, "invalid-request"),
            "{body}"
        );
    }
    server
        .approve_registration(&stub, "jo", "+14255550143", "mobile")
        .await;
    assert_eq!(server.methods("jo").await["default_method"], "voice_mobile");
    let (status, doc) = server.set_default("jo", "sms").await;
    assert_eq!(status, 200);
    assert_eq!(doc["default_method"], "sms");
    assert_eq!(doc["methods"].as_array().unwrap().len(), 3);
    // Setting the same default again changes nothing and logs nothing.
    let before = server.audit("jo").await.len();
    assert_eq!(server.set_default("jo", "sms").await.0, 200);
    assert_eq!(server.audit("jo").await.len(), before);
}

#[tokio::test]
async fn the_audit_lists_changes_newest_first_with_masked_numbers() {
    let (stub, server) = setup().await;
    server
        .approve_registration(&stub, "kim", "+14255550144", "mobile")
        .await;
    let (_, a) = server.add_method("kim", app("a")).await;
    server.set_default("kim", "authenticator_code").await;
    server.delete_method("kim", a["id"].as_str().unwrap()).await;
    let events = server.audit("kim").await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "default_method.changed",
            "method.deleted",
            "default_method.changed",
            "method.registered",
            "default_method.changed",
            "method.registered",
            "verification.approved",
        ]
    );
    assert_eq!(events[0]["method"], "voice_mobile");
    assert_eq!(events[0]["reason"], "method_deleted");
    assert_eq!(events[2]["method"], "authenticator_code");
    assert_eq!(events[2]["reason"], "requested");
    assert_eq!(events[3]["kind"], "authenticator_app");
    assert_eq!(events[5]["phone"], "+1********44");
    assert_eq!(events[6]["outcome"], "approved");
    assert_eq!(events[6]["verification"].as_str().unwrap().len(), 48);
    for e in &events {
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
        assert!(!e.to_string().contains("4255550144"), "{e}");
    }
    let path = "/v1/tenants/contoso/users/kim/audit";
    let (status, body) = server
        .get_json(PORTAL_KEY, &format!("{path}?limit=2"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
    for bad in ["0", "201", "x", "-1"] {
        let (status, _) = server
            .get_json(PORTAL_KEY, &format!("{path}?limit={bad}"))
            .await;
        assert_eq!(status, 422, "{bad}");
    }
    assert_eq!(
        server
            .get_json(PORTAL_KEY, &format!("{path}?since=1"))
            .await
            .0,
        422
    );
    assert_eq!(server.audit("nobody").await, Vec::<Value>::new());
}
