//! `GET`/`PUT /v1/tenants/{tenant}/policy` (admin keys only): the tenant's method policy.

use axum::extract::State;

use super::auth::Caller;
use super::json::Json;
use crate::error::{ApiError, Problem};
use crate::ids::TenantId;
use crate::policy::{self, Policy, PolicyInput};
use crate::state::AppState;

/// Read the tenant policy (admin)
///
/// Which method kinds are enabled, the countries and number types callverify may call, and the
/// default prompt language. Admin keys only.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/policy", operation_id = "get_policy", tag = "policy",
    params(("tenant" = String, Path)),
    responses(
        (status = 200, body = Policy, description = "The stored policy, or the configured default"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "`admin-key-required` (a portal key) or `forbidden` (another tenant's key)"),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Policy>, ApiError> {
    caller.require_admin()?;
    Ok(axum::Json(current(&state, &caller.tenant).await?))
}

/// The tenant's policy as stored now (else the configured default), read for each request: the
/// API answers by the policy a `PUT` just stored, on every instance.
pub(super) async fn current(state: &AppState, tenant: &TenantId) -> Result<Policy, ApiError> {
    policy::load(&state.store, &state.flow.settings.default_policy, tenant).await
}

/// Replace the tenant policy (admin)
///
/// Replaces the whole policy document; left-out optional fields take the configured default.
/// Applies at once on this instance and within about a second on the others. Admin keys only.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/policy", operation_id = "replace_policy", tag = "policy",
    params(("tenant" = String, Path)),
    request_body(content = PolicyInput, description = "The whole policy; fields left out take the configured default"),
    responses(
        (status = 200, body = Policy, description = "The stored policy"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "`admin-key-required` or `forbidden`"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`payload-too-large`"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "`unsupported-media-type`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`invalid-request`: malformed JSON, unknown field, bad country code, number type or locale"),
    ))]
pub(super) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<PolicyInput>, ApiError>,
) -> Result<axum::Json<Policy>, ApiError> {
    // The scope is checked before the body is read: a portal key learns nothing from it.
    caller.require_admin()?;
    let Json(input) = body?;
    let defaults = state.config.default_policy();
    let policy = input
        .resolve(&defaults.blocked_number_types, &defaults.default_locale)
        .map_err(ApiError::InvalidRequest)?;
    let json = serde_json::to_string(&policy)
        .map_err(|e| ApiError::Internal(format!("policy json: {e}")))?;
    state.store.set_policy(&caller.tenant, &json).await?;
    state.flow.policies.forget(&caller.tenant);
    tracing::info!(tenant = %caller.tenant, "policy replaced");
    Ok(axum::Json(policy))
}
