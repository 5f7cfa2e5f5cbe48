//! A start's Redis round trips, counted: the top-level commands callverify's connection(s) send
//! while one start runs, seen with `MONITOR` on every master (as `examples/bench_peers.rs`
//! `setup` counts them).
//!
//! On a single node (everything in one keyspace) the create script schedules the verification's
//! first reconciliation check, and the provider account's gate sets the dialling mark when no
//! pacing wait comes first: **3** round trips (create, gate + mark, `placed`) with the circuit
//! breaker on and pacing off (the benchmark's configuration) or on without a wait. On Redis
//! Cluster the reconciliation index, the user's keys and the account's keys are three slots, and
//! the start keeps its order with separate round trips: **5** (schedule, create, gate, mark,
//! `placed`). A refused start (live slot, fraud block) leaves nothing scheduled: on a single node
//! it is one round trip. The gate's script marks only a call it lets through at once
//! (`Store::dial_gate_marking`).

use std::time::{Duration, Instant};

use callverify::ids::VerificationId;
use callverify::store::undialled::DialMark;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;

use crate::support::{
    Options, PORTAL_KEY, StubTwilio, TestServer, cluster_urls, redis, redis_url, sentinel_urls,
};

/// `MONITOR` on every master: one line per command each of them runs (also used by
/// `external_mfa/round_trips.rs`).
pub(crate) struct Monitor {
    masters: Vec<Lines<BufReader<TcpStream>>>,
}

impl Monitor {
    /// `None` under Sentinel, where the master's address is the sentinels' to tell (the same
    /// single-node path as a standalone Redis; counted in the standalone and cluster runs).
    pub(crate) async fn start() -> Option<Self> {
        if sentinel_urls().is_some() {
            eprintln!(
                "round trips not counted under Sentinel: MONITOR is opened on the standalone \
                 Redis or the cluster's masters only (Sentinel takes the single-node path)"
            );
            return None;
        }
        let mut masters = Vec::new();
        for url in cluster_urls().unwrap_or_else(|| vec![redis_url()]) {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
            if !matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
                continue;
            }
            let info = client.get_connection_info();
            let addr = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
                other => panic!("MONITOR needs a TCP Redis, not {other:?}"),
            };
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut replies = 1;
            if let Some(password) = info.redis_settings().password() {
                let auth = format!("AUTH {password}\r\n");
                stream.write_all(auth.as_bytes()).await.unwrap();
                replies += 1;
            }
            stream.write_all(b"MONITOR\r\n").await.unwrap();
            let mut lines = BufReader::new(stream).lines();
            while replies > 0 {
                let line = lines.next_line().await.unwrap().expect("MONITOR answers");
                assert!(line.starts_with("+OK"), "MONITOR refused: {line}");
                replies -= 1;
            }
            masters.push(lines);
        }
        Some(Self { masters })
    }

    /// The top-level commands (name and first key, prefix left out) that the connection(s)
    /// touching `prefix` sent until now, and in the next 300 ms. Commands a script runs are not
    /// round trips and are left out, and so is background work that shares the connection: the
    /// reconciler's periodic claim, the event worker's `{outbox}` reads, the tenant policy's
    /// read (cached for a second per process, `src/policy/cache.rs`: one start a second pays it,
    /// not each), and a script's load on a node that has not run it yet (`SCRIPT LOAD` after
    /// `NOSCRIPT`, once per node: the warm-up pays it for the start's own scripts, but on a
    /// fresh Redis the reconciler's first claim may pay it in the window).
    pub(crate) async fn commands(mut self, prefix: &str) -> Vec<String> {
        // (master, line): a client is named by its address on its master (two connections to
        // two masters may share a local port).
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        for (master, lines) in self.masters.iter_mut().enumerate() {
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout_at(deadline, lines.next_line()).await
            {
                seen.push((master, line));
            }
        }
        let client = |(master, l): &(usize, String)| {
            l.split(['[', ']'])
                .nth(1)
                .map(|address| (*master, address.to_owned()))
        };
        let ours: std::collections::HashSet<(usize, String)> = seen
            .iter()
            .filter(|(_, l)| l.contains(prefix) && !l.contains(" lua]"))
            .filter_map(client)
            .collect();
        // The claim: `EVALSHA sha 1 {recon}:due limit lease` (a start's own schedule passes the
        // id, a delay and a flag).
        let claim = |l: &str| l.contains(":{recon}:") && l.split("\" \"").count() == 6;
        let background = |l: &str| {
            claim(l)
                || l.contains(":{outbox}:")
                || l.contains("}:policy\"")
                || l.contains("] \"SCRIPT\" ")
        };
        seen.iter()
            .filter(|(_, l)| !l.contains(" lua]") && !background(l))
            .filter(|seen| client(seen).is_some_and(|c| ours.contains(&c)))
            .map(|(_, l)| describe(l, prefix))
            .collect()
    }
}

/// `EVALSHA {recon}:due`: the command and the first key it names (keys carry no phone number).
fn describe(line: &str, prefix: &str) -> String {
    let mut words = line.split("] ").nth(1).unwrap_or("?").split("\" \"");
    let command = words.next().unwrap_or("?").trim_matches('"').to_owned();
    let key = words
        .find(|w| w.starts_with(prefix))
        .map(|k| k.trim_start_matches(prefix).trim_matches([':', '"']))
        .unwrap_or("");
    format!("{command} {key}")
}

/// Round trips of a start that stores and places its call.
fn expected_start() -> usize {
    if cluster_urls().is_some() { 5 } else { 3 }
}

/// callverify with the rate limits off and the circuit breaker on (the defaults), and the
/// provider table `provider` (pacing).
async fn server(provider: &str) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let options = Options {
        provider,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    (stub, server)
}

/// Every id in the reconciliation index.
pub(crate) async fn scheduled(prefix: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(format!("{prefix}:{{recon}}:due"))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

/// Registers `number` for `user` under `MONITOR`: status, body, and the round trips.
async fn counted_start(
    server: &TestServer,
    user: &str,
    number: &str,
) -> Option<(u16, Value, Vec<String>)> {
    let monitor = Monitor::start().await?;
    let (status, body) = server.register(user, number).await;
    Some((status, body, monitor.commands(&server.prefix).await))
}

/// A start for `user` that warms up what a first start pays once (the scripts loaded on the
/// nodes of the user's, the account's and the index's slots), then canceled so the user may start
/// again, and out of the index (the cancel's removal is batched, `unschedule.rs`).
async fn warm_up(server: &TestServer, user: &str, number: &str) {
    let (status, body) = server.register(user, number).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/tenants/contoso/verifications/{id}/cancel");
    let (status, body) = server.post_json(PORTAL_KEY, &cancel, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let since = Instant::now();
    while scheduled(&server.prefix).await.contains(&id) {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{id} still scheduled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_start_round_trips(provider: &str, user: &str, numbers: [&str; 2]) {
    let (stub, server) = server(provider).await;
    warm_up(&server, user, numbers[0]).await;
    let Some((status, body, commands)) = counted_start(&server, user, numbers[1]).await else {
        return;
    };
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "calling", "{body}");
    assert_eq!(stub.calls().len(), 2, "both starts placed their call");
    assert_eq!(
        commands.len(),
        expected_start(),
        "a start's round trips ({}): {commands:?}",
        provider
    );
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        scheduled(&server.prefix).await,
        [id],
        "scheduled for reconciliation"
    );
    let v = server.verification(id).await;
    assert_eq!(v["status"], "calling", "{v}");
}

#[tokio::test]
async fn with_pacing_off_a_start_takes_3_round_trips_on_a_single_node_5_on_a_cluster() {
    assert_start_round_trips(
        "calls_per_second = 0",
        "trips-unpaced",
        ["+14255550180", "+14255550181"],
    )
    .await;
}

#[tokio::test]
async fn with_pacing_and_no_wait_a_start_takes_3_round_trips_on_a_single_node_5_on_a_cluster() {
    // 1000 calls per second: the warm-up's slot is long past when the counted start comes.
    assert_start_round_trips(
        "calls_per_second = 1000",
        "trips-paced",
        ["+14255550182", "+14255550183"],
    )
    .await;
}

#[tokio::test]
async fn a_refused_start_leaves_nothing_scheduled() {
    let (stub, server) = server("calls_per_second = 0").await;
    warm_up(&server, "trips-refused", "+14255550184").await;
    let (status, body) = server.register("trips-refused", "+14255550185").await;
    assert_eq!(status, 202, "{body}");
    let live = body["id"].as_str().unwrap().to_owned();
    // Refused on a single node: the create only. On a cluster: schedule, create, unschedule.
    let refused = if cluster_urls().is_some() { 3 } else { 1 };

    // The user's live slot is taken.
    let Some((status, body, commands)) =
        counted_start(&server, "trips-refused", "+14255550186").await
    else {
        return;
    };
    assert_eq!(status, 409, "{body}");
    assert_eq!(commands.len(), refused, "{commands:?}");
    assert_eq!(scheduled(&server.prefix).await, [live.as_str()]);

    // A fraud report blocks the user (the key a fraud report sets, `Keys::blocked`).
    let blocked = format!("{}:{{{}}}:blocked", server.prefix, &live[..16]);
    let () = redis::cmd("SET")
        .arg(&blocked)
        .arg(&live)
        .arg("EX")
        .arg(60)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    let Some((status, body, commands)) =
        counted_start(&server, "trips-refused", "+14255550187").await
    else {
        return;
    };
    assert_eq!(status, 423, "{body}");
    assert_eq!(commands.len(), refused, "{commands:?}");
    assert_eq!(scheduled(&server.prefix).await, [live.as_str()]);
    assert_eq!(stub.calls().len(), 2, "refused starts call no one");
}

/// A verification hash as the create script leaves it (`calling`, created now), or with `status`.
async fn stored(store: &callverify::store::Store, status: &str) -> VerificationId {
    let id = VerificationId::generate_for_tag("0123456789abcdef");
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    let () = redis::cmd("HSET")
        .arg(store.keys().verification(&id))
        .arg(&[
            ("status", status.to_owned()),
            ("created_at", secs.to_string()),
        ])
        .arg("created_ms")
        .arg(secs * 1000 + micros / 1000)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    id
}

async fn dialling(store: &callverify::store::Store, id: &VerificationId) -> Option<u64> {
    redis::cmd("HGET")
        .arg(store.keys().verification(id))
        .arg("dialling")
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_gate_marks_only_a_call_it_lets_through_at_once() {
    let prefix = crate::support::unique_prefix();
    let config = crate::support::redis_config(&prefix, 2000);
    let store = callverify::store::Store::open(&config).await.unwrap();
    let cluster = cluster_urls().is_some();
    // Circuit breaker on; 2 calls per second, a wait of up to 2 s allowed.
    let gate = |id| {
        let mark = DialMark {
            id,
            budget_ms: 10_000,
            deadline_ms: 5_000,
        };
        let store = store.clone();
        async move {
            store
                .dial_gate_marking("acme", Some(30_000), Some((500_000, 2_000_000)), &mark)
                .await
                .unwrap()
        }
    };

    // A free slot: gate and mark in one script (on a cluster: the gate only).
    let first = stored(&store, "calling").await;
    let (open, marked) = gate(&first).await;
    assert_eq!((open.circuit, open.wait_us), (1, Some(0)));
    assert_eq!(marked, (!cluster).then_some(true));
    assert_eq!(dialling(&store, &first).await.is_some(), !cluster);
    // Failing over to another account: marked already, accepted again.
    let (_, again) = store
        .dial_gate_marking(
            "other",
            Some(30_000),
            None,
            &DialMark {
                id: &first,
                budget_ms: 10_000,
                deadline_ms: 5_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(again, (!cluster).then_some(true));

    // The next slot is half a second away: reserved, the wait returned, no mark before it.
    let queued = stored(&store, "calling").await;
    let (paced, marked) = gate(&queued).await;
    assert!(paced.wait_us.is_some_and(|us| us > 0), "{paced:?}");
    assert_eq!(marked, None);
    assert_eq!(dialling(&store, &queued).await, None);

    // No longer `calling` (canceled meanwhile): let through, the mark refused.
    let canceled = stored(&store, "canceled").await;
    let (free, marked) = store
        .dial_gate_marking(
            "free",
            Some(30_000),
            None,
            &DialMark {
                id: &canceled,
                budget_ms: 10_000,
                deadline_ms: 5_000,
            },
        )
        .await
        .unwrap();
    assert_eq!((free.circuit, free.wait_us), (1, Some(0)));
    assert_eq!(marked, (!cluster).then_some(false));
    assert_eq!(dialling(&store, &canceled).await, None);
}
