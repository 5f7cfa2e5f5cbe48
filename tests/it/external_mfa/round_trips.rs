//! The authorization POST names its call's verification in the same write that stores the
//! sign-in (no separate "which call" write before the page), counted with `MONITOR` as
//! `start_round_trips.rs` counts a start; and a sign-in whose named verification does not exist
//! (yet) reads `calling` for the grace period, `failed` after it.

use std::time::{Duration, Instant};

use callverify::external_mfa::signin::{MAX_CALLS, PENDING_GRACE_SECS};
use callverify::ids::VerificationId;
use serde_json::Value;

use super::entra::{self, Page, field};
use super::provider::setup_with_stub;
use super::{OID, Setup};
use crate::start_round_trips::{Monitor, scheduled};
use crate::support::{cluster_urls, redis, redis_config, unique_prefix};

/// The sign-in id in the calling page's status URL (`…/signin/{id}/status`).
fn signin_id(page: &Page) -> String {
    let url = page
        .attribute("id=\"signin\"", "data-status-url")
        .unwrap_or_else(|| panic!("a calling page: {}", page.body));
    url.rsplit('/').nth(1).unwrap().to_owned()
}

fn signin_key(s: &Setup, id: &str) -> String {
    format!("{}:{{xmfa:{id}}}:signin", s.server.prefix)
}

async fn hget(key: &str, field: &str) -> Option<String> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

async fn redis_now() -> i64 {
    let (secs, _): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    secs
}

/// The page's status at once (no `known`: the long-poll answers without waiting).
async fn status_now(s: &Setup, page: &Page) -> Value {
    let url = page.attribute("id=\"signin\"", "data-status-url").unwrap();
    s.server
        .http
        .get(format!("{}{url}", s.server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The commands of one authorization POST with the sign-in's key written `signin`: on a single
/// node the sign-in's create (which names the call), the user's methods, the verification's
/// create (with its schedule), then the background dial's gate + mark and `placed`.
#[tokio::test]
async fn the_authorization_post_names_its_call_in_the_write_that_stores_the_sign_in() {
    let (s, stub) = setup_with_stub().await;
    let request = |nonce: &str| entra::request_fields(&s.entra.sign(&s.entra.hint(OID)), nonce);
    // Warm-up (scripts loaded on every node the POST touches), canceled so the user may be
    // called again, and out of the reconciliation index (the cancel's removal is batched).
    let warm = s.authorize(&request("n-trips-warm")).await;
    placed(&stub, 2).await;
    let warm_vf = hget(&signin_key(&s, &signin_id(&warm)), "vf")
        .await
        .unwrap();
    let canceled = s.press(&warm, "cancel").await;
    assert!(canceled.post_back().is_some(), "{}", canceled.body);
    let since = Instant::now();
    while scheduled(&s.server.prefix).await.contains(&warm_vf) {
        assert!(since.elapsed() < Duration::from_secs(5), "still scheduled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let Some(monitor) = Monitor::start().await else {
        return;
    };
    let page = s.authorize(&request("n-trips")).await;
    let commands = monitor.commands(&s.server.prefix).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("re calling +1"), "{}", page.body);
    let id = signin_id(&page);
    let key = signin_key(&s, &id);
    let vf = hget(&key, "vf").await.expect("the sign-in names its call");
    let commands: Vec<String> = commands
        .iter()
        .map(|c| c.replace(&format!("{{xmfa:{id}}}:signin"), "signin"))
        .collect();
    eprintln!("the authorization POST's commands: {commands:?}");
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.contains("signin") || c.contains("xmfa"))
            .count(),
        1,
        "the sign-in is written once, as it is created: {commands:?}"
    );
    assert_eq!(hget(&key, "phone").await, None, "no masked number kept");
    assert!(hget(&key, "vf_at").await.is_some());
    let tag = &vf[..16];
    let (signin, methods) = (
        "EVALSHA signin".to_owned(),
        format!("HGETALL {{{tag}}}:methods"),
    );
    let (create, gate) = (
        format!("EVALSHA {{{tag}}}:vf:{vf}"),
        "EVALSHA {provider:twilio}:circuit".to_owned(),
    );
    if cluster_urls().is_some() {
        // The sign-in, the index, the user's keys and the account's keys are four slots, whose
        // masters are watched one after the other (no order across them): the POST's schedule
        // and create, and the dial's gate, mark and `placed`, each a round trip.
        let mut expected = vec![
            signin,
            methods,
            "EVALSHA {recon}:due".to_owned(),
            create.clone(),
            gate,
            create.clone(),
            create,
        ];
        let mut seen = commands.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{commands:?}");
    } else {
        // The POST's own three, in order (its create schedules the verification too), then the
        // background dial's gate + mark and `placed` (the dial may start before the page is
        // written).
        assert_eq!(
            commands,
            [signin, methods, create.clone(), gate, create],
            "{commands:?}"
        );
    }
    placed(&stub, 3).await; // registration, warm-up, this sign-in
    let status = status_now(&s, &page).await;
    assert_eq!(status["status"], "calling", "{status}");
    assert_eq!(status["terminal"], false, "{status}");
}

/// Waits until the stub provider was asked for `calls` calls (the dial runs after the page).
async fn placed(stub: &crate::support::StubTwilio, calls: usize) {
    let since = Instant::now();
    while stub.calls().len() < calls {
        assert!(since.elapsed() < Duration::from_secs(5), "not placed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stub.calls().len(), calls);
}

#[tokio::test]
async fn a_named_call_not_stored_yet_reads_calling_then_failed_after_the_grace_period() {
    let (s, _stub) = setup_with_stub().await;
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s
        .authorize(&entra::request_fields(&hint, "n-pending"))
        .await;
    let key = signin_key(&s, &signin_id(&page));
    let placed = hget(&key, "vf").await.unwrap();
    // The sign-in names a call whose verification is not stored (yet): as a concurrent status
    // poll or repeated POST sees it while the start is being admitted.
    let pending = VerificationId::generate_for_tag(&placed[..16]);
    let named_at = |at: i64| {
        let key = key.clone();
        let pending = pending.as_str().to_owned();
        async move {
            let () = redis::cmd("HSET")
                .arg(&key)
                .arg("vf")
                .arg(&pending)
                .arg("vf_at")
                .arg(at)
                .query_async(&mut redis().await)
                .await
                .unwrap();
        }
    };
    named_at(redis_now().await).await;
    let status = status_now(&s, &page).await;
    assert_eq!(status["status"], "calling", "{status}");
    assert_eq!(status["terminal"], false, "{status}");
    assert_eq!(status["can_retry"], false, "{status}");
    // "Continue" while it is being created: the calling page again, nothing posted back.
    let shown = s.press(&page, "finish").await;
    assert!(shown.post_back().is_none(), "{}", shown.body);
    assert_eq!(
        shown.attribute("id=\"signin\"", "data-status").as_deref(),
        Some("calling")
    );

    // Named longer ago than the grace period: never stored (or undone), failed.
    named_at(redis_now().await - PENDING_GRACE_SECS - 1).await;
    let status = status_now(&s, &page).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["terminal"], true, "{status}");
    // A sign-in stored before `vf_at` existed names only calls that were stored: failed at once.
    let () = redis::cmd("HDEL")
        .arg(&key)
        .arg("vf_at")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(status_now(&s, &page).await["status"], "failed");
    let (_, fields) = s.press(&page, "finish").await.post_back().unwrap();
    assert_eq!(field(&fields, "error"), Some("temporarily_unavailable"));
    assert_eq!(
        field(&fields, "error_description"),
        Some("the call could not be started")
    );
}

/// The store's side: the first call is named as the sign-in is created (a repeated create keeps
/// it); "Call again" counts and names in one script, and over the limit counts without naming.
#[tokio::test]
async fn a_sign_in_is_created_and_called_again_with_its_call_named_in_the_same_script() {
    let prefix = unique_prefix();
    let store = callverify::store::Store::open(&redis_config(&prefix, 2000))
        .await
        .unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    let tag = "0123456789abcdef";
    let first = VerificationId::generate_for_tag(tag);
    let before = redis_now().await;
    assert!(
        store
            .create_signin(id, "{}", Some(&first), 60)
            .await
            .unwrap()
    );
    let stored = store.signin(id).await.unwrap().unwrap();
    assert_eq!(stored.verification.as_deref(), Some(first.as_str()));
    assert_eq!(stored.calls, 1);
    let at = stored.verification_at.expect("vf_at");
    assert!(at >= before && at <= redis_now().await, "{at}");
    // The same POST again: the sign-in and its call stay.
    let other = VerificationId::generate_for_tag(tag);
    assert!(
        !store
            .create_signin(id, "{}", Some(&other), 60)
            .await
            .unwrap()
    );
    assert_eq!(store.signin(id).await.unwrap().unwrap(), stored);

    let mut last = first;
    for calls in 2..=MAX_CALLS + 1 {
        let again = VerificationId::generate_for_tag(tag);
        let counted = store
            .count_signin_call(id, &again, MAX_CALLS)
            .await
            .unwrap();
        assert_eq!(counted, Some(calls));
        if calls <= MAX_CALLS {
            last = again;
        }
        let now = store.signin(id).await.unwrap().unwrap();
        assert_eq!(now.calls, calls);
        assert_eq!(
            now.verification.as_deref(),
            Some(last.as_str()),
            "call {calls}: named only within the limit"
        );
    }
    // A user who cannot be called: the sign-in names no call.
    let nameless = "fedcba9876543210fedcba9876543210";
    assert!(store.create_signin(nameless, "{}", None, 60).await.unwrap());
    let stored = store.signin(nameless).await.unwrap().unwrap();
    assert_eq!((stored.verification, stored.verification_at), (None, None));
    // Gone: nothing counted, nothing re-created.
    let gone = "00000000000000000000000000000000";
    let again = VerificationId::generate_for_tag(tag);
    assert_eq!(
        store
            .count_signin_call(gone, &again, MAX_CALLS)
            .await
            .unwrap(),
        None
    );
    assert!(store.signin(gone).await.unwrap().is_none());
    for key in [id, nameless] {
        let () = redis::cmd("DEL")
            .arg(store.keys().external_mfa_signin(key))
            .query_async(&mut redis().await)
            .await
            .unwrap();
    }
}

/// The same POST four times at once (a double submit, a retrying proxy): one sign-in, one call;
/// every answer is its calling page — those that look before the call is stored read `calling`
/// (the grace period), never `failed`.
#[tokio::test]
async fn the_same_post_four_times_at_once_places_one_call() {
    let (s, stub) = setup_with_stub().await;
    let before = stub.calls().len();
    let fields = entra::request_fields(&s.entra.sign(&s.entra.hint(OID)), "n-at-once");
    let (a, b, c, d) = tokio::join!(
        s.authorize(&fields),
        s.authorize(&fields),
        s.authorize(&fields),
        s.authorize(&fields)
    );
    let ids: Vec<String> = [&a, &b, &c, &d].iter().map(|p| signin_id(p)).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one sign-in: {ids:?}");
    for page in [&a, &b, &c, &d] {
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(
            page.attribute("id=\"signin\"", "data-status").as_deref(),
            Some("calling"),
            "{}",
            page.body
        );
    }
    placed(&stub, before + 1).await;
    // Nothing more is dialled afterwards either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        stub.calls().len(),
        before + 1,
        "one call for the four POSTs"
    );
    assert_eq!(status_now(&s, &a).await["status"], "calling");
}
