//! The provider account's gate before a call (`Store::dial_gate`, `dial_gate.lua`): the circuit
//! breaker's check and the pacing slot in one round trip, asserted through what Redis holds.

use callverify::store::Store;
use callverify::store::limits::Gate;

use crate::support::{redis, redis_config, unique_prefix};

const COOLDOWN_MS: u64 = 30_000;
const INTERVAL_US: u64 = 500_000;
const MAX_WAIT_US: u64 = 2_000_000;

async fn store() -> (Store, String) {
    let prefix = unique_prefix();
    let store = Store::open(&redis_config(&prefix, 2000)).await.unwrap();
    (store, prefix)
}

async fn gate(store: &Store, account: &str) -> Gate {
    store
        .dial_gate(account, Some(COOLDOWN_MS), Some((INTERVAL_US, MAX_WAIT_US)))
        .await
        .unwrap()
}

/// The account's next free call slot (Unix µs), if one is reserved.
async fn next_slot(prefix: &str, account: &str) -> Option<u64> {
    redis::cmd("GET")
        .arg(format!("{prefix}:{{provider:{account}}}:next-call"))
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

async fn circuit_field(prefix: &str, account: &str, field: &str) -> Option<u64> {
    redis::cmd("HGET")
        .arg(format!("{prefix}:{{provider:{account}}}:circuit"))
        .arg(field)
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

async fn set_circuit(prefix: &str, account: &str, fields: &[(&str, u64)]) {
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}:{{provider:{account}}}:circuit"))
        .arg(fields)
        .query_async(&mut redis().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_open_circuit_refuses_and_reserves_no_call_slot() {
    let (store, prefix) = store().await;
    set_circuit(
        &prefix,
        "acme",
        &[("failures", 5), ("open_until", u64::MAX / 4)],
    )
    .await;
    let refused = gate(&store, "acme").await;
    assert_eq!(refused.circuit, 0);
    assert_eq!(refused.wait_us, None);
    assert_eq!(
        next_slot(&prefix, "acme").await,
        None,
        "no slot for a call not made"
    );
    // With the breaker off, the same account is paced as usual.
    let paced = store
        .dial_gate("acme", None, Some((INTERVAL_US, MAX_WAIT_US)))
        .await
        .unwrap();
    assert_eq!((paced.circuit, paced.wait_us), (1, Some(0)));
    assert!(next_slot(&prefix, "acme").await.is_some());
}

#[tokio::test]
async fn calls_are_paced_one_interval_apart_until_the_queue_is_full() {
    let (store, prefix) = store().await;
    let first = gate(&store, "paced").await;
    assert_eq!(
        (first.circuit, first.wait_us),
        (1, Some(0)),
        "a clean circuit, a free slot"
    );
    let after_first = next_slot(&prefix, "paced").await.expect("a slot reserved");
    let second = gate(&store, "paced").await;
    let wait = second.wait_us.expect("queued");
    assert!(
        wait > 0 && wait <= INTERVAL_US,
        "waits for the next slot: {wait} µs"
    );
    assert_eq!(
        next_slot(&prefix, "paced").await,
        Some(after_first + INTERVAL_US),
        "the slot after it is the next one"
    );
    // A queue longer than allowed: refused, nothing reserved.
    let full = store
        .dial_gate("paced", Some(COOLDOWN_MS), Some((INTERVAL_US, 100_000)))
        .await
        .unwrap();
    assert_eq!((full.circuit, full.wait_us), (1, None));
    assert_eq!(
        next_slot(&prefix, "paced").await,
        Some(after_first + INTERVAL_US)
    );
}

#[tokio::test]
async fn after_the_cooldown_one_call_probes_and_counted_failures_ask_for_a_report() {
    let (store, prefix) = store().await;
    // Open, cool-down over: this call is the one probe (probe_at set), the next one waits.
    set_circuit(&prefix, "probe", &[("failures", 5), ("open_until", 1)]).await;
    let probe = gate(&store, "probe").await;
    assert_eq!((probe.circuit, probe.wait_us), (2, Some(0)));
    assert!(circuit_field(&prefix, "probe", "probe_at").await.is_some());
    let next = gate(&store, "probe").await;
    assert_eq!((next.circuit, next.wait_us), (0, None));
    // Closed with failures counted: call, and report a success (3).
    set_circuit(&prefix, "flaky", &[("failures", 2)]).await;
    assert_eq!(gate(&store, "flaky").await.circuit, 3);
    // Neither breaker nor pacing: nothing stored.
    let free = store.dial_gate("free", None, None).await.unwrap();
    assert_eq!((free.circuit, free.wait_us), (1, Some(0)));
    assert_eq!(next_slot(&prefix, "free").await, None);
}
