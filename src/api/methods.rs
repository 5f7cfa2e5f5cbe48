//! `GET /v1/tenants/{tenant}/users/{user}/methods`: the user's security-info methods and
//! default sign-in method.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use super::auth::Caller;
use crate::error::ApiError;
use crate::ids::{UserId, user_tag};
use crate::methods::MethodsDocument;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/users/{user}/methods", get(list))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
) -> Result<axum::Json<MethodsDocument>, ApiError> {
    let user = UserId::parse(&user).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let document = state
        .store
        .methods(&user_tag(&caller.tenant, &user))
        .await?;
    Ok(axum::Json(document))
}
