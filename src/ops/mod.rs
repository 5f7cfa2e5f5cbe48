//! What operators need around the product: Prometheus metrics, request ids and request spans,
//! inbound timeouts, and graceful shutdown. Each middleware lives in its own file; [`layer`]
//! stacks them onto the app in one place.

pub mod metrics;
pub mod request_id;
pub mod shutdown;
pub mod timeout;

use axum::Router;
use axum::middleware;

use crate::state::AppState;
use crate::telephony::twiml::Closing;

/// Wraps every route (and the fallback) of `router`, outermost first: request id + span, HTTP
/// metrics, inbound timeout. The span is outermost so everything logged inside carries the
/// request id; metrics sit outside the timeout so a timed-out request is counted with its 503.
pub fn layer(router: Router, state: &AppState) -> Router {
    let timeouts = timeout::RequestTimeouts::new(
        std::time::Duration::from_millis(state.config.server.request_timeout_ms),
        state
            .twiml
            .goodbye(&state.config.verification.default_locale, Closing::Apology),
    );
    router
        .layer(middleware::from_fn_with_state(timeouts, timeout::enforce))
        .layer(middleware::from_fn(metrics::track_http))
        .layer(middleware::from_fn(request_id::propagate))
}
