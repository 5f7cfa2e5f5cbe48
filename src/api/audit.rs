//! `GET /v1/tenants/{tenant}/users/{user}/audit`: the user's security-info events, newest first.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::methods::user_id;
use crate::error::{ApiError, Problem};
use crate::ids::user_tag;
use crate::state::AppState;
use crate::store::AuditEntry;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// How many events, 1-200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// One audit event. Empty fields are left out.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditEvent {
    /// RFC 3339, second precision.
    at: String,
    /// method.registered, method.deleted, default_method.changed, verification.approved,
    /// verification.failed, verification.fraud_reported, user.unblocked; an External MFA
    /// sign-in's end: external_mfa.approved, external_mfa.denied, external_mfa.canceled,
    /// external_mfa.refused.
    action: String,
    /// The method id; for default_method.changed the new default option ("" = none).
    method: String,
    /// registered, deleted, changed, approved, fraud_reported, or the failed status; for a
    /// sign-in: approved, denied, canceled, refused.
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    /// Failure reason, why the default changed (requested, method_deleted, method_registered),
    /// or why a sign-in was refused or denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Masked phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    /// default_method.changed: the default before.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    /// Verification ends: the provider account of the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
    /// External MFA sign-ins: Entra's `client-request-id`, to find the sign-in in Entra's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditDocument {
    events: Vec<AuditEvent>,
}

impl AuditEvent {
    fn from_entry(mut entry: AuditEntry) -> Self {
        let mut take = |k: &str| entry.fields.remove(k).filter(|v| !v.is_empty());
        // Scripts store masked numbers; mask again anything that is not, never to leak one.
        let phone = take("phone").map(|p| {
            if p.contains('*') {
                p
            } else {
                crate::phone::mask_e164(&p)
            }
        });
        AuditEvent {
            at: crate::clock::rfc3339(entry.at_ms.div_euclid(1000)),
            action: take("action").unwrap_or_default(),
            method: take("method").unwrap_or_default(),
            outcome: take("outcome").unwrap_or_default(),
            kind: take("kind"),
            verification: take("verification"),
            purpose: take("purpose"),
            reason: take("reason"),
            previous: take("previous"),
            provider: take("provider"),
            client_request_id: take("client_request_id"),
            phone,
        }
    }
}

/// Read a user's audit trail
///
/// The user's security-info events (methods registered and deleted, default changes,
/// verification outcomes, unblocks, External MFA sign-ins), newest first; numbers masked.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users/{user}/audit", operation_id = "list_audit_events", tag = "audit",
    params(("tenant" = String, Path), ("user" = String, Path), AuditQuery),
    responses(
        (status = 200, body = AuditDocument, description = "Newest first, from the user's capped audit stream"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad user id or limit"),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AuditDocument>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit must be 1..={MAX_LIMIT}")))?,
    };
    let tag = user_tag(&caller.tenant, &user_id(&user)?);
    let entries = state.store.audit(&tag, limit).await?;
    Ok(axum::Json(AuditDocument {
        events: entries.into_iter().map(AuditEvent::from_entry).collect(),
    }))
}
