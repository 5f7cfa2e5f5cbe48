//! The reconciliation index: which verifications to check against the provider's own record of
//! their call, and when. One sorted set under its own hash tag (`{recon}`), touched only by
//! single-key commands and scripts, so it works on Redis Cluster beside the per-user slots.

use super::Store;
use crate::ids::VerificationId;
use crate::verification::Status;

/// What a reconciliation check reads of a verification (one `HMGET`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileView {
    pub status: Status,
    /// The provider's call id, once bound.
    pub call_sid: Option<String>,
    /// The provider account that placed the call.
    pub provider: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// A hang-up waiting for its grace to end (Unix ms).
    pub settle_at_ms: Option<i64>,
    /// When placing the call ended with an unknown outcome (Unix seconds).
    pub uncertain_at: Option<i64>,
    /// When the provider placed the call without naming it (Unix seconds): its first callback
    /// binds the call id.
    pub placed_at: Option<i64>,
    /// The end's portal events are still owed (`announce`, set by `transition.lua`).
    pub announce: bool,
}

/// What one claim took from the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The claimed verification ids (at most the limit asked for).
    pub ids: Vec<String>,
    /// How long the oldest due check had been overdue when claimed (0: none was due).
    pub oldest_overdue_ms: u64,
}

impl Store {
    /// Schedules the next check of `id` in `delay_ms` (Redis' clock); with `earlier_only`, an
    /// earlier check already scheduled stays.
    pub async fn schedule_reconcile(
        &self,
        id: &VerificationId,
        delay_ms: u64,
        earlier_only: bool,
    ) -> redis::RedisResult<()> {
        self.scripts
            .reconcile_schedule
            .key(self.keys.reconcile_due())
            .arg(id.as_str())
            .arg(delay_ms)
            .arg(if earlier_only { "1" } else { "0" })
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Claims up to `limit` due checks for this instance for `lease_ms`.
    pub async fn claim_reconcile(
        &self,
        limit: usize,
        lease_ms: u64,
    ) -> redis::RedisResult<Vec<String>> {
        Ok(self.claim_reconcile_due(limit, lease_ms).await?.ids)
    }

    /// Claims up to `limit` due checks for this instance for `lease_ms`, and tells how late the
    /// oldest due check was (before this claim).
    pub async fn claim_reconcile_due(
        &self,
        limit: usize,
        lease_ms: u64,
    ) -> redis::RedisResult<Claimed> {
        let mut reply: Vec<String> = self
            .scripts
            .reconcile_claim
            .key(self.keys.reconcile_due())
            .arg(limit)
            .arg(lease_ms)
            .invoke_async(&mut self.conn())
            .await?;
        let oldest_overdue_ms = if reply.is_empty() {
            0
        } else {
            reply.remove(0).parse().unwrap_or(0)
        };
        Ok(Claimed {
            ids: reply,
            oldest_overdue_ms,
        })
    }

    /// Drops ended verifications from the index, many in one command.
    pub async fn unschedule_reconcile_many(
        &self,
        ids: &[VerificationId],
    ) -> redis::RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        redis::cmd("ZREM")
            .arg(self.keys.reconcile_due())
            .arg(ids.iter().map(VerificationId::as_str).collect::<Vec<_>>())
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Drops `id` from the index (it ended, or no longer exists).
    pub async fn unschedule_reconcile(&self, id: &str) -> redis::RedisResult<()> {
        redis::cmd("ZREM")
            .arg(self.keys.reconcile_due())
            .arg(id)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// How many checks are scheduled (a gauge for operators and tests).
    pub async fn reconcile_backlog(&self) -> redis::RedisResult<u64> {
        redis::cmd("ZCARD")
            .arg(self.keys.reconcile_due())
            .query_async(&mut self.conn())
            .await
    }

    pub async fn reconcile_view(
        &self,
        id: &VerificationId,
    ) -> redis::RedisResult<Option<ReconcileView>> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.verification(id))
            .arg(&[
                "status",
                "call_sid",
                "provider",
                "created_at",
                "expires_at",
                "settle_at",
                "uncertain_at",
                "announce",
                "placed_at",
            ])
            .query_async(&mut self.conn())
            .await?;
        let mut f = fields.into_iter();
        let mut next = || f.next().flatten();
        let Some(status) = next().as_deref().and_then(Status::parse) else {
            return Ok(None);
        };
        let num = |s: Option<String>| s.and_then(|s| s.parse::<i64>().ok());
        Ok(Some(ReconcileView {
            status,
            call_sid: next().filter(|s| !s.is_empty()),
            provider: next().unwrap_or_default(),
            created_at: num(next()).unwrap_or_default(),
            expires_at: num(next()).unwrap_or_default(),
            settle_at_ms: num(next()),
            uncertain_at: num(next()),
            announce: next().is_some(),
            placed_at: num(next()),
        }))
    }
}
