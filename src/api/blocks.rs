//! `DELETE /v1/tenants/{tenant}/users/{user}/block` (admin key): lifts the block a fraud report
//! put on a user. Idempotent: 204 whether or not the user was blocked.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::delete;

use super::auth::Caller;
use crate::error::ApiError;
use crate::ids::{UserId, user_tag};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/users/{user}/block", delete(unblock))
}

async fn unblock(
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
