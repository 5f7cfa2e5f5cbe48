//! `DELETE /v1/tenants/{tenant}/users/{user}/block` (admin key): lifts the block a fraud report
//! put on a user. Idempotent: 204 whether or not the user was blocked.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::ids::{UserId, user_tag};
use crate::state::AppState;

/// Lift a fraud block (admin)
///
/// Unblocks a user who reported a call as fraud, whether or not they were blocked (audited as
/// `user.unblocked`). Admin keys only.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/users/{user}/block", operation_id = "unblock_user", tag = "abuse",
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses(
        (status = 204, description = "The user may be called again (also when they were not blocked)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key, or not an admin key"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad user id"),
    ))]
pub(super) async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let user = UserId::parse(&user).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let was_blocked = state
        .store
        .unblock(&user_tag(&caller.tenant, &user))
        .await?;
    tracing::info!(tenant = %caller.tenant, was_blocked, "fraud block lifted by an admin");
    Ok(StatusCode::NO_CONTENT)
}
