//! Reconciliation at scale, proven at a small one: a verification that ends the ordinary way
//! leaves the schedule (it never costs a check), a backlog larger than one claim drains in one
//! pass, and the claim reports how late the oldest due check is. The capacity figure (starts per
//! second, lost final callbacks) is measured by `examples/reconcile_capacity.rs`, not here.

use std::time::Duration;

use callverify::ids::{TenantId, UserId, VerificationId};
use callverify::verification::reconcile::{Batch, Checked, pass};

use crate::support::{StubTwilio, TestServer, redis, redis_config, unique_prefix};

async fn scheduled(prefix: &str, id: &str) -> bool {
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}:{{recon}}:due"))
        .arg(id)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    score.is_some()
}

#[tokio::test]
async fn a_verification_that_ends_leaves_the_schedule_and_a_live_one_stays() {
    let stub = StubTwilio::start().await;
    // Checks 30 s out: the ended one can leave the schedule only by its end, not by a check.
    let extra = "[verification]\nreconcile_interval_secs = 30\n";
    let server = TestServer::start(&stub.base, extra).await;
    let (status, live) = server.register("still-ringing", "+1 425 555 0100").await;
    assert_eq!(status, 202, "{live}");
    let live = live["id"].as_str().unwrap().to_owned();
    let (status, ended) = server
        .approve_registration(&stub, "approves", "+1 425 555 0101", "mobile")
        .await;
    assert_eq!(status, 202, "{ended}");
    let ended = ended["id"].as_str().unwrap().to_owned();

    // The approval takes it off the schedule (batched, off the webhook's path): wait for that.
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while scheduled(&server.prefix, &ended).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    waited
        .await
        .expect("an ended verification leaves the schedule");
    assert!(
        scheduled(&server.prefix, &live).await,
        "a live call stays scheduled"
    );
}

#[tokio::test]
async fn a_backlog_larger_than_one_claim_drains_in_one_pass() {
    const BACKLOG: usize = 300;
    let prefix = unique_prefix();
    let store = callverify::store::Store::open(&redis_config(&prefix, 2000))
        .await
        .unwrap();
    let tenant = TenantId::parse("contoso").unwrap();
    for i in 0..BACKLOG {
        let id = VerificationId::generate(&tenant, &UserId::parse(&format!("u{i}")).unwrap());
        store.schedule_reconcile(&id, 0, false).await.unwrap();
    }
    assert!(BACKLOG > Batch::default().size());

    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut batch = Batch::default();
    // Each check does what a check of an ended verification does: drops it from the schedule.
    let check = |id: String| {
        let store = store.clone();
        async move {
            store.unschedule_reconcile(&id).await.unwrap();
            Checked::Done
        }
    };
    let done = pass(&store, &mut batch, &stop, check).await.unwrap();
    assert_eq!(done.checked, BACKLOG, "{done:?}");
    assert!(done.claims > 1, "claims grew within the pass: {done:?}");
    assert_eq!(store.reconcile_backlog().await.unwrap(), 0);
    // Drained: the next claim shrinks back.
    let done = pass(&store, &mut batch, &stop, check).await.unwrap();
    assert_eq!((done.claims, done.checked), (1, 0));
}

#[tokio::test]
async fn a_claim_reports_how_late_the_oldest_due_check_is() {
    let prefix = unique_prefix();
    let store = callverify::store::Store::open(&redis_config(&prefix, 2000))
        .await
        .unwrap();
    let key = format!("{prefix}:{{recon}}:due");
    let mut conn = redis().await;
    // Nothing due: 0.
    assert_eq!(
        store
            .claim_reconcile_due(64, 30_000)
            .await
            .unwrap()
            .oldest_overdue_ms,
        0
    );
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now_ms = secs * 1000 + micros / 1000;
    let _: () = redis::cmd("ZADD")
        .arg(&key)
        .arg(now_ms - 7_000)
        .arg("late")
        .arg(now_ms - 1_000)
        .arg("later")
        .arg(now_ms + 60_000)
        .arg("not-yet")
        .query_async(&mut conn)
        .await
        .unwrap();
    let claimed = store.claim_reconcile_due(64, 30_000).await.unwrap();
    assert!(
        (7_000..60_000).contains(&claimed.oldest_overdue_ms),
        "{claimed:?}"
    );
    let mut ids = claimed.ids;
    ids.sort();
    assert_eq!(ids, ["late", "later"]);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}
