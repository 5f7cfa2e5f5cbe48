//! The verification lifecycle, in one place: its types ([`Verification`]; its [`Status`] and
//! [`FailureReason`] are the call's vocabulary, `src/call/`), the [`CallFlow`] handles it works with, and its steps in the order a call
//! lives them — [`start`] (check, store, dial), [`webhooks`] (answered, keys, progress),
//! [`transition`] (the state machine's vocabulary) and [`end`] (what follows an end).
//!
//! State machine: `calling → ringing → answered → approved | fraud_reported | failed(reason) |
//! expired | canceled`. Terminal states never change; each transition is one atomic, guarded
//! script in Redis (`src/store/scripts/transition.lua`). See docs/ARCHITECTURE.md.

pub mod cancel;
pub mod end;
mod flow;
pub mod model;
pub mod reconcile;
pub mod start;
pub mod transition;
mod undialled;
mod unknown;
pub mod unschedule;
pub mod webhooks;

pub use crate::call::prompts;
pub use crate::call::{FailureReason, Purpose, Status};
pub use flow::{CallFlow, FlowSettings};

use serde::{Deserialize, Serialize};

/// The stored verification, as read back from Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub id: String,
    pub tenant: String,
    pub user: String,
    pub purpose: Purpose,
    pub status: Status,
    /// Why it failed; `None` otherwise.
    pub reason: Option<FailureReason>,
    /// The provider's own error for `provider_rejected` / `provider_failed`.
    pub provider_error: Option<String>,
    pub phone_e164: String,
    pub phone_type: String,
    pub locale: String,
    /// The provider account that placed (or was asked to place) the call.
    pub provider: String,
    pub method_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
    /// How long the call waited for the provider account's pacing (calls per second).
    pub queued_ms: Option<u64>,
}

/// The API's view of a verification (`GET …/verifications/{id}`, `POST …/verifications`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerificationView {
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_error: Option<String>,
    /// The provider account that placed the call (after a failover, the one that took it),
    /// or that refused it last.
    #[serde(default)]
    pub provider: String,
    pub purpose: Purpose,
    pub user: String,
    /// Masked: the API never echoes a full number it is verifying.
    pub phone_number: String,
    pub phone_type: String,
    pub locale: String,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    /// Milliseconds the call waited for a provider slot (`provider.calls_per_second`) before it
    /// was dialled; absent when it did not wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<u64>,
}

impl Verification {
    /// The status a reader should see at `now`: an open verification past its expiry is expired.
    pub fn effective_status(&self, now: i64) -> (Status, Option<FailureReason>) {
        if !self.status.is_terminal() && now >= self.expires_at {
            (Status::Expired, Some(FailureReason::Expired))
        } else {
            (self.status, self.reason)
        }
    }

    pub fn view(&self, now: i64) -> VerificationView {
        let (status, reason) = self.effective_status(now);
        VerificationView {
            id: self.id.clone(),
            status,
            reason,
            provider_error: self.provider_error.clone(),
            provider: self.provider.clone(),
            purpose: self.purpose,
            user: self.user.clone(),
            phone_number: crate::phone::mask_e164(&self.phone_e164),
            phone_type: self.phone_type.clone(),
            locale: self.locale.clone(),
            created_at: crate::clock::rfc3339(self.created_at),
            updated_at: crate::clock::rfc3339(self.updated_at),
            expires_at: crate::clock::rfc3339(self.expires_at),
            queued_ms: self.queued_ms,
        }
    }
}
