//! Inbound request deadlines, layered per router (`server.request_timeout_ms`). Each router says
//! how much extra time a request may ask for (the API: a long-poll's `?wait=`) and how a request
//! over its deadline is answered (the API: a 503 problem; provider webhooks: a spoken apology in
//! the provider's markup) — unless its body is still arriving: that is a `408`
//! (`slow_body.rs`). A request over its deadline is dropped where it stands — safe,
//! because every state change is one atomic Redis script.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::response::Response;
use tower::{Layer, Service};

/// How a request over its deadline is answered: given its path and the deadline it missed.
pub type OnTimeout = Arc<dyn Fn(&str, Duration) -> Response + Send + Sync>;

#[derive(Clone)]
struct Deadlines {
    base: Duration,
    /// Extra time the request asks for on top of `base`.
    extra: fn(&Request) -> Duration,
    on_timeout: OnTimeout,
}

/// Wraps every route of `router` in a deadline of `base` plus `extra(request)`.
///
/// A plain tower layer rather than `axum::middleware::from_fn`: it calls the route directly
/// instead of cloning it and boxing a future on every request (the keypress webhook's included).
pub fn layer<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    base: Duration,
    extra: fn(&Request) -> Duration,
    on_timeout: OnTimeout,
) -> Router<S> {
    router.layer(DeadlineLayer(Deadlines {
        base,
        extra,
        on_timeout,
    }))
}

#[derive(Clone)]
struct DeadlineLayer(Deadlines);

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            deadlines: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Deadline<S> {
    inner: S,
    deadlines: Deadlines,
}

impl<S> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let d = &self.deadlines;
        let deadline = d.base + (d.extra)(&req);
        // A `Uri` clone shares its bytes: no copy of the path on the hot path.
        let uri = req.uri().clone();
        let (req, body) = super::slow_body::watch(req);
        DeadlineFuture {
            inner: tokio::time::timeout(deadline, self.inner.call(req)),
            uri,
            body,
            deadline,
            on_timeout: d.on_timeout.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's answer in time, or the router's answer to a request over its deadline.
    struct DeadlineFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        uri: Uri,
        // Whether the request's body arrived (`None`: it had none).
        body: Option<super::slow_body::Arrived>,
        deadline: Duration,
        on_timeout: OnTimeout,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for DeadlineFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.inner.poll(cx)) {
            Ok(answered) => answered,
            // A body still arriving is the client's slowness: 408, whatever the router says.
            Err(_elapsed) if this.body.as_ref().is_some_and(|b| !b.complete()) => {
                Ok(super::slow_body::answer(this.uri.path()))
            }
            Err(_elapsed) => Ok((this.on_timeout)(this.uri.path(), *this.deadline)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app() -> Router {
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        };
        let on_timeout: OnTimeout = Arc::new(|path: &str, _| {
            (StatusCode::SERVICE_UNAVAILABLE, format!("late: {path}")).into_response()
        });
        // `?slow` asks for a second more (as a long-poll's wait does).
        let extra = |req: &Request| {
            if req.uri().query() == Some("slow") {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            }
        };
        layer(
            Router::new().route("/x", get(slow)),
            Duration::from_millis(50),
            extra,
            on_timeout,
        )
    }

    async fn call(uri: &str) -> (u16, String) {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let r = app().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_request_over_its_deadline_gets_the_routers_answer() {
        assert_eq!(call("/x").await, (503, "late: /x".to_owned()));
    }

    #[tokio::test]
    async fn a_request_gets_the_extra_time_it_asks_for() {
        assert_eq!(call("/x?slow").await, (200, "done".to_owned()));
    }
}
