//! Ended verifications leave the reconciliation schedule at once, so reconciliation checks only
//! verifications whose final callback is overdue — not every one that ended the ordinary way.
//!
//! The end itself is one atomic script in the verification's slot; the schedule is a sorted set
//! under its own hash tag, so on a cluster it cannot be touched by the same script. Ends are
//! queued in-process instead (no Redis round trip on the webhook's path) and removed in batches:
//! one `ZREM` for up to [`MOST_PER_ZREM`] ids, at most every [`EVERY`]. An id lost on the way (a
//! crash, a Redis error) costs what it cost before: one check that finds it ended.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::ids::VerificationId;
use crate::store::Store;

/// Most ids one `ZREM` removes.
const MOST_PER_ZREM: usize = 512;
/// The pause between two batches: ends arriving meanwhile wait and share the next `ZREM`.
const EVERY: Duration = Duration::from_millis(200);

/// The queue of ended verifications (cheap to clone).
#[derive(Clone, Debug)]
pub struct Unschedule {
    tx: mpsc::UnboundedSender<VerificationId>,
}

impl Unschedule {
    /// Starts the worker that removes queued ids; it stops when every `Unschedule` is dropped.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(remove_queued(store, rx));
        Self { tx }
    }

    /// Queues `id`, which has just ended, for removal from the schedule.
    pub fn ended(&self, id: &VerificationId) {
        let _ = self.tx.send(id.clone());
    }
}

async fn remove_queued(store: Store, mut rx: mpsc::UnboundedReceiver<VerificationId>) {
    let mut batch = Vec::with_capacity(MOST_PER_ZREM);
    while rx.recv_many(&mut batch, MOST_PER_ZREM).await > 0 {
        if let Err(e) = store.unschedule_reconcile_many(&batch).await {
            // Their checks find them ended and drop them then.
            crate::ops::metrics::redis_error("reconcile", &e);
        }
        batch.clear();
        tokio::time::sleep(EVERY).await;
    }
}
