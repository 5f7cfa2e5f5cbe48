//! The management API portals call (`/v1/…`): JSON in and out, bearer keys per tenant,
//! errors as problem+json. [`routes`] is the one list of `/v1` routes: the router is built from
//! it and a test checks each of them against the OpenAPI document ([`openapi`]).

mod audit;
pub mod auth;
mod blocks;
pub mod client_ip;
pub mod idempotency;
pub mod json;
mod methods;
pub mod openapi;
mod openapi_contract;
mod openapi_shapes;
mod openapi_webhooks;
mod phone_numbers;
mod policy;
mod verifications;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::error::ApiError;

use crate::state::AppState;

pub use verifications::MAX_WAIT_SECS;

/// One `/v1` route: method, path (axum syntax, the same in the OpenAPI document) and handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard HTTP method");
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every `/v1` route.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/v1/tenants/{tenant}/users/{user}/verifications",
            verifications::create,
        ),
        route(
            Method::GET,
            "/v1/tenants/{tenant}/verifications/{id}",
            verifications::read,
        ),
        route(
            Method::POST,
            "/v1/tenants/{tenant}/verifications/{id}/cancel",
            verifications::cancel,
        ),
        route(
            Method::GET,
            "/v1/tenants/{tenant}/users/{user}/methods",
            methods::list,
        ),
        route(
            Method::POST,
            "/v1/tenants/{tenant}/users/{user}/methods",
            methods::add,
        ),
        route(
            Method::DELETE,
            "/v1/tenants/{tenant}/users/{user}/methods/{id}",
            methods::delete,
        ),
        route(
            Method::PUT,
            "/v1/tenants/{tenant}/users/{user}/default-method",
            methods::set_default,
        ),
        route(
            Method::GET,
            "/v1/tenants/{tenant}/users/{user}/audit",
            audit::list,
        ),
        route(Method::GET, "/v1/tenants/{tenant}/policy", policy::read),
        route(Method::PUT, "/v1/tenants/{tenant}/policy", policy::replace),
        route(
            Method::DELETE,
            "/v1/tenants/{tenant}/users/{user}/block",
            blocks::unblock,
        ),
        route(
            Method::GET,
            "/v1/tenants/{tenant}/phone-numbers/{number}",
            phone_numbers::lookup,
        ),
    ]
}

/// The `/v1` routes and `/openapi.json`, each under `server.request_timeout_ms` — plus, for a
/// long-poll, the wait it asks for (capped at [`MAX_WAIT_SECS`]), so a 30 s wait is never cut
/// by a 10 s deadline.
pub fn router(base_deadline: Duration) -> Router<AppState> {
    let router = routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .route("/openapi.json", axum::routing::get(openapi::serve));
    // Logged once, by the error's own response.
    let on_timeout = Arc::new(|_: &str, deadline: Duration| {
        ApiError::Unavailable(format!("request deadline of {deadline:?} exceeded")).into_response()
    });
    crate::ops::timeout::layer(router, base_deadline, long_poll_wait, on_timeout)
}

/// The wait a request asks for (`?wait=SECONDS`), capped at [`MAX_WAIT_SECS`].
fn long_poll_wait(req: &Request) -> Duration {
    let wait = req
        .uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "wait")
                .and_then(|(_, v)| v.parse::<u64>().ok())
        })
        .map_or(0, |w| w.min(MAX_WAIT_SECS));
    Duration::from_secs(wait)
}
