//! Reconciliation: every live verification is checked against the provider's own record of its
//! call, so a lost status callback (our 503 during a Redis blip, an instance restart, a dropped
//! request) can never leave it open — and the user locked out by its live slot — until expiry.
//!
//! The schedule lives in Redis (`Store::schedule_reconcile`): a check is due
//! `verification.reconcile_interval_secs` after the call was dialled and again after each check
//! while the call lives, when a hang-up's grace is over, and when an unknown placement outcome
//! runs out of time. Every instance runs this loop; each due check is claimed by one instance
//! for a lease (`Store::claim_reconcile`), and a check whose instance died is taken over when
//! the lease runs out, so the work is shared and survives restarts.
//!
//! A check: apply what is due by time (`Event::Settle`: a hang-up past its grace, an expiry);
//! with no call bound (an unknown placement outcome, or a call placed without an id), end
//! `provider_unknown` past the ring timeout plus
//! `verification.unknown_outcome_margin_secs`; otherwise read the call's progress from the
//! provider and apply it if the call is over (through the same guarded transition as a status
//! callback). Counted in `callverify_reconciliations_total{outcome}`.
//!
//! A verification that ends the ordinary way leaves the schedule as it ends (`unschedule.rs`), so
//! the checks left are those whose final callback is overdue. Each tick is one [`pass`]: claims
//! that double in size while they come back full, until nothing due is left, so a backlog drains
//! in one pass instead of at a fixed 64 per tick; `callverify_reconcile_oldest_overdue_seconds`
//! shows how late the oldest due check was when the pass began.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::transition::{Event, Outcome, Transition};
use super::{CallFlow, FailureReason};
use crate::ids::VerificationId;
use crate::store::Store;

/// How often each instance looks for due checks.
const TICK: Duration = Duration::from_millis(500);
/// The size of a pass's first claim, and the least a claim shrinks to.
const MIN_BATCH: usize = 64;
/// The most checks one claim takes: a larger backlog takes several claims in the same pass.
const MAX_BATCH: usize = 2048;
/// A claimed check is invisible to other instances this long (longer than a provider request).
const LEASE_MS: u64 = 30_000;

/// What one check did (the metric's `outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// The verification ended in this check.
    Ended,
    /// Already ended or gone: dropped from the schedule.
    Done,
    /// Still open (the call goes on, or a deadline is ahead): checked again later.
    Open,
    /// The call is over; a `#` may still be on its way (hang-up grace).
    Deferred,
    /// The provider could not tell (error, timeout): checked again later.
    ProviderError,
    /// Redis failed: the lease runs out and the check is retried.
    RedisError,
    /// A start that never dialled: released, slot and counts (`undialled.rs`).
    Released,
}

impl Checked {
    fn label(self) -> &'static str {
        match self {
            Checked::Ended => "ended",
            Checked::Done => "done",
            Checked::Open => "open",
            Checked::Deferred => "deferred",
            Checked::ProviderError => "provider_error",
            Checked::RedisError => "redis_error",
            Checked::Released => "released",
        }
    }
}

/// The size of the next claim, adapted to the backlog: a claim that comes back full doubles it
/// (up to [`MAX_BATCH`]), one that comes back short halves it (down to [`MIN_BATCH`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch(usize);

impl Default for Batch {
    fn default() -> Self {
        Self(MIN_BATCH)
    }
}

impl Batch {
    pub fn size(self) -> usize {
        self.0
    }

    /// Checks run at once for a claim of this size: each is mostly a wait for the provider, so
    /// more of them when the backlog is large (16 to 128).
    pub fn concurrency(self) -> usize {
        (self.0 / 4).clamp(16, 128)
    }

    /// Adapts to a claim of this size that took `claimed`; true when it came back full (more
    /// may be due).
    pub fn after(&mut self, claimed: usize) -> bool {
        let full = claimed >= self.0;
        self.0 = if full {
            (self.0 * 2).min(MAX_BATCH)
        } else {
            (self.0 / 2).max(MIN_BATCH)
        };
        full
    }
}

/// What one [`pass`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Claims made (one when nothing more than a batch was due).
    pub claims: usize,
    /// Checks run.
    pub checked: usize,
}

/// One pass over the schedule: claims due checks until a claim comes back short (nothing due is
/// left) or `stop` turns true, and runs each through `check`. Sets the oldest-overdue gauge from
/// the first claim.
pub async fn pass<F, Fut>(
    store: &Store,
    batch: &mut Batch,
    stop: &watch::Receiver<bool>,
    check: F,
) -> redis::RedisResult<Pass>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Checked>,
{
    let mut done = Pass::default();
    loop {
        let size = *batch;
        let claimed = store.claim_reconcile_due(size.size(), LEASE_MS).await?;
        if done.claims == 0 {
            let overdue = claimed.oldest_overdue_ms as f64 / 1000.0;
            metrics::gauge!(crate::ops::metrics::RECONCILE_OLDEST_OVERDUE).set(overdue);
        }
        done.claims += 1;
        done.checked += claimed.ids.len();
        let more = batch.after(claimed.ids.len());
        futures_util::stream::iter(claimed.ids)
            .for_each_concurrent(size.concurrency(), |id| {
                let checked = check(id);
                async move {
                    let checked = checked.await;
                    metrics::counter!(crate::ops::metrics::RECONCILIATIONS, "outcome" => checked.label())
                        .increment(1);
                }
            })
            .await;
        if !more || *stop.borrow() {
            return Ok(done);
        }
    }
}

/// Runs the reconciliation loop until `stop` turns true.
pub fn spawn(flow: CallFlow, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Batch::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            let flow = &flow;
            let check = |id: String| async move { flow.reconcile(&id).await };
            if let Err(e) = pass(&flow.store, &mut batch, &stop, check).await {
                crate::ops::metrics::redis_error("reconcile", &e);
            }
        }
    })
}

impl CallFlow {
    /// One reconciliation check of verification `id` (claimed from the schedule).
    pub async fn reconcile(&self, id: &str) -> Checked {
        match self.try_reconcile(id).await {
            Ok(checked) => checked,
            Err(e) => {
                crate::ops::metrics::redis_error("reconcile", &e);
                tracing::warn!(verification = %id, error = %e, "reconciliation check failed");
                Checked::RedisError
            }
        }
    }

    async fn try_reconcile(&self, id: &str) -> redis::RedisResult<Checked> {
        let store = &self.store;
        let Ok(vid) = VerificationId::parse(id) else {
            store.unschedule_reconcile(id).await?;
            return Ok(Checked::Done);
        };
        let Some(view) = store.reconcile_view(&vid).await? else {
            store.unschedule_reconcile(id).await?;
            return Ok(Checked::Done);
        };
        if view.status.is_terminal() {
            // Its events are still owed when the reply of the transition that ended it was lost.
            // (With no tenant taking events the mark just expires with the verification.)
            if view.announce && !self.events.is_off() {
                self.announce_owed(&vid).await?;
            }
            store.unschedule_reconcile(id).await?;
            return Ok(Checked::Done);
        }
        // What is due by time alone (expiry, a hang-up past its grace), on Redis' clock.
        let settled = store.transition(&vid, "", Event::Settle).await?;
        if let Some(done) = self.after(&vid, &settled).await? {
            return Ok(done);
        }
        let now = settled.now;
        let interval_ms = self.settings.verification.reconcile_interval_secs * 1000;
        if let Some(settle_at_ms) = view.settle_at_ms {
            let wait = (settle_at_ms - now * 1000).clamp(100, interval_ms as i64);
            store.schedule_reconcile(&vid, wait as u64, false).await?;
            return Ok(Checked::Deferred);
        }
        let Some(call_sid) = view.call_sid else {
            if view.uncertain_at.is_none()
                && view.placed_at.is_none()
                && let Some(checked) = self.release_if_undialled(&vid).await?
            {
                return Ok(checked);
            }
            // No call id to read the call by (the provider's answer to "place the call" was
            // unknown, or it placed the call without naming it): the first call that reports
            // back binds; past the ring timeout plus a margin, none will. Counted from the
            // answer; while the placement may still be in flight (or its instance died during
            // it), from the longest it can take. The provider is never asked about "no id".
            let settings = &self.settings;
            let placed_by = view
                .placed_at
                .or(view.uncertain_at)
                .unwrap_or_else(|| view.created_at + settings.placement_ms.div_ceil(1000) as i64);
            let deadline = placed_by
                + i64::from(settings.ring_timeout_secs)
                + settings.verification.unknown_outcome_margin_secs as i64;
            if now < deadline {
                let wait = ((deadline - now) * 1000).min(interval_ms as i64).max(100);
                store.schedule_reconcile(&vid, wait as u64, false).await?;
                return Ok(Checked::Open);
            }
            let detail = if view.placed_at.is_some() {
                "the provider placed the call without naming it, and no call reported back"
            } else {
                "the provider's answer to placing the call was unknown, and no call reported back"
            };
            let event = Event::Refused {
                reason: FailureReason::ProviderUnknown,
                detail,
            };
            let t = store.transition(&vid, "", event).await?;
            return Ok(self.after(&vid, &t).await?.unwrap_or(Checked::Open));
        };
        let Some(provider) = self.providers.get(&view.provider).cloned() else {
            store.schedule_reconcile(&vid, interval_ms, false).await?;
            return Ok(Checked::ProviderError);
        };
        let progress = match provider.call_progress(&call_sid).await {
            Ok(progress) => progress,
            Err(error) => {
                tracing::warn!(verification = %id, %error, "call progress not readable");
                store.schedule_reconcile(&vid, interval_ms, false).await?;
                return Ok(Checked::ProviderError);
            }
        };
        if !progress.is_final() {
            store.schedule_reconcile(&vid, interval_ms, false).await?;
            return Ok(Checked::Open);
        }
        let grace_ms = self.settings.verification.hangup_grace_ms;
        let event = Event::Status { progress, grace_ms };
        let t = store.transition(&vid, &call_sid, event).await?;
        if t.outcome == Outcome::Deferred {
            store
                .schedule_reconcile(&vid, grace_ms.max(100), false)
                .await?;
            return Ok(Checked::Deferred);
        }
        if let Some(done) = self.after(&vid, &t).await? {
            tracing::info!(verification = %id, reason = t.reason.map_or("", |r| r.as_str()), "ended by reconciliation with the provider's record");
            return Ok(done);
        }
        store.schedule_reconcile(&vid, interval_ms, false).await?;
        Ok(Checked::Open)
    }

    /// After a transition: when it ended the verification (or found it ended), announce it and
    /// drop it from the schedule.
    async fn after(
        &self,
        id: &VerificationId,
        t: &Transition,
    ) -> redis::RedisResult<Option<Checked>> {
        if t.ended {
            self.ended(id, t, true);
            self.store.unschedule_reconcile(id.as_str()).await?;
            return Ok(Some(Checked::Ended));
        }
        if t.status.is_none_or(|s| s.is_terminal()) {
            self.store.unschedule_reconcile(id.as_str()).await?;
            return Ok(Some(Checked::Done));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_grows_while_claims_come_back_full_and_shrinks_after() {
        let mut batch = Batch::default();
        assert_eq!((batch.size(), batch.concurrency()), (64, 16));
        assert!(batch.after(64));
        assert_eq!(batch.size(), 128);
        for _ in 0..10 {
            assert!(batch.after(batch.size()));
        }
        assert_eq!((batch.size(), batch.concurrency()), (MAX_BATCH, 128));
        assert!(!batch.after(5));
        assert_eq!(batch.size(), MAX_BATCH / 2);
        for _ in 0..10 {
            batch.after(0);
        }
        assert_eq!(batch, Batch::default());
    }
}
