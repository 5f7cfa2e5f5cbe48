//! Graceful shutdown with a deadline. When the signal comes, the listener is closed at once (new
//! connections are refused, so a load balancer moves on), idle keep-alive connections are
//! closed, and in-flight requests — including one whose head is still arriving on a keep-alive
//! connection — get `grace` to finish; their responses carry `Connection: close`. After that the
//! server stops waiting: what is still running is dropped when the process exits. Redis stays
//! consistent either way, because every state change is a single atomic script — a request cut
//! short has either applied its transition or not at all.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::connections::{Connections, Limits};

/// Serves `router` on `listener` until `signal` resolves, then drains for at most `grace`.
pub async fn serve_with_grace(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let connections = Connections::new(limits);
    connections.accept(listener, router, signal).await;
    match tokio::time::timeout(grace, connections.drain()).await {
        Ok(()) => tracing::info!("server stopped; no request left in flight"),
        Err(_) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "shutdown grace period over: unfinished requests are dropped"
        ),
    }
    Ok(())
}
