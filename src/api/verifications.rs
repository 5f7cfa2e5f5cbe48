//! `POST /v1/tenants/{tenant}/users/{user}/verifications` (with `Idempotency-Key`),
//! `GET /v1/tenants/{tenant}/verifications/{id}?wait=SECONDS` (long-poll) and
//! `POST /v1/tenants/{tenant}/verifications/{id}/cancel`.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::idempotency;
use super::json::Json;
use crate::error::{ApiError, Problem};
use crate::ids::{UserId, VerificationId, user_tag};
use crate::notify;
use crate::state::AppState;
use crate::verification::start::{self, StartRequest};
use crate::verification::{Verification, VerificationView};

/// Longest long-poll a request may ask for.
pub const MAX_WAIT_SECS: u64 = 30;

/// Start a verification call
///
/// Calls the user: a `registration` call to the number typed (approval registers it as a phone
/// method), or a `sign_in` / `password_reset` call to a registered phone. Answers at once with
/// the verification (`calling`); follow it with `GET …/verifications/{id}?wait=30`. Send an
/// `Idempotency-Key` to retry safely: the same key with the same body answers the same
/// verification for 24 h and never calls twice.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/users/{user}/verifications", operation_id = "start_verification", tag = "verifications",
    params(("tenant" = String, Path), ("user" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters: the same key with the same body answers the same verification for 24 h (never a second call); with another body, 422 `idempotency-key-reused`")),
    request_body = StartRequest,
    responses(
        (status = 202, body = VerificationView, description = "Calling, or failed with the provider's refusal (`reason`, `provider_error`); a repeated `Idempotency-Key` answers the first request's verification"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown method_id"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`verification-in-progress`: the user already has a live verification call, named by `verification_id` (follow or cancel it); `conflict`: an alternate mobile before a mobile"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`payload-too-large`"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "`unsupported-media-type`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`invalid-request`, `invalid-phone-number`, `number-type-blocked`, `country-not-allowed`, `method-disabled`, `no-phone-method`, `idempotency-key-reused`"),
        (status = 423, body = Problem, content_type = "application/problem+json", description = "`user-blocked`: the user reported fraud and is blocked from verification calls"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`rate-limited`: `limit` names the limit; `Retry-After` says when to try again"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`unavailable`: Redis did not answer in time"),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(client_ip): ClientIp,
    Path((_tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<StartRequest>,
) -> Result<Response, ApiError> {
    let user = UserId::parse(&user).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let tag = user_tag(&caller.tenant, &user);
    let body = serde_json::to_value(&request).map_err(|e| ApiError::Internal(e.to_string()))?;
    let idem = idempotency::from_request(&headers, "start_verification", &body)?;
    // A claim outlives the longest a start can take (pacing, throttling retries, failover).
    let lock = Duration::from_millis(state.flow.settings.placement_ms + 60_000);
    let (flow, tenant, start_tag) = (state.flow.clone(), caller.tenant.clone(), tag.clone());
    let start = async move {
        // `now` is Redis' clock as the call was placed: no separate `TIME` round trip.
        let (verification, now) =
            start::start(&flow, &tenant, &user, &start_tag, client_ip, request).await?;
        let view = serde_json::to_value(verification.view(now))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok((StatusCode::ACCEPTED, view))
    };
    idempotency::once(&state.store, &tag, idem, lock, start).await
}

/// Cancel a live verification
///
/// Ends a verification that is still `calling`, `ringing` or `answered` as `canceled`: the
/// provider is told to end the call, the user's live slot is freed (a new call may start at
/// once) and `verification.canceled` is sent. Canceling it again answers the same; one that
/// ended otherwise is a 409 `verification-ended`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/verifications/{id}/cancel", operation_id = "cancel_verification", tag = "verifications",
    params(("tenant" = String, Path), ("id" = String, Path, description = "48 lowercase hex")),
    responses(
        (status = 200, body = VerificationView, description = "Canceled (now, or before: the same answer)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown verification, or another tenant's"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`verification-ended`: it already ended otherwise (approved, failed, expired, fraud reported)"),
    ))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, id)): Path<(String, String)>,
) -> Result<axum::Json<VerificationView>, ApiError> {
    let not_found = || ApiError::NotFound("no such verification".into());
    let id = VerificationId::parse(&id).map_err(|_| not_found())?;
    load(&state, &caller, &id).await?.ok_or_else(not_found)?;
    let (verification, now) = crate::verification::cancel::cancel(&state.flow, &id).await?;
    Ok(axum::Json(verification.view(now)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReadQuery {
    /// Long-poll: answer on the first status change or after this many seconds (0-30).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 30)]
    wait: Option<String>,
}

/// Read a verification (long-poll)
///
/// The verification as it is now; with `wait`, the answer comes as soon as its status changes
/// (or at once when it is final), else after `wait` seconds.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/verifications/{id}", operation_id = "get_verification", tag = "verifications",
    params(("tenant" = String, Path), ("id" = String, Path, description = "48 lowercase hex"), ReadQuery),
    responses(
        (status = 200, body = VerificationView, description = "The verification as it is now, or after its first status change within `wait` seconds"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown verification, or another tenant's"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad `wait`"),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, id)): Path<(String, String)>,
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<VerificationView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let wait = match query.wait.as_deref() {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("wait must be 0..={MAX_WAIT_SECS} seconds"))
            })?,
    };
    let not_found = || ApiError::NotFound("no such verification".into());
    let id = VerificationId::parse(&id).map_err(|_| not_found())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // Listen before the first read so an announcement between the two still wakes us.
    let mut changes = state.notifier.listen();
    let first = load(&state, &caller, &id).await?.ok_or_else(not_found)?;
    let first_view = first.view(state.store.now().await?);
    if wait == 0 || first_view.status.is_terminal() {
        return Ok(axum::Json(first_view));
    }
    let read = || async {
        let current = load(&state, &caller, &id).await?.ok_or_else(not_found)?;
        Ok::<_, ApiError>(current.view(state.store.now().await?))
    };
    // Only a caller's own, existing verification is followed (on a cluster: its shard channel
    // subscribed). A new subscription may have missed an announcement: read again then.
    let first_status = first_view.status;
    let mut view = first_view;
    if changes.follow(&id).await? {
        view = read().await?;
    }
    while view.status == first_status {
        let read_again = notify::changed(&mut changes, &id, deadline).await;
        view = read().await?;
        if !read_again {
            break; // the deadline: the latest state, changed or not
        }
    }
    Ok(axum::Json(view))
}

/// The verification if it exists and belongs to the caller's tenant (else `None`: 404, so ids of
/// other tenants are indistinguishable from unknown ones).
async fn load(
    state: &AppState,
    caller: &Caller,
    id: &VerificationId,
) -> Result<Option<Verification>, ApiError> {
    Ok(state
        .store
        .verification(id)
        .await?
        .filter(|v| v.tenant == caller.tenant.as_str()))
}
