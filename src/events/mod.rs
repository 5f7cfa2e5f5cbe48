//! Events to portal back-ends: what happened to a user's security info, queued in a Redis stream
//! (the outbox) and delivered signed per Standard Webhooks.

pub mod delivery;
pub mod signature;

use std::collections::HashSet;

use rand::RngExt;
use serde::Serialize;

use crate::config::TenantConfig;
use crate::store::Store;

/// Event types (exact strings are a contract with portals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "verification.approved")]
    VerificationApproved,
    #[serde(rename = "verification.failed")]
    VerificationFailed,
    #[serde(rename = "verification.fraud_reported")]
    VerificationFraudReported,
    #[serde(rename = "verification.canceled")]
    VerificationCanceled,
    #[serde(rename = "method.registered")]
    MethodRegistered,
    #[serde(rename = "method.deleted")]
    MethodDeleted,
    #[serde(rename = "default_method.changed")]
    DefaultMethodChanged,
}

impl EventType {
    /// Every event type callverify sends (the OpenAPI document's `webhooks`).
    pub const ALL: [EventType; 7] = [
        EventType::VerificationApproved,
        EventType::VerificationFailed,
        EventType::VerificationFraudReported,
        EventType::VerificationCanceled,
        EventType::MethodRegistered,
        EventType::MethodDeleted,
        EventType::DefaultMethodChanged,
    ];
}

/// The JSON body of an event.
#[derive(Debug, Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_: EventType,
    tenant: &'a str,
    user: &'a str,
    timestamp: String,
    data: serde_json::Value,
}

/// Queues events for the tenants that configured an `events_url`; others emit nothing.
#[derive(Clone, Debug, Default)]
pub struct Emitter {
    tenants: HashSet<String>,
}

impl Emitter {
    pub fn from_config(tenants: &[TenantConfig]) -> Self {
        Self {
            tenants: tenants
                .iter()
                .filter(|t| t.events_url.is_some())
                .map(|t| t.id.as_str().to_owned())
                .collect(),
        }
    }

    /// Queues one event. A failure is logged, not returned: the change it reports is already
    /// stored and the audit stream holds it.
    /// True when no tenant has an `events_url`: every emit would be a no-op.
    pub fn is_off(&self) -> bool {
        self.tenants.is_empty()
    }

    pub async fn emit(
        &self,
        store: &Store,
        tenant: &str,
        user: &str,
        type_: EventType,
        data: serde_json::Value,
    ) {
        self.emit_as(store, None, tenant, user, type_, data).await;
    }

    /// Like [`Emitter::emit`], with an event id derived from `key` (when given) instead of a
    /// random one: an event that may be queued twice (a verification's end, announced by
    /// whoever finds it owed) carries the same `webhook-id` both times, so portals drop the
    /// repeat as Standard Webhooks asks.
    pub async fn emit_as(
        &self,
        store: &Store,
        key: Option<&str>,
        tenant: &str,
        user: &str,
        type_: EventType,
        data: serde_json::Value,
    ) {
        if !self.tenants.contains(tenant) {
            return;
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = Body {
            type_,
            tenant,
            user,
            timestamp: crate::clock::rfc3339(now),
            data,
        };
        let Ok(json) = serde_json::to_string(&body) else {
            return;
        };
        let id = match key {
            Some(key) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(key.as_bytes());
                format!("msg_{}", hex::encode(&digest[..12]))
            }
            None => {
                let random: [u8; 12] = rand::rng().random();
                format!("msg_{}", hex::encode(random))
            }
        };
        if let Err(e) = store.enqueue_event(&id, tenant, &json).await {
            tracing::error!(error = %e, event = ?type_, "event not queued");
        }
    }
}
