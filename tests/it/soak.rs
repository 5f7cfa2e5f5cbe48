//! The chaos soak: hundreds of verifications through the carrier simulator with
//! random disorder per call — unordered and duplicated callbacks, retries, lost final
//! callbacks, early keys, a throttling or unreliable Calls API — each checked against what its
//! callee's behaviour implies. Simulated time runs 500× faster than real time.

use std::time::{Duration, Instant};

use callverify_simulator::{Behaviour, Chaos};
use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{Options, PORTAL_KEY, TestServer};

/// How many verifications, and how many run at once.
const VERIFICATIONS: usize = 500;
const CONCURRENCY: usize = 40;

#[derive(Clone, Copy, Debug)]
enum Callee {
    Pound,
    WrongThenPound,
    PoundThenHangUp,
    Fraud,
    Silent,
    HangUp,
    Busy,
    NoAnswer,
    Fails,
    Voicemail,
}

const CALLEES: [Callee; 10] = [
    Callee::Pound,
    Callee::WrongThenPound,
    Callee::PoundThenHangUp,
    Callee::Fraud,
    Callee::Silent,
    Callee::HangUp,
    Callee::Busy,
    Callee::NoAnswer,
    Callee::Fails,
    Callee::Voicemail,
];

impl Callee {
    fn behaviour(self) -> Behaviour {
        match self {
            Callee::Pound => Behaviour::presses(["#"]),
            Callee::WrongThenPound => Behaviour::presses(["5", "#"]),
            Callee::PoundThenHangUp => Behaviour::pound_then_hang_up(),
            Callee::Fraud => Behaviour::presses(["0", "#"]),
            Callee::Silent => Behaviour::silent(),
            Callee::HangUp => Behaviour::hangs_up_mid_prompt(),
            Callee::Busy => Behaviour::busy(),
            Callee::NoAnswer => Behaviour::no_answer(),
            Callee::Fails => Behaviour::fails(),
            Callee::Voicemail => Behaviour::voicemail(),
        }
    }

    /// The terminal status and reason the behaviour implies, whatever the network's disorder.
    fn expected(self) -> (&'static str, Option<&'static str>) {
        match self {
            Callee::Pound | Callee::WrongThenPound | Callee::PoundThenHangUp => ("approved", None),
            Callee::Fraud => ("fraud_reported", None),
            Callee::Silent => ("failed", Some("no_input")),
            Callee::HangUp => ("failed", Some("hung_up")),
            Callee::Busy => ("failed", Some("busy")),
            Callee::NoAnswer => ("failed", Some("no_answer")),
            Callee::Fails => ("failed", Some("provider_failed")),
            Callee::Voicemail => ("failed", Some("voicemail")),
        }
    }
}

async fn run_one(server: &TestServer, i: usize) -> Result<(), String> {
    let callee = CALLEES[i % CALLEES.len()];
    let number = format!("+1425556{i:04}");
    let user = format!("soak{i}");
    let chaos = Chaos::random(1500);
    let simulator = server.simulator.as_ref().unwrap();
    simulator.script(&number, callee.behaviour().with_chaos(chaos));
    let (status, body) = server.register(&user, &number).await;
    if status != 202 {
        return Err(format!("{i} {callee:?}: start {status} {body}"));
    }
    let id = body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut v = body;
    while matches!(
        v["status"].as_str(),
        Some("calling" | "ringing" | "answered")
    ) {
        if Instant::now() > deadline {
            return Err(format!("{i} {callee:?} {chaos:?}: still open {v}"));
        }
        let path = format!("/v1/tenants/contoso/verifications/{id}?wait=5");
        v = server.get_json(PORTAL_KEY, &path).await.1;
    }
    let (status, reason) = callee.expected();
    let got = (v["status"].as_str(), v["reason"].as_str());
    if got != (Some(status), reason) {
        return Err(format!(
            "{i} {callee:?} {chaos:?}: ended {got:?}, expected {status} {reason:?}"
        ));
    }
    let methods = server.methods(&user).await["methods"]
        .as_array()
        .unwrap()
        .len();
    let expected_methods = usize::from(status == "approved");
    if methods != expected_methods {
        return Err(format!("{i} {callee:?} {chaos:?}: {methods} methods"));
    }
    // Every call here was dialled: counted once against the user's limit.
    let counted = zcard(&format!("{}:{{t:contoso}}:rl:user:{user}", server.prefix)).await;
    if counted != 1 {
        return Err(format!("{i} {callee:?} {chaos:?}: counted {counted} times"));
    }
    Ok(())
}

async fn zcard(key: &str) -> u64 {
    let mut conn = crate::support::redis().await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_verifications_under_random_chaos_end_as_their_callees_imply() {
    let extra = r#"
[provider.simulator]
time_scale = 0.002
[provider.twilio]
machine_detection = "enable"
request_timeout_ms = 1000
[verification]
hangup_grace_ms = 300
reconcile_interval_secs = 1
unknown_outcome_margin_secs = 5
[abuse.limits]
user = { max = 5, window_secs = 3600 }
"#;
    let options = Options {
        extra,
        simulated: true,
        ..Options::default()
    };
    let server = TestServer::start_with("http://unused.invalid", options).await;
    let reconciled_before = reconciled_ends(&server).await;
    let started = Instant::now();
    let failures: Vec<String> = futures_util::stream::iter(0..VERIFICATIONS)
        .map(|i| {
            let server = &server;
            async move { run_one(server, i).await }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // No live slot is left behind.
    let live: Vec<String> = crate::support::keys_under(&server.prefix)
        .await
        .into_iter()
        .filter(|k| k.ends_with(":live"))
        .collect();
    assert!(live.is_empty(), "{live:?}");
    // Lost final callbacks were made up for by reading the provider's record.
    let reconciled = reconciled_ends(&server).await - reconciled_before;
    assert!(
        reconciled > 0.0,
        "no verification was ended by reconciliation"
    );
    eprintln!(
        "soak: {VERIFICATIONS} verifications in {:?}, {reconciled} ended by reconciliation",
        started.elapsed()
    );
}

/// `callverify_reconciliations_total{outcome="ended"}` (process-wide).
async fn reconciled_ends(server: &TestServer) -> f64 {
    let r = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("callverify_reconciliations_total") && l.contains("outcome=\"ended\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_throttled_call_that_is_never_dialled_leaves_no_count() {
    let extra = r#"
[provider.simulator]
time_scale = 0.002
[abuse.limits]
user = { max = 5, window_secs = 3600 }
"#;
    let options = Options {
        extra,
        simulated: true,
        provider: "max_queue_ms = 0",
        ..Options::default()
    };
    let server = TestServer::start_with("http://unused.invalid", options).await;
    let simulator = server.simulator.as_ref().unwrap();
    let chaos = Chaos {
        api: callverify_simulator::ApiChaos::ThrottleOnce,
        ..Chaos::default()
    };
    simulator.script("+14255569999", Behaviour::presses(["#"]).with_chaos(chaos));
    let (status, v): (u16, Value) = server.register("thr", "+14255569999").await;
    assert_eq!(status, 202);
    assert_eq!(v["reason"], "provider_throttled", "{v}");
    let key = format!("{}:{{t:contoso}}:rl:user:thr", server.prefix);
    assert_eq!(zcard(&key).await, 0);
}
