//! Canceling a live verification at the portal's request: one guarded transition ends it
//! `canceled` (the live slot freed, the audit entry written, the long-poll woken, in the same
//! script), then the provider is asked to end the call its documented way (`Provider::end_call`;
//! docs/PROVIDERS.md#canceling-a-call) and `verification.canceled` is queued. A call still being
//! placed when the cancel lands is ended by the start as soon as the provider names it.

use super::transition::{Event, Outcome};
use super::{CallFlow, Status, Verification};
use crate::error::ApiError;
use crate::ids::VerificationId;

/// Cancels `id` (its tenant already checked): the verification as the cancel left it, and
/// Redis' clock. Canceled before (by this or another request): the same answer. Ended
/// otherwise: 409 `verification-ended`.
pub async fn cancel(flow: &CallFlow, id: &VerificationId) -> Result<(Verification, i64), ApiError> {
    let t = flow.store.transition(id, "", Event::Cancel).await?;
    if t.outcome == Outcome::Missing {
        return Err(ApiError::NotFound("no such verification".into()));
    }
    if t.outcome == Outcome::Ok {
        flow.ended(id, &t, true);
        end_call(flow, id).await;
    }
    match t.status {
        Some(Status::Canceled) => {}
        status => {
            return Err(ApiError::VerificationEnded(format!(
                "the verification already ended as {}",
                status.map_or("unknown", Status::as_str)
            )));
        }
    }
    let verification = flow
        .store
        .verification(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such verification".into()))?;
    Ok((verification, t.now))
}

/// Asks the provider that holds the call to end it. Without a call id yet the call is still
/// being placed: the start ends it once the provider answers (`start::dial_accounts`). A
/// failure is logged: the verification is canceled whatever the provider does, and a call that
/// goes on hears "no longer valid" at its next webhook.
async fn end_call(flow: &CallFlow, id: &VerificationId) {
    let view = match flow.store.reconcile_view(id).await {
        Ok(Some(view)) => view,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(verification = %id, %error, "canceled call not ended: its record is unreadable");
            return;
        }
    };
    let Some(call_id) = view.call_sid else {
        return;
    };
    let Some(provider) = flow.providers.get(&view.provider).cloned() else {
        return;
    };
    match provider.end_call(&call_id).await {
        Ok(()) => {
            tracing::info!(verification = %id, provider = view.provider, "canceled call ended")
        }
        Err(error) => {
            tracing::warn!(verification = %id, provider = view.provider, %error, "canceled call not ended by the provider")
        }
    }
}
