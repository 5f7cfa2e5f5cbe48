//! A Redis stall during a start never locks the user out: a private redis-server is paused
//! (SIGSTOP) for 3.5 s — longer than `redis.timeout_ms` — while a start runs. The portal gets a
//! `503`; whatever the start had stored, or stored late when Redis resumed, is released by
//! reconciliation (the live slot and the rate-limit counts), and the user can start again —
//! the same number, under the production rate limits — well within 30 s of Redis answering.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::private_redis::PrivateRedis;
use crate::support::{Options, StubTwilio, TestServer};

const STALL: Duration = Duration::from_millis(3500);

async fn server(redis: &PrivateRedis, stub: &StubTwilio) -> TestServer {
    let extra = "[verification]\nreconcile_interval_secs = 2\n";
    let url = redis.url.clone();
    TestServer::start_tweaked(
        &stub.base,
        Options {
            extra,
            provider: "max_queue_ms = 2000",
            production_limits: true,
            ..Options::default()
        },
        move |config| {
            config.redis.mode = callverify::config::RedisMode::Standalone;
            config.redis.url = callverify::config::Secret::new(url);
            config.redis.timeout_ms = 1000;
        },
    )
    .await
}

/// Starts again every 250 ms until accepted; panics after 30 s. Returns the refusals seen.
async fn start_again(server: &TestServer, user: &str, number: &str) -> Vec<(u16, Value)> {
    let since = Instant::now();
    let mut refusals = Vec::new();
    loop {
        let (status, body) = server.register(user, number).await;
        if status == 202 {
            return refusals;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{user} still cannot start 30 s after Redis answered: {} refusals, the last {:?}",
            refusals.len(),
            refusals.last()
        );
        refusals.push((status, body));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_stall_during_a_start_leaves_nothing_that_blocks_the_user() {
    let redis = PrivateRedis::start().await;
    let stub = StubTwilio::start().await;
    let server = server(&redis, &stub).await;
    let (status, body) = server.register("warm", "+14255550170").await;
    assert_eq!(status, 202, "{body}");

    // 1. Redis stalls as the start stores the verification: its write lands when Redis
    //    resumes, after the portal was told 503.
    redis.pause();
    let started = server.register("lena", "+14255550171");
    let (status, body) = tokio::join!(started, tokio::time::sleep(STALL)).0;
    redis.resume();
    assert_eq!(status, 503, "{body}");
    start_again(&server, "lena", "+14255550171").await;

    // 2. Redis stalls while the start waits for its pacing slot (1 call per second: the call
    //    just placed for `warm2` holds this second): stored and counted, never dialled.
    let (status, body) = server.register("warm2", "+14255550172").await;
    assert_eq!(status, 202, "{body}");
    let calls = stub.calls().len();
    let started = server.register("mia", "+14255550173");
    let stall = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis.pause();
        tokio::time::sleep(STALL).await;
        redis.resume();
    };
    let ((status, body), ()) = tokio::join!(started, stall);
    assert_eq!(status, 503, "{body}");
    assert_eq!(stub.calls().len(), calls, "nothing was dialled");
    // Without the refund, `number_spacing` (1 call per 30 s) would refuse the number.
    let refusals = start_again(&server, "mia", "+14255550173").await;
    assert!(
        refusals.iter().all(|(s, _)| *s == 409 || *s == 503),
        "{refusals:?}"
    );
    // (Its own undo — refund, discard — was queued behind the stall and landed when Redis
    // resumed; the mark that landed with it was refused as late, so it did not strand it.)

    // Only the four accepted starts are stored; the released ones are gone.
    let stored = redis.keys("*:vf:*").await;
    assert_eq!(stored.len(), 4, "{stored:?}");
}

#[tokio::test]
async fn a_start_whose_own_undo_is_lost_is_released_by_reconciliation() {
    // Redis stalls while the start waits for its pacing slot, then crashes with the start's
    // undo (refund, discard) still unread in its socket buffers, and comes back from its
    // append-only file: the stored, counted, never-dialled verification is all that is left.
    let mut redis = PrivateRedis::start_durable().await;
    let stub = StubTwilio::start().await;
    let server = server(&redis, &stub).await;
    let (status, body) = server.register("warm", "+14255550174").await;
    assert_eq!(status, 202, "{body}");
    let calls = stub.calls().len();
    let started = server.register("noa", "+14255550175");
    let stall = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis.pause();
        tokio::time::sleep(STALL).await;
    };
    let ((status, body), ()) = tokio::join!(started, stall);
    assert_eq!(status, 503, "{body}");
    redis.crash_and_restart().await;
    assert_eq!(stub.calls().len(), calls, "nothing was dialled");
    let stored = redis.keys("*:vf:*").await;
    assert_eq!(
        stored.len(),
        2,
        "the start's verification survived: {stored:?}"
    );

    let refusals = start_again(&server, "noa", "+14255550175").await;
    // Held until reconciliation released it: the live slot first, then (the same check) the
    // `number_spacing` count.
    assert!(
        refusals.iter().any(|(s, _)| *s == 409),
        "{:?}",
        refusals.last()
    );
    assert!(
        refusals.iter().all(|(s, _)| *s == 409 || *s == 503),
        "{:?}",
        refusals.last()
    );
    let stored = redis.keys("*:vf:*").await;
    assert_eq!(
        stored.len(),
        2,
        "released, and the new one stored: {stored:?}"
    );
}

#[tokio::test]
async fn a_10_s_stall_as_a_start_begins_leaves_nothing_that_blocks_the_user() {
    let redis = PrivateRedis::start().await;
    let stub = StubTwilio::start().await;
    let server = server(&redis, &stub).await;
    let (status, body) = server.register("warm", "+14255550176").await;
    assert_eq!(status, 202, "{body}");
    redis.pause();
    let started = server.register("omar", "+14255550177");
    let (status, body) = tokio::join!(started, tokio::time::sleep(Duration::from_secs(10))).0;
    redis.resume();
    assert_eq!(status, 503, "{body}");
    start_again(&server, "omar", "+14255550177").await;
    assert_eq!(stub.calls().len(), 2, "one call each for warm and omar");
}
