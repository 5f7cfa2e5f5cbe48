//! Reconciliation's part in a start that failed before dialling: a verification still
//! `calling` with no call bound and never marked for dialling is released once no start can
//! mark it any more (its dial budget is over) — its record and the user's live slot dropped, its
//! rate-limit counts refunded — so a Redis stall mid-start never locks the user out. The start
//! scheduled this check before it stored anything, so even a write that landed after the start
//! gave up is found.

use super::CallFlow;
use super::reconcile::Checked;
use crate::ids::VerificationId;
use crate::store::undialled::Release;

impl CallFlow {
    /// For a verification with no call bound: `Some` when this check settled it (released, or
    /// checked again once it can be), `None` when it was marked for dialling (an unknown
    /// placement outcome: the caller's business).
    pub(super) async fn release_if_undialled(
        &self,
        id: &VerificationId,
    ) -> redis::RedisResult<Option<Checked>> {
        let store = &self.store;
        match store
            .release_undialled(id, self.settings.dial_budget_ms())
            .await?
        {
            Release::Dialled => Ok(None),
            Release::Wait(ms) => {
                store.schedule_reconcile(id, ms.max(100), false).await?;
                Ok(Some(Checked::Open))
            }
            Release::Released { tenant, counted } => {
                if let Err(e) =
                    crate::abuse::limits::refund_recorded(store, &tenant, id, &counted).await
                {
                    tracing::warn!(verification = %id, error = %e, "released start not refunded");
                }
                store.unschedule_reconcile(id.as_str()).await?;
                tracing::info!(verification = %id, "start that never dialled released (slot and counts)");
                Ok(Some(Checked::Released))
            }
        }
    }
}
