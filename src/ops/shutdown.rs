//! Graceful shutdown with a deadline. When the signal comes, the listener is closed at once (new
//! connections are refused, so a load balancer moves on), idle keep-alive connections are
//! closed, and in-flight requests get `grace` to finish. After that the server stops waiting:
//! what is still running is dropped when the process exits. Redis stays consistent either way,
//! because every state change is a single atomic script — a request cut short has either
//! applied its transition or not at all.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `signal` resolves, then drains for at most `grace`.
pub async fn serve_with_grace(
    listener: TcpListener,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    // Connect info: the per-IP rate limit falls back to the peer address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            signal.await;
            let _ = signalled_tx.send(());
        })
        .into_future();
    let deadline = async move {
        match signalled_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server ended on its own: nothing to time.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => {
            tracing::info!("server stopped; no request left in flight");
            result
        }
        () = deadline => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutdown grace period over: unfinished requests are dropped"
            );
            Ok(())
        }
    }
}
