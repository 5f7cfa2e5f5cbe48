//! What follows a verification's end, whichever event ended it: the metric, its leaving the
//! reconciliation schedule (`unschedule.rs`), and the portal's events (queued in the outbox off
//! the caller's path). The end itself — audit entry, method
//! registration, fraud block, the live slot released, the long-poll wake-up published — is part
//! of the atomic transition (`src/store/scripts/transition.lua`).

use super::transition::Transition;
use super::{CallFlow, Purpose, Status, Verification};
use crate::events::EventType;
use crate::ids::VerificationId;
use crate::methods::{Method, MethodDetails, PhoneType};

impl CallFlow {
    /// Called after every transition: when it ended the verification (`t.ended` is true exactly
    /// once per verification), counts the end and, if `announce`, queues the portal's events.
    pub fn ended(&self, id: &VerificationId, t: &Transition, announce: bool) {
        if !t.ended {
            return;
        }
        let purpose = t.purpose.map_or("unknown", Purpose::as_str);
        let reason = t.reason.map_or("other", |r| r.as_str());
        let status = t.status.map_or("unknown", Status::as_str);
        crate::ops::metrics::verification_ended(status, purpose, reason);
        // Its final callback is no longer awaited: no reconciliation check for it.
        self.unschedule.ended(id);
        // No tenant takes events: nothing to read, nothing to queue.
        if !announce || self.events.is_off() {
            return;
        }
        let (flow, id) = (self.clone(), id.clone());
        tokio::spawn(async move {
            match flow.store.verification(&id).await {
                // It just ended, so its view no longer depends on the clock: its own
                // `updated_at` serves as "now" (no extra `TIME` round trip).
                Ok(Some(v)) => flow.announce(&v).await,
                Ok(None) => {}
                Err(e) => tracing::error!(verification = %id, error = %e, "end not announced"),
            }
        });
    }

    /// The events an end produces: its outcome, and for an approved registration the phone
    /// method it registered (the same `Method` type the API shows, number masked).
    /// Announces an ended verification whose events are still owed (`announce` set in the same
    /// step as the end), then clears the mark. Used where the reply of the ending transition
    /// was lost: reconciliation, a webhook's retry.
    pub async fn announce_owed(&self, id: &VerificationId) -> redis::RedisResult<()> {
        if let Some(v) = self.store.verification(id).await?
            && v.status.is_terminal()
        {
            self.announce(&v).await;
        }
        Ok(())
    }

    async fn announce(&self, v: &Verification) {
        let type_ = match v.status {
            Status::Approved => EventType::VerificationApproved,
            Status::FraudReported => EventType::VerificationFraudReported,
            Status::Canceled => EventType::VerificationCanceled,
            _ => EventType::VerificationFailed,
        };
        let data = serde_json::json!({ "verification": v.view(v.updated_at) });
        let (store, tenant, user) = (&self.store, v.tenant.as_str(), v.user.as_str());
        let key = format!("{}:{}", v.id, v.status.as_str());
        let events = &self.events;
        events
            .emit_as(store, Some(&key), tenant, user, type_, data)
            .await;
        if v.status == Status::Approved && v.purpose == Purpose::Registration {
            self.announce_method(v).await;
        }
        // Announced (or nothing to announce): no longer owed.
        if let Ok(id) = VerificationId::parse(&v.id)
            && let Err(e) = store.clear_announce(&id).await
        {
            tracing::warn!(verification = %v.id, error = %e, "announced end still marked owed");
        }
    }

    /// `method.registered` for an approved registration.
    async fn announce_method(&self, v: &Verification) {
        let (store, tenant, user) = (&self.store, v.tenant.as_str(), v.user.as_str());
        let Some(phone_type) = PhoneType::parse(&v.phone_type) else {
            return;
        };
        let details = MethodDetails::Phone {
            phone_number: v.phone_e164.clone(),
            phone_type,
        };
        let method = Method {
            id: phone_type.method_id().to_owned(),
            usable_for: details.usable_for(),
            details,
            created_at: crate::clock::rfc3339(v.updated_at),
        };
        let data = serde_json::json!({ "method": method.masked() });
        let key = format!("{}:method.registered", v.id);
        let type_ = EventType::MethodRegistered;
        self.events
            .emit_as(store, Some(&key), tenant, user, type_, data)
            .await;
    }
}
