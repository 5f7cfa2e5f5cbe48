//! `GET /v1/tenants/{tenant}/phone-numbers/{number}?region=NL`: can this number be called?
//! Asked by a portal before it offers "call me". Always 200 for a number it could read or not
//! (`valid: false` with a `reason`); 422 only for a malformed `region`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use crate::abuse::numbers::{self, Lookup};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/phone-numbers/{number}", get(lookup))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    region: Option<String>,
}

async fn lookup(
    State(_state): State<AppState>,
    caller: Caller,
    Path((_tenant, number)): Path<(String, String)>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Lookup>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    if let Some(region) = &query.region
        && (region.len() != 2 || !region.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(ApiError::InvalidRequest(
            "region must be an ISO 3166 alpha-2 code such as NL".into(),
        ));
    }
    Ok(axum::Json(numbers::lookup(
        &caller.tenant,
        &number,
        query.region.as_deref(),
    )))
}
