//! What operators need around the product: Prometheus metrics, request ids and request spans,
//! inbound timeouts, and graceful shutdown. Each concern lives in its own file; [`layer`] puts
//! them around every route as one middleware.

pub mod connections;
pub mod log_fields;
pub mod metrics;
pub mod readiness;
pub mod request_id;
pub mod shutdown;
pub mod timeout;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument;

use crate::state::AppState;
use crate::telephony::twiml::Closing;
use timeout::RequestTimeouts;

/// Wraps every route (and the fallback) of `router` in [`around_request`].
pub fn layer(router: Router, state: &AppState) -> Router {
    let timeouts = RequestTimeouts::new(
        Duration::from_millis(state.config.server.request_timeout_ms),
        state
            .twiml
            .goodbye(&state.config.verification.default_locale, Closing::Apology),
    );
    router.layer(middleware::from_fn_with_state(timeouts, around_request))
}

/// Request id and span, inbound deadline, HTTP metrics — one middleware rather than three,
/// because each axum `from_fn` layer costs a clone of the inner service and a boxed future on
/// every request, the keypress webhook's included. The span covers everything, so whatever is
/// logged inside carries the request id; the metrics see a timed-out request's 503.
async fn around_request(
    State(timeouts): State<RequestTimeouts>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id::settle(req.headers());
    let span = request_id::span(&req, &id);
    let labels = metrics::HttpLabels::of(&req);
    req.extensions_mut().insert(id.clone());
    let mut response = timeouts.run(req, next).instrument(span).await;
    labels.record(response.status(), started.elapsed());
    request_id::echo(&mut response, id);
    response
}
