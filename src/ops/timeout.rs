//! Inbound request deadline (`server.request_timeout_ms`). A long-poll that asks to wait
//! (`?wait=SECONDS`, capped at the API's maximum) gets that much more, so a 30 s wait is never
//! cut by a 10 s deadline. A request over its deadline is dropped where it stands — safe,
//! because every state change is one atomic Redis script — and answered: provider webhooks get
//! the spoken apology (TwiML) rather than the provider's "application error", everything else
//! a 503 problem+json.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::MAX_WAIT_SECS;
use crate::error::ApiError;

#[derive(Clone)]
pub struct RequestTimeouts {
    base: Duration,
    /// The apology TwiML, rendered once at start-up.
    apology: std::sync::Arc<str>,
}

impl RequestTimeouts {
    pub fn new(base: Duration, apology_twiml: String) -> Self {
        Self {
            base,
            apology: apology_twiml.into(),
        }
    }

    /// The deadline of one request: the base, plus the long-poll wait it asked for.
    fn deadline(&self, req: &Request) -> Duration {
        let wait = req
            .uri()
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "wait")
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            })
            .map_or(0, |w| w.min(MAX_WAIT_SECS));
        self.base + Duration::from_secs(wait)
    }
}

impl RequestTimeouts {
    /// Runs the rest of the stack for `req`: answered in time, or answered by us.
    pub async fn run(&self, req: Request, next: Next) -> Response {
        let deadline = self.deadline(&req);
        let is_webhook = req.uri().path().starts_with("/telephony/");
        match tokio::time::timeout(deadline, next.run(req)).await {
            Ok(response) => response,
            Err(_) => self.timed_out(deadline, is_webhook),
        }
    }

    fn timed_out(&self, deadline: Duration, is_webhook: bool) -> Response {
        if is_webhook {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "webhook timed out: answered with the apology"
            );
            let mut response = self.apology.to_string().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            response
        } else {
            // Logged once, by the error's own response.
            ApiError::Unavailable(format!("request deadline of {deadline:?} exceeded"))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn app() -> Router {
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        };
        Router::new()
            .route("/v1/slow", get(slow))
            .route("/telephony/twilio/x/gather", post(slow))
            .layer(axum::middleware::from_fn_with_state(
                RequestTimeouts::new(Duration::from_millis(50), "<Response/>".into()),
                |axum::extract::State(t): axum::extract::State<RequestTimeouts>,
                 req: Request,
                 next: Next| async move { t.run(req, next).await },
            ))
    }

    async fn call(method: &str, uri: &str) -> (u16, String, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let r = app().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, ct, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn slow_api_requests_get_a_503_problem() {
        let (status, ct, body) = call("GET", "/v1/slow").await;
        assert_eq!(status, 503);
        assert_eq!(ct, "application/problem+json");
        assert!(body.contains("\"status\":503"), "{body}");
    }

    #[tokio::test]
    async fn a_long_poll_gets_its_wait_on_top_of_the_deadline() {
        let (status, _, body) = call("GET", "/v1/slow?wait=1").await;
        assert_eq!(status, 200);
        assert_eq!(body, "done");
    }

    #[tokio::test]
    async fn slow_webhooks_get_the_spoken_apology() {
        let (status, ct, body) = call("POST", "/telephony/twilio/x/gather").await;
        assert_eq!(status, 200);
        assert_eq!(ct, "text/xml");
        assert_eq!(body, "<Response/>");
    }
}
