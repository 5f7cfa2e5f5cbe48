//! A request body that stops arriving is the client's slowness, not an outage: the deadline
//! layer (`timeout.rs`) watches whether a request's body was read to its end, and a request over
//! its deadline whose body is still arriving is answered `408` `request-timeout` (and counted in
//! `callverify_request_body_timeouts_total`) instead of the router's "a backing service did not
//! answer" answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Whether a watched body was read to its end.
#[derive(Clone, Debug, Default)]
pub struct Arrived(Arc<AtomicBool>);

impl Arrived {
    pub fn complete(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Watches `req`'s body when it has one (a length over 0, or chunked); `None` for requests
/// without a body, which cost nothing.
pub fn watch(req: Request) -> (Request, Option<Arrived>) {
    if req.body().is_end_stream() {
        return (req, None);
    }
    let arrived = Arrived::default();
    let watched = arrived.clone();
    let req = req.map(|inner| {
        Body::new(Watched {
            inner,
            arrived: watched,
        })
    });
    (req, Some(arrived))
}

/// The answer to a request whose body had not fully arrived by its deadline.
pub fn answer(path: &str) -> Response {
    metrics::counter!(crate::ops::metrics::REQUEST_BODY_TIMEOUTS).increment(1);
    tracing::info!(
        path = path.split('/').nth(1).unwrap_or_default(),
        "request body still arriving at the deadline: 408"
    );
    let mut response =
        ApiError::RequestTimeout("the request body did not arrive in time".into()).into_response();
    // The rest of the body may still come: the connection cannot carry another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pin_project_lite::pin_project! {
    struct Watched {
        #[pin]
        inner: Body,
        arrived: Arrived,
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.arrived.0.store(true, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.arrived.0.store(true, Ordering::Relaxed);
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
