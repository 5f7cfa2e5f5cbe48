//! Connection hygiene: the accept loop and its ceiling. The webhook routes face the internet, so
//! slow or silent clients must not exhaust the process: open connections are bounded
//! (`server.max_connections`) below the descriptor limit (raised to its hard value at start), so
//! the accept loop never meets "too many open files" and there are always descriptors left for
//! Redis, the provider and events. Each connection's deadlines and its part in a drain live in
//! [`super::connection`]; docs/DECISIONS.md says why this is not `axum::serve`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::connection::{self, Stop};

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
                connection::serve(stream, peer, router, limits, stop).await;
                drop(permit);
            });
        }
        drop(listener);
    }

    /// Tells every connection to finish (see [`super::connection`]) and waits until all have
    /// closed.
    pub async fn drain(&self) {
        self.begin_drain();
        self.drained().await;
    }

    /// Tells every connection to finish: from now on every response says `Connection: close`.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
    }

    /// Resolves once every connection has closed.
    pub async fn drained(&self) {
        let _ = self.permits.acquire_many(self.ceiling).await;
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
}
