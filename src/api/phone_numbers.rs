//! `GET /v1/tenants/{tenant}/phone-numbers/{number}?region=NL`: can this number be called?
//! Asked by a portal before it offers "call me". Always 200 for a number it could read or not
//! (`valid: false` with a `reason`); 422 only for a malformed `region`.

use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::auth::Caller;
use crate::abuse::numbers::{self, Lookup};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LookupQuery {
    /// ISO 3166 alpha-2 region for numbers typed without `+country`.
    region: Option<String>,
}

/// Look a number up
///
/// Whether a number can be called before offering "call me": its E.164 form, country and line
/// type. A number that cannot be read is still a 200 (`valid: false` with a `reason`).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/phone-numbers/{number}", operation_id = "lookup_phone_number", tag = "abuse",
    params(("tenant" = String, Path), ("number" = String, Path, description = "The number as typed (URL-encoded)"), LookupQuery),
    responses(
        (status = 200, body = Lookup, description = "Whether the number is valid and callable under the tenant policy"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad region"),
    ))]
pub(super) async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, number)): Path<(String, String)>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Lookup>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    if let Some(region) = &query.region
        && !crate::phone::known_regions().contains(&region.as_str())
    {
        return Err(ApiError::InvalidRequest(
            "region must be an uppercase ISO 3166 alpha-2 code such as NL".into(),
        ));
    }
    let policy = super::policy::current(&state, &caller.tenant).await?;
    Ok(axum::Json(numbers::lookup(
        &policy,
        &number,
        query.region.as_deref(),
    )))
}
