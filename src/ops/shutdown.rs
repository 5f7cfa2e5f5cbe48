//! Graceful shutdown with a deadline. When the signal comes, every listener is closed at once (new
//! connections are refused, so a load balancer moves on); a request already received — one in
//! flight, one whose head is still arriving, one the kernel holds for an idle keep-alive
//! connection — is answered with `Connection: close`, and idle connections close. `on_drain`
//! runs as the drain begins (the server answers its long-polls then, with their current state,
//! so none is cut). Whatever is still running after `grace` is dropped when the process exits.
//! Redis stays consistent either way, because every state change is a single atomic script — a
//! request cut short has either applied its transition or not at all.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::connections::{Connections, Limits};

/// One listener, what it serves and its connection limits.
pub struct Site {
    pub listener: TcpListener,
    pub router: Router,
    pub limits: Limits,
}

/// Serves every site until `signal` resolves, runs `on_drain`, then drains for at most `grace`.
pub async fn serve_with_grace(
    sites: Vec<Site>,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    on_drain: impl FnOnce(),
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connections: Vec<Connections> = sites.iter().map(|s| Connections::new(s.limits)).collect();
    let accepting = sites.into_iter().zip(&connections).map(|(site, conns)| {
        let mut stop = stop_rx.clone();
        conns.accept(site.listener, site.router, async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
    });
    let accepting = futures_util::future::join_all(accepting);
    tokio::pin!(accepting);
    tokio::select! {
        () = signal => {}
        // Only if every listener failed for good: nothing left to serve.
        _ = &mut accepting => {}
    }
    let _ = stop_tx.send(true);
    accepting.await;
    connections.iter().for_each(Connections::begin_drain);
    on_drain();
    let drained = futures_util::future::join_all(connections.iter().map(Connections::drained));
    match tokio::time::timeout(grace, drained).await {
        Ok(_) => tracing::info!("server stopped; no request left in flight"),
        Err(_) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "shutdown grace period over: unfinished requests are dropped"
        ),
    }
    Ok(())
}
