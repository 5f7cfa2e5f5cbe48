//! What operators need around the product: Prometheus metrics, request ids and request spans,
//! inbound timeouts, and graceful shutdown. Each concern lives in its own file; [`layer`] puts
//! request ids, spans and HTTP metrics around every route as one middleware. Nothing here knows
//! the product: metrics take plain labels, and each router brings its own timeout answer.

pub mod connection;
pub mod connections;
pub mod log_fields;
pub mod metrics;
pub mod request_id;
pub mod shutdown;
pub mod slow_body;
pub mod timeout;

use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument;

/// Wraps every route (and the fallback) of `router` in [`around_request`].
pub fn layer(router: Router) -> Router {
    router.layer(middleware::from_fn(around_request))
}

/// Request id and span, HTTP metrics — one middleware rather than two, because each axum
/// `from_fn` layer costs a clone of the inner service and a boxed future on every request, the
/// keypress webhook's included. The span covers everything, so whatever is logged inside
/// carries the request id; the metrics see a timed-out request's answer.
async fn around_request(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::settle(req.headers());
    let span = request_id::span(&req, &id);
    let labels = metrics::HttpLabels::of(&req);
    req.extensions_mut().insert(id.clone());
    let mut response = next.run(req).instrument(span).await;
    labels.record(response.status(), started.elapsed());
    request_id::echo(&mut response, id);
    response
}
