//! Abuse and fraud protection against a stub Twilio: rate limits at their boundaries, one live
//! call per user, outbound pacing, the fraud block and its lifting, the number lookup.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::stub_twilio::{Mode, StubCall, gather_action};
use crate::support::{ADMIN_KEY, Options, PORTAL_KEY, StubTwilio, TestServer};

const PROBLEMS: &str = "https://callverify.dev/problems/";

async fn server_with(extra: &str) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let options = Options {
        extra,
        production_limits: true,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    (stub, server)
}

async fn server_paced(provider: &str) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let options = Options {
        provider,
        production_limits: true,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    (stub, server)
}

/// POSTs a registration, optionally as coming through a proxy that forwards `ip`; returns the
/// status, body and `Retry-After`.
async fn register_from(
    server: &TestServer,
    user: &str,
    number: &str,
    forwarded_for: Option<&str>,
) -> (u16, Value, Option<u64>) {
    let mut req = server
        .http
        .post(server.url(&format!("/v1/tenants/contoso/users/{user}/verifications")))
        .bearer_auth(PORTAL_KEY)
        .json(&json!({"phone_number": number, "purpose": "registration"}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    let r = req.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let (status, body) = crate::support::read(r).await;
    (status, body, retry_after)
}

/// Ends the last placed call as busy (it still counted: busy calls cost money too).
async fn end_last_call_busy(stub: &StubTwilio) {
    assert_eq!(stub.status(&stub.last_call(), "busy", "1").await, 204);
}

fn assert_limited(status: u16, body: &Value, retry_after: Option<u64>, limit: &str) -> u64 {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["type"], format!("{PROBLEMS}rate-limited"));
    assert_eq!(body["limit"], limit, "{body}");
    let secs = retry_after.expect("Retry-After on a 429");
    assert!(secs >= 1, "{secs}");
    secs
}

#[tokio::test]
async fn the_fifth_call_to_a_number_in_an_hour_passes_and_the_sixth_gets_429() {
    // Spacing off so the hourly per-number limit is the one reached.
    let (stub, server) =
        server_with("[abuse.limits]\nnumber_spacing = { max = 0, window_secs = 30 }").await;
    for i in 0..5 {
        let (status, body, _) =
            register_from(&server, &format!("u{i}"), "+14255550150", None).await;
        assert_eq!(status, 202, "call {}: {body}", i + 1);
        end_last_call_busy(&stub).await;
    }
    let (status, body, retry) = register_from(&server, "u5", "+14255550150", None).await;
    let secs = assert_limited(status, &body, retry, "number");
    assert!((3500..=3600).contains(&secs), "{secs}");
    assert_eq!(stub.calls().len(), 5, "nothing dialled for the sixth");
    // The refused request left no verification behind holding the user's live slot.
    let (status, _, _) = register_from(&server, "u5", "+14255550151", None).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn the_fifth_call_for_a_user_in_an_hour_passes_and_the_sixth_gets_429() {
    let (stub, server) = server_with("").await;
    for i in 0..5 {
        let (status, body, _) =
            register_from(&server, "uma", &format!("+1425555016{i}"), None).await;
        assert_eq!(status, 202, "call {}: {body}", i + 1);
        end_last_call_busy(&stub).await;
    }
    let (status, body, retry) = register_from(&server, "uma", "+14255550169", None).await;
    assert_limited(status, &body, retry, "user");
    assert_eq!(stub.calls().len(), 5);
}

#[tokio::test]
async fn a_second_call_to_a_number_within_the_spacing_gets_429_then_passes_after_it() {
    let (stub, server) =
        server_with("[abuse.limits]\nnumber_spacing = { max = 1, window_secs = 1 }").await;
    let (status, _, _) = register_from(&server, "vic", "+14255550170", None).await;
    assert_eq!(status, 202);
    let (status, body, retry) = register_from(&server, "wes", "+14255550170", None).await;
    assert_eq!(assert_limited(status, &body, retry, "number_spacing"), 1);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, body, _) = register_from(&server, "wes", "+14255550170", None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(stub.calls().len(), 2);
}

#[tokio::test]
async fn a_tenants_own_ceiling_overrides_the_default_and_binds_only_that_tenant() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start_with(
        &stub.base,
        Options {
            contoso: "limits = { tenant = { max = 3, window_secs = 60 } }",
            production_limits: true,
            ..Options::default()
        },
    )
    .await;
    for i in 0..3 {
        let (status, _, _) =
            register_from(&server, &format!("t{i}"), &format!("+1425555018{i}"), None).await;
        assert_eq!(status, 202);
    }
    let (status, body, retry) = register_from(&server, "t3", "+14255550183", None).await;
    assert_limited(status, &body, retry, "tenant");
    // fabrikam keeps the default ceiling.
    let (status, body) = server
        .post_json(
            crate::support::OTHER_KEY,
            "/v1/tenants/fabrikam/users/t3/verifications",
            json!({"phone_number": "+14255550184", "purpose": "registration"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(stub.calls().len(), 4);
}

#[tokio::test]
async fn the_per_ip_limit_counts_the_address_the_trusted_proxy_forwarded() {
    let (stub, server) = server_with(
        "[abuse]\nclient_ip_header = \"x-forwarded-for\"\n[abuse.limits]\nip = { max = 2, window_secs = 600 }",
    )
    .await;
    // What the client claimed comes first; the proxy appended the real address last.
    for (i, chain) in ["1.1.1.1, 203.0.113.7", "2.2.2.2, 203.0.113.7"]
        .iter()
        .enumerate()
    {
        let (status, _, _) = register_from(
            &server,
            &format!("ip{i}"),
            &format!("+1425555019{i}"),
            Some(chain),
        )
        .await;
        assert_eq!(status, 202);
    }
    let (status, body, retry) =
        register_from(&server, "ip2", "+14255550192", Some("203.0.113.7")).await;
    assert_limited(status, &body, retry, "ip");
    let (status, _, _) = register_from(&server, "ip2", "+14255550192", Some("198.51.100.1")).await;
    assert_eq!(status, 202, "another client is not limited");
    assert_eq!(stub.calls().len(), 3);
}

#[tokio::test]
async fn calls_the_provider_refused_do_not_count() {
    let (stub, server) = server_with("").await;
    stub.set_mode(Mode::Rejected400);
    for user in ["xia", "yan"] {
        let (status, body, _) = register_from(&server, user, "+14255550200", None).await;
        assert_eq!(status, 202);
        assert_eq!(body["reason"], "invalid_number", "{body}");
    }
    stub.set_mode(Mode::Created);
    let (status, body, _) = register_from(&server, "zed", "+14255550200", None).await;
    assert_eq!(
        (status, &body["status"]),
        (202, &json!("calling")),
        "{body}"
    );
}

#[tokio::test]
async fn a_second_request_while_a_call_is_live_gets_409_with_the_live_id() {
    let (stub, server) = server_with("").await;
    let (_, first, _) = register_from(&server, "amy", "+14255550210", None).await;
    let (status, body, _) = register_from(&server, "amy", "+14255550211", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], format!("{PROBLEMS}verification-in-progress"));
    assert_eq!(body["verification_id"], first["id"]);
    assert_eq!(stub.calls().len(), 1);
    // Another user is not affected; once the call ends the user may try again.
    assert_eq!(
        register_from(&server, "ben", "+14255550212", None).await.0,
        202
    );
    let first_call = StubCall {
        request: stub.calls()[0].clone(),
    };
    assert_eq!(stub.status(&first_call, "no-answer", "2").await, 204);
    let (status, body, _) = register_from(&server, "amy", "+14255550211", None).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn a_fraud_report_blocks_the_user_until_an_admin_unblocks() {
    let (stub, server) = server_with("").await;
    let (_, v, _) = register_from(&server, "cruz", "+14255550220", None).await;
    let call = stub.last_call();
    let (_, twiml) = stub.answer(&call).await;
    let (_, confirm) = stub.press(&call, &gather_action(&twiml), "0").await;
    let (_, closing) = stub.press(&call, &gather_action(&confirm), "#").await;
    assert!(closing.contains("reported this call as fraud"), "{closing}");
    assert_eq!(
        server.verification(v["id"].as_str().unwrap()).await["status"],
        "fraud_reported"
    );

    let (status, body, _) = register_from(&server, "cruz", "+14255550221", None).await;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["type"], format!("{PROBLEMS}user-blocked"));
    assert_eq!(stub.calls().len(), 1, "a blocked user is not called");
    let blocked = crate::support::keys_under(&server.prefix)
        .await
        .into_iter()
        .find(|k| k.ends_with(":blocked"))
        .expect("block key");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&blocked)
        .query_async(&mut crate::support::redis().await)
        .await
        .unwrap();
    assert!((90 * 86_400 - 60..=90 * 86_400).contains(&ttl), "{ttl}");

    let path = "/v1/tenants/contoso/users/cruz/block";
    let (status, body) = server.delete(PORTAL_KEY, path).await;
    assert_eq!(status, 403);
    assert_eq!(body["type"], format!("{PROBLEMS}admin-key-required"));
    assert_eq!(
        register_from(&server, "cruz", "+14255550221", None).await.0,
        423
    );
    let (status, _) = server.delete(ADMIN_KEY, path).await;
    assert_eq!(status, 204);
    let (status, body, _) = register_from(&server, "cruz", "+14255550221", None).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn a_burst_is_paced_to_the_accounts_calls_per_second() {
    // One call per second, at most 3.5 s of queue: Redis reserves slots 0, 1, 2 and 3 s after
    // the first, and refuses the rest. What is asserted is what Redis reserved (each call's
    // `queued_ms` is its slot minus its arrival, by Redis' clock), not when calls arrived.
    let (stub, server) = server_paced("calls_per_second = 1\nmax_queue_ms = 3500").await;
    let burst =
        (0..8).map(|i| {
            let server = &server;
            async move {
                register_from(server, &format!("p{i}"), &format!("+1425555023{i}"), None).await
            }
        });
    let answers = futures_util::future::join_all(burst).await;
    assert!(answers.iter().all(|(s, _, _)| *s == 202), "{answers:?}");
    let (placed, refused): (Vec<_>, Vec<_>) = answers
        .iter()
        .partition(|(_, b, _)| b["status"] == "calling");
    assert_eq!(placed.len(), 4, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(_, b, _)| b["reason"] == "provider_throttled"),
        "{refused:?}"
    );
    assert_eq!(stub.calls().len(), 4, "only reserved slots were dialled");
    let mut waits: Vec<u64> = placed
        .iter()
        .map(|(_, b, _)| b["queued_ms"].as_u64().unwrap_or(0))
        .collect();
    waits.sort();
    // The k-th slot is k s after the first; a later arrival waits that much less.
    for (k, wait) in waits.iter().enumerate() {
        let slot_ms = 1000 * k as u64;
        assert!(*wait <= slot_ms && *wait + 500 > slot_ms, "{waits:?}");
    }
}

#[tokio::test]
async fn a_queue_longer_than_allowed_fails_the_call_as_provider_throttled() {
    let (stub, server) = server_paced("calls_per_second = 1\nmax_queue_ms = 300").await;
    assert_eq!(
        register_from(&server, "q0", "+14255550240", None).await.0,
        202
    );
    let (status, body, _) = register_from(&server, "q1", "+14255550241", None).await;
    assert_eq!(status, 202);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "provider_throttled");
    assert_eq!(stub.calls().len(), 1, "nothing dialled");
    // Not dialled, so it neither holds the user's live slot nor counts against a limit.
    let (status, body, _) = register_from(&server, "q1", "+14255550241", None).await;
    assert_eq!(
        (status, &body["reason"]),
        (202, &json!("provider_throttled"))
    );
}

#[tokio::test]
async fn the_number_lookup_says_whether_a_number_is_callable() {
    let (_stub, server) = server_with("").await;
    let get = |path: String| {
        let server = &server;
        async move { server.get_json(PORTAL_KEY, &path).await }
    };
    let base = "/v1/tenants/contoso/phone-numbers";
    let (status, body) = get(format!("{base}/06%2012345678%20x12?region=NL")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"e164": "+31612345678", "country": "NL", "type": "mobile", "valid": true,
               "callable": true, "extension": "12"})
    );
    let (_, body) = get(format!("{base}/%2B449098790000")).await;
    assert_eq!(
        (body["valid"].clone(), body["callable"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(body["type"], "premium_rate");
    assert_eq!(body["reason"], "number-type-blocked");
    let (status, body) = get(format!("{base}/12345")).await;
    assert_eq!(status, 200);
    assert_eq!(body["valid"], false);
    assert_eq!(body["callable"], false);
    assert_eq!(body["reason"], "invalid-phone-number");
    assert!(body["detail"].is_string());
    let (status, _) = get(format!("{base}/0612345678?region=Netherlands")).await;
    assert_eq!(status, 422);
    let (status, _) = server
        .get_json(
            crate::support::OTHER_KEY,
            &format!("{base}/0612345678?region=NL"),
        )
        .await;
    assert_eq!(status, 403);
}
