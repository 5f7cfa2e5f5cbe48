//! The management API portals call (`/v1/…`): JSON in and out, bearer keys per tenant,
//! errors as problem+json.

pub mod auth;
mod blocks;
pub mod json;
mod methods;
mod phone_numbers;
mod verifications;

use axum::Router;

use crate::state::AppState;

pub use verifications::MAX_WAIT_SECS;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(verifications::router())
        .merge(methods::router())
        .merge(blocks::router())
        .merge(phone_numbers::router())
}
