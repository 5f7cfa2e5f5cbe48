//! The life of one HTTP/1.1 connection: its deadlines, and how it ends when the server drains.
//!
//! - A request head must arrive within `server.header_read_timeout_ms` of its first byte, and a
//!   new connection must start one within that time of its accept.
//! - An idle keep-alive connection closes after `server.idle_timeout_ms`.
//!
//! Hyper's own `header_read_timeout` is armed whenever hyper waits for a head, idle keep-alive
//! connections included, so both deadlines are kept here instead: the socket reads tell when a
//! head begins, the service wrapper when a request starts and ends.
//!
//! Draining (see [`super::connections::Connections::drain`]): a connection with a request in
//! flight answers it with `Connection: close` and closes; one receiving a head waits for that
//! request and does the same; an idle one first lets the runtime read what the kernel already
//! holds (a request sent just before the signal is answered too), then closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::connections::Limits;

/// What the watcher of one connection needs to know, shared with the socket and the service.
pub(super) struct Activity {
    started: Instant,
    /// Milliseconds since `started` at the first byte of a head not yet turned into a request
    /// (`u64::MAX`: no head pending).
    head_since: AtomicU64,
    /// Milliseconds since `started` when the connection last became idle.
    idle_since: AtomicU64,
    in_flight: AtomicU32,
    served_any: AtomicBool,
    /// Set while draining: a request that starts then tells the watcher (`request_began`).
    watched: AtomicBool,
    request_began: Notify,
}

impl Activity {
    const NO_HEAD: u64 = u64::MAX;

    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            head_since: AtomicU64::new(Self::NO_HEAD),
            idle_since: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            served_any: AtomicBool::new(false),
            watched: AtomicBool::new(false),
            request_began: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.started + Duration::from_millis(ms)
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == Self::NO_HEAD
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(Self::NO_HEAD, Ordering::Relaxed);
        if self.watched.load(Ordering::Relaxed) {
            self.request_began.notify_one();
        }
    }

    fn request_ended(&self) {
        self.ended_at(self.now_ms());
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn ended_at(&self, ms: u64) {
        self.idle_since.store(ms, Ordering::Relaxed);
        self.served_any.store(true, Ordering::Relaxed);
    }

    fn receiving_head(&self) -> bool {
        self.head_since.load(Ordering::Relaxed) != Self::NO_HEAD
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// When the connection must be closed if nothing else happens; `None` while a request is in
    /// flight (the request timeout bounds it).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.busy() {
            return None;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        if head != Self::NO_HEAD {
            return Some(self.at(head) + limits.header_read_timeout);
        }
        let idle = self.at(self.idle_since.load(Ordering::Relaxed));
        // A connection that never sent a request gets the head deadline from its accept.
        Some(if self.served_any.load(Ordering::Relaxed) {
            idle + limits.idle_timeout
        } else {
            idle + limits.header_read_timeout
        })
    }
}

/// Marks a request ended when its response head is ready or the request is abandoned.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The shutdown signal as a connection sees it.
pub(super) struct Stop {
    pub(super) signal: watch::Receiver<bool>,
    /// Set with `signal`: read by every response on its way out (a relaxed load).
    pub(super) draining: Arc<AtomicBool>,
}

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    stop: Stop,
) {
    let Stop {
        signal: mut stop,
        draining: shutting_down,
    } = stop;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
            activity.request_started();
            let guard = InFlight(activity.clone());
            request.extensions_mut().insert(ConnectInfo(peer));
            let (router, shutting_down) = (router.clone(), shutting_down.clone());
            async move {
                // Held until the response head is ready: hyper then writes the body on its own,
                // and a connection still writing is busy for hyper's graceful shutdown too.
                let _in_flight = guard;
                let mut response = router.oneshot(request.map(Body::new)).await?;
                // Shutting down: hyper closes the connection after a response that says so,
                // whenever the request started (no race with the watcher below).
                if shutting_down.load(Ordering::Relaxed) {
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our deadlines replace hyper's header timeout (see the module doc).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = *stop.borrow();
    let mut asked_to_close = false;
    // While draining: whether the runtime has since read the sockets' readiness, so bytes the
    // kernel already holds have reached hyper (a head being received) if there were any.
    let mut settled = false;
    let tick = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(tick);
    loop {
        if draining && !asked_to_close {
            activity.watched.store(true, Ordering::Relaxed);
            // Busy: the response in flight carries `Connection: close`; idle: closes now.
            // Receiving a head: the request it starts wakes this loop (`request_began`).
            if activity.busy() || (settled && !activity.receiving_head()) {
                conn.as_mut().graceful_shutdown();
                asked_to_close = true;
            }
        }
        let next = match activity.deadline(&limits) {
            Some(deadline) if deadline <= Instant::now() => {
                tracing::debug!(%peer, "closing a slow or idle connection");
                return;
            }
            Some(deadline) => deadline,
            None => Instant::now() + limits.header_read_timeout,
        };
        tick.as_mut().reset(next);
        let deciding = draining && !asked_to_close;
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !draining => {
                if changed.is_err() || *stop.borrow() {
                    draining = true;
                }
            }
            // The runtime polls its I/O driver before it wakes a deferred task: readable
            // sockets are marked, so the next poll of `conn` reads what has arrived.
            () = tokio::task::yield_now(), if deciding && !settled => settled = true,
            () = activity.request_began.notified(), if deciding => {}
            () = &mut tick => {}
        }
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_connection_phase() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        };
        let secs = Duration::from_secs;
        let a = Activity::new();
        let t0 = a.started;
        // Silent since accept: the head deadline.
        assert_eq!(a.deadline(&limits), Some(t0 + secs(10)));
        // The first byte of a head (3 s in) starts the head deadline.
        a.head_since.store(3_000, Ordering::Relaxed);
        assert_eq!(a.deadline(&limits), Some(t0 + secs(13)));
        a.bytes_read(); // more of the same head: the deadline stays
        assert_eq!(a.deadline(&limits), Some(t0 + secs(13)));
        a.request_started();
        assert_eq!(a.deadline(&limits), None);
        a.bytes_read(); // the body: not a new head
        assert_eq!(a.deadline(&limits), None);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
        a.ended_at(4_000);
        // Idle keep-alive: the idle deadline.
        assert_eq!(a.deadline(&limits), Some(t0 + secs(64)));
        a.head_since.store(9_000, Ordering::Relaxed);
        assert_eq!(a.deadline(&limits), Some(t0 + secs(19)));
    }
}
