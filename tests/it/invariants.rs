//! Rules that hold whatever happens: tenant isolation, consistency under concurrent requests,
//! a valid default after any sequence of operations (proptest), an OpenAPI entry per route.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::methods::key;
use crate::support::{
    ADMIN_KEY, OTHER_KEY, PORTAL_KEY, StubTwilio, TestServer, open_policy, redis,
};

async fn setup() -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    (stub, server)
}

fn app() -> Value {
    json!({"kind": "authenticator_app", "display_name": "app"})
}

fn id(m: &Value) -> String {
    m["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn one_tenants_key_never_reads_or_changes_another_tenants_data() {
    let (_stub, server) = setup().await;
    let (_, m) = server.add_method("zoe", app()).await;
    let contoso = "/v1/tenants/contoso/users/zoe";
    let method = format!("{contoso}/methods/{}", id(&m));
    let attempts = [
        server
            .get_json(OTHER_KEY, &format!("{contoso}/methods"))
            .await,
        server
            .post_json(OTHER_KEY, &format!("{contoso}/methods"), app())
            .await,
        server.delete(OTHER_KEY, &method).await,
        server
            .put_json(
                OTHER_KEY,
                &format!("{contoso}/default-method"),
                json!({"default_method": "authenticator_code"}),
            )
            .await,
        server
            .get_json(OTHER_KEY, &format!("{contoso}/audit"))
            .await,
        server
            .get_json(OTHER_KEY, "/v1/tenants/contoso/policy")
            .await,
        server
            .put_json(OTHER_KEY, "/v1/tenants/contoso/policy", open_policy())
            .await,
        // An admin key is an admin of its own tenant only.
        server
            .get_json(ADMIN_KEY, "/v1/tenants/fabrikam/policy")
            .await,
        server
            .get_json(ADMIN_KEY, "/v1/tenants/fabrikam/users/zoe/methods")
            .await,
    ];
    for (i, (status, body)) in attempts.into_iter().enumerate() {
        assert_eq!(status, 403, "attempt {i}: {body}");
    }
    // Through its own path, fabrikam's "zoe" is another user, with nothing.
    let fabrikam = "/v1/tenants/fabrikam/users/zoe";
    let (status, doc) = server
        .get_json(OTHER_KEY, &format!("{fabrikam}/methods"))
        .await;
    assert_eq!((status, &doc["methods"]), (200, &json!([])));
    let (_, audit) = server
        .get_json(OTHER_KEY, &format!("{fabrikam}/audit"))
        .await;
    assert_eq!(audit["events"], json!([]));
    let (status, _) = server
        .delete(OTHER_KEY, &format!("{fabrikam}/methods/{}", id(&m)))
        .await;
    assert_eq!(status, 404);
    // Contoso's policy does not reach fabrikam.
    let mut no_email = open_policy();
    no_email["methods"]["email"]["enabled"] = json!(false);
    server.set_policy(no_email).await;
    let email = json!({"kind": "email", "address": "zoe@fabrikam.com"});
    let (status, _) = server
        .post_json(OTHER_KEY, &format!("{fabrikam}/methods"), email)
        .await;
    assert_eq!(status, 201);
    // And contoso's data is untouched.
    let doc = server.methods("zoe").await;
    assert_eq!(doc["methods"].as_array().unwrap().len(), 1);
    assert_eq!(doc["default_method"], "authenticator_push");
    assert_eq!(server.audit("zoe").await.len(), 2);
}

#[tokio::test]
async fn racing_deletes_and_set_default_leave_a_consistent_document() {
    let (_stub, server) = setup().await;
    for round in 0..8u8 {
        let user = format!("race{round}");
        let user = user.as_str();
        let a = id(&server.add_method(user, app()).await.1);
        let k = id(&server.add_method(user, key(round)).await.1);
        assert_eq!(server.set_default(user, "security_key").await.0, 200);

        // Two deletes of the same method: exactly one wins.
        let (first, second) = tokio::join!(
            server.delete_method(user, &k),
            server.delete_method(user, &k)
        );
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(statuses, [204, 404]);
        assert_eq!(
            server.methods(user).await["default_method"],
            "authenticator_push"
        );

        // A delete and a set-default naming what it deletes: either order ends the same.
        let k2 = id(&server.add_method(user, key(100 + round)).await.1);
        let (deleted, set) = tokio::join!(
            server.delete_method(user, &k2),
            server.set_default(user, "security_key")
        );
        assert_eq!(deleted.0, 204);
        assert!(
            set.0 == 200
                || (set.0 == 422
                    && set.1["type"]
                        .as_str()
                        .unwrap()
                        .ends_with("invalid-default-method")),
            "{set:?}"
        );
        let doc = server.methods(user).await;
        assert_eq!(doc["methods"].as_array().unwrap().len(), 1);
        assert_eq!(doc["default_method"], "authenticator_push");

        // Two deletes of different methods, one of them behind the default.
        let k3 = id(&server.add_method(user, key(200 - round)).await.1);
        let (x, y) = tokio::join!(
            server.delete_method(user, &a),
            server.delete_method(user, &k3)
        );
        assert_eq!((x.0, y.0), (204, 204));
        let doc = server.methods(user).await;
        assert_eq!(doc, json!({"default_method": null, "methods": []}));
        let audit = server.audit(user).await;
        let deleted = audit
            .iter()
            .filter(|e| e["action"] == "method.deleted")
            .count();
        assert_eq!(deleted, 4, "one audit entry per successful delete");
        let mut conn = redis().await;
        let tag = callverify::ids::user_tag(
            &callverify::ids::TenantId::parse("contoso").unwrap(),
            &callverify::ids::UserId::parse(user).unwrap(),
        );
        let stored: Option<String> = redis::cmd("HGET")
            .arg(format!("{}:{{{tag}}}:methods", server.prefix))
            .arg("default")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(stored, None);
    }
}

#[tokio::test]
async fn every_routed_v1_path_is_in_the_openapi_document_and_routed() {
    let (_stub, server) = setup().await;
    let r = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    // The router is built from this list; each entry must be documented with its method.
    let routes = callverify::api::routes();
    for route in &routes {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(
            paths.get(route.path).and_then(|p| p.get(&method)).is_some(),
            "{} {} is routed but not in /openapi.json",
            route.method,
            route.path
        );
    }

    // And each documented operation answers from a handler, not from the fallback.
    let fallback = server
        .get_json(ADMIN_KEY, "/v1/tenants/contoso/nowhere")
        .await;
    assert_eq!(fallback.0, 404);
    assert_eq!(fallback.1["detail"], "no such route");
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/v1/"), "{path}");
        let id = if path.contains("/methods/") {
            "0b5e0c1e-0000-4000-8000-000000000000".to_owned()
        } else {
            "0".repeat(48)
        };
        let url = path
            .replace("{tenant}", "contoso")
            .replace("{user}", "openapi-probe")
            .replace("{id}", &id);
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .any(|(code, r)| code.starts_with('4')
                        && r["content"]["application/problem+json"].is_object()),
                "{method} {path} documents no problem+json error"
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = server
                .http
                .request(method.clone(), server.url(&url))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let (status, body) = crate::support::read(r).await;
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !(status == 404 && body["detail"] == "no such route"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert_eq!(operations, routes.len());
    // The probes created nothing.
    let (_, doc) = server
        .get_json(
            PORTAL_KEY,
            "/v1/tenants/contoso/users/openapi-probe/methods",
        )
        .await;
    assert_eq!(doc["methods"], json!([]));
}

/// One step of a random sequence.
#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    Delete(usize),
    SetDefault(usize),
    Register(usize),
    TogglePolicy(usize),
}

const OPTIONS: [&str; 8] = [
    "security_key",
    "authenticator_push",
    "authenticator_code",
    "voice_mobile",
    "sms",
    "voice_alternate_mobile",
    "voice_office",
    "email",
];
const PHONES: [(&str, &str); 3] = [
    ("mobile", "+14255550160"),
    ("alternate_mobile", "+14255550161"),
    ("office", "+31201234570"),
];
const TOGGLES: [&str; 6] = [
    "/methods/phone/enabled",
    "/methods/phone/office_phone_allowed",
    "/methods/authenticator_app/enabled",
    "/methods/security_key/enabled",
    "/methods/email/enabled",
    "/methods/security_questions/enabled",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Add),
        3 => any::<usize>().prop_map(Op::Delete),
        3 => (0..OPTIONS.len()).prop_map(Op::SetDefault),
        2 => (0..PHONES.len()).prop_map(Op::Register),
        2 => (0..TOGGLES.len()).prop_map(Op::TogglePolicy),
    ]
}

/// Whether `method` backs the default option `option` (the rule, restated independently).
fn backs(option: &str, m: &Value) -> bool {
    let phone = |t: &str| m["kind"] == "phone" && m["phone_type"] == t;
    match option {
        "security_key" => m["kind"] == "security_key",
        "authenticator_push" | "authenticator_code" => m["kind"] == "authenticator_app",
        "voice_mobile" | "sms" => phone("mobile"),
        "voice_alternate_mobile" => phone("alternate_mobile"),
        "voice_office" => phone("office"),
        _ => false,
    }
}

fn enabled(option: &str, policy: &Value) -> bool {
    let on = |p: &str| policy.pointer(p) == Some(&json!(true));
    match option {
        "security_key" => on("/methods/security_key/enabled"),
        "authenticator_push" | "authenticator_code" => on("/methods/authenticator_app/enabled"),
        "voice_office" => on("/methods/phone/enabled") && on("/methods/phone/office_phone_allowed"),
        _ => on("/methods/phone/enabled"),
    }
}

async fn step(stub: &StubTwilio, server: &TestServer, user: &str, policy: &mut Value, op: &Op) {
    let status = match op {
        Op::Add(kind) => {
            let body = match kind {
                0 => app(),
                1 => key(rand::RngExt::random(&mut rand::rng())),
                2 => json!({"kind": "email", "address": "p@contoso.com"}),
                _ => json!({"kind": "security_questions", "answered_count": 3}),
            };
            let (status, _) = server.add_method(user, body).await;
            assert!([201, 409, 422].contains(&status), "{op:?}: {status}");
            status
        }
        Op::Delete(n) => {
            let doc = server.methods(user).await;
            let methods = doc["methods"].as_array().unwrap();
            let target = match methods.len() {
                0 => "0b5e0c1e-0000-4000-8000-000000000000".to_owned(),
                len => id(&methods[n % len]),
            };
            let (status, _) = server.delete_method(user, &target).await;
            assert!([204, 404, 409].contains(&status), "{op:?}: {status}");
            assert_eq!(status == 404, methods.is_empty(), "{op:?}");
            status
        }
        Op::SetDefault(i) => {
            let (status, body) = server.set_default(user, OPTIONS[*i]).await;
            assert!([200, 422].contains(&status), "{op:?}: {status}");
            if status == 200 {
                assert_eq!(body["default_method"], OPTIONS[*i]);
            }
            status
        }
        Op::Register(i) => {
            let (phone_type, number) = PHONES[*i];
            let (status, _) = server
                .approve_registration(stub, user, number, phone_type)
                .await;
            assert!([202, 409, 422].contains(&status), "{op:?}: {status}");
            status
        }
        Op::TogglePolicy(i) => {
            let slot = policy.pointer_mut(TOGGLES[*i]).unwrap();
            *slot = json!(!slot.as_bool().unwrap());
            server.set_policy(policy.clone()).await;
            200
        }
    };
    let _ = status;
}

/// After every step: the default is null or an enabled option backed by a listed method, and
/// null only when no enabled option is backed; the stored default names an existing method.
async fn check(server: &TestServer, user: &str, policy: &Value, history: &[Op]) {
    let doc = server.methods(user).await;
    let methods = doc["methods"].as_array().unwrap();
    let backed_enabled = |o: &str| enabled(o, policy) && methods.iter().any(|m| backs(o, m));
    match doc["default_method"].as_str() {
        Some(d) => assert!(backed_enabled(d), "{history:?}\n{doc}"),
        None => assert!(
            !OPTIONS.iter().any(|o| backed_enabled(o)),
            "{history:?}\n{doc}"
        ),
    }
    let has = |t: &str| methods.iter().any(|m| m["phone_type"] == t);
    assert!(
        !has("alternate_mobile") || has("mobile"),
        "{history:?}\n{doc}"
    );

    let tag = callverify::ids::user_tag(
        &callverify::ids::TenantId::parse("contoso").unwrap(),
        &callverify::ids::UserId::parse(user).unwrap(),
    );
    let stored: Option<String> = redis::cmd("HGET")
        .arg(format!("{}:{{{tag}}}:methods", server.prefix))
        .arg("default")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    if let Some(stored) = stored {
        assert!(
            methods.iter().any(|m| backs(&stored, m)),
            "stored default {stored} unbacked: {history:?}\n{doc}"
        );
    }
}

#[test]
fn the_default_stays_valid_under_random_operation_sequences() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stub, server) = rt.block_on(setup());
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..=12), |ops| {
            let user = format!("prop{}", cases.fetch_add(1, Ordering::Relaxed));
            rt.block_on(async {
                let mut policy = open_policy();
                server.set_policy(policy.clone()).await;
                for (i, op) in ops.iter().enumerate() {
                    step(&stub, &server, &user, &mut policy, op).await;
                    check(&server, &user, &policy, &ops[..=i]).await;
                }
            });
            Ok(())
        })
        .unwrap();
}
