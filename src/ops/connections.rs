//! Connection hygiene: the accept loop and the life of each HTTP/1.1 connection.
//!
//! The webhook routes face the internet, so slow or silent clients must not exhaust the process:
//! - a ceiling on open connections (`server.max_connections`), kept below the descriptor limit
//!   (raised to its hard value at start), so the accept loop never meets "too many open files"
//!   and there are always descriptors left for Redis, the provider and events;
//! - a deadline for a request head, from its first byte or from the accept
//!   (`server.header_read_timeout_ms`), so half a request then silence, or nothing at all, does
//!   not hold a connection;
//! - a deadline for an idle keep-alive connection (`server.idle_timeout_ms`).
//!
//! Hyper's own `header_read_timeout` also runs on idle keep-alive connections (it is armed
//! whenever hyper waits for a head), so both deadlines are kept here instead: the socket reads
//! tell when a head begins, the service wrapper when a request starts and ends.
//!
//! Graceful shutdown ([`Connections::drain`]) tells every connection: one with a request in
//! flight answers it with `Connection: close` and closes; one receiving a head waits for that
//! request and does the same; an idle one closes at once.

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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Descriptors kept free of HTTP connections: Redis, the provider, events, logs, the listener.
const RESERVED_DESCRIPTORS: u64 = 256;

/// How the server treats connections (from `[server]`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Raises the soft descriptor limit to the hard one (once per process) and returns the
/// connection ceiling that fits under it: `wanted`, or less when descriptors are short.
pub fn ceiling(wanted: usize) -> usize {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let limit = *LIMIT.get_or_init(|| {
        #[cfg(unix)]
        {
            let (_, hard) = rlimit::Resource::NOFILE.get().ok()?;
            match rlimit::increase_nofile_limit(hard) {
                Ok(raised) => Some(raised),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot raise the open-file limit");
                    rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
                }
            }
        }
        #[cfg(not(unix))]
        None
    });
    fit(wanted, limit)
}

fn fit(wanted: usize, descriptor_limit: Option<u64>) -> usize {
    // Each connection is one descriptor; the rest of the process needs its own.
    let room = descriptor_limit.map_or(u64::MAX, |limit| {
        limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)
    });
    let fitted = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
    // `drain` takes every permit back at once: at most u32::MAX of them.
    fitted.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// The open connections, bounded by a semaphore: one permit each.
pub struct Connections {
    permits: Arc<Semaphore>,
    ceiling: u32,
    limits: Limits,
    stop: watch::Sender<bool>,
    /// Set with `stop`: read by every response on its way out (a relaxed load).
    draining: Arc<AtomicBool>,
}

impl Connections {
    pub fn new(limits: Limits) -> Self {
        let ceiling = ceiling(limits.max_connections);
        if ceiling < limits.max_connections {
            tracing::warn!(
                max_connections = limits.max_connections,
                ceiling,
                "server.max_connections lowered to fit the open-file limit"
            );
        }
        Self {
            permits: Arc::new(Semaphore::new(ceiling)),
            ceiling: u32::try_from(ceiling).unwrap_or(u32::MAX),
            limits,
            stop: watch::channel(false).0,
            draining: Arc::default(),
        }
    }

    /// Accepts connections until `stop` resolves, then closes the listener. At the ceiling the
    /// loop waits for a connection to end: new ones queue in the kernel's backlog meanwhile.
    pub async fn accept(
        &self,
        listener: TcpListener,
        router: Router,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let permit = tokio::select! {
                () = &mut stop => break,
                permit = self.permits.clone().acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
            };
            let (stream, peer) = tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Per-connection errors (reset before accept) and resource
                        // exhaustion alike: pause briefly rather than spin.
                        tracing::warn!(error = %e, "accept error");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let (router, limits) = (router.clone(), self.limits);
            let stop = Stop {
                signal: self.stop.subscribe(),
                draining: self.draining.clone(),
            };
            tokio::spawn(async move {
                serve_connection(stream, peer, router, limits, stop).await;
                drop(permit);
            });
        }
        drop(listener);
    }

    /// Tells every connection to finish (see the module doc) and waits until all have closed.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        let _ = self.permits.acquire_many(self.ceiling).await;
    }
}

/// What the watcher of one connection needs to know, shared with the socket and the service.
struct Activity {
    started: Instant,
    /// Milliseconds since `started` at the first byte of a head not yet turned into a request
    /// (`u64::MAX`: no head pending).
    head_since: AtomicU64,
    /// Milliseconds since `started` when the connection last became idle.
    idle_since: AtomicU64,
    in_flight: AtomicU32,
    served_any: AtomicBool,
}

impl Activity {
    const NO_HEAD: u64 = u64::MAX;

    fn new() -> Self {
        Self {
            started: Instant::now(),
            head_since: AtomicU64::new(Self::NO_HEAD),
            idle_since: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            served_any: AtomicBool::new(false),
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
struct Stop {
    signal: watch::Receiver<bool>,
    draining: Arc<AtomicBool>,
}

async fn serve_connection(
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
    let tick = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(tick);
    loop {
        if draining && !asked_to_close && (activity.busy() || !activity.receiving_head()) {
            // Busy: the response in flight carries `Connection: close`; idle: closes now.
            conn.as_mut().graceful_shutdown();
            asked_to_close = true;
        }
        let next = match activity.deadline(&limits) {
            Some(deadline) if deadline <= Instant::now() => {
                tracing::debug!(%peer, "closing a slow or idle connection");
                return;
            }
            Some(deadline) => deadline,
            None => Instant::now() + limits.header_read_timeout,
        };
        // While draining, a head being received is re-checked often: its request must start
        // before the connection is told to close.
        let next = if draining && !asked_to_close {
            next.min(Instant::now() + Duration::from_millis(10))
        } else {
            next
        };
        tick.as_mut().reset(next);
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
    fn the_ceiling_leaves_descriptors_for_the_rest_of_the_process() {
        assert_eq!(fit(10_000, None), 10_000);
        assert_eq!(fit(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fit(10_000, Some(1024)), 1024 - 256);
        assert_eq!(fit(10_000, Some(100)), 1);
        assert_eq!(fit(0, Some(1024)), 1);
        assert_eq!(fit(usize::MAX, None), u32::MAX as usize);
    }

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
