//! callverify: a self-hostable phone-call verification (IVR) server.
//!
//! Code tour (docs/ARCHITECTURE.md walks one "call me" through it): `config` (settings) →
//! [`app`] (every route) → `api` (the portal-facing management API) → `verification` (the
//! lifecycle: start, webhooks, transitions, end) → `provider` (the provider-neutral core and
//! one folder per provider) → `telephony` (provider webhooks over HTTP) → `store` (every Redis
//! command but `notify`'s subscriptions) → `events` (signed events to portals). The carrier simulator for the demo
//! and the tests is its own crate, `callverify_simulator` (crates/simulator).

pub mod abuse;
pub mod api;
pub mod call;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod external_mfa;
pub mod ids;
pub mod methods;
pub mod notify;
pub mod ops;
pub mod phone;
pub mod policy;
pub mod provider;
pub mod readiness;
pub mod state;
pub mod store;
pub mod telephony;
pub mod verification;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;

use config::Config;
use error::ApiError;
use state::AppState;

/// Every route of the server, wrapped in the operations layers (request id, metrics, timeout).
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    let deadline = Duration::from_millis(state.config.server.request_timeout_ms);
    let mut router = Router::new()
        .merge(api::router(deadline))
        .merge(telephony::router(&state))
        .merge(external_mfa::router(deadline));
    if state.config.server.ops_on_public {
        router = router.merge(ops_routes());
    }
    let router = router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this route does not take that HTTP method".into())
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    ops::layer(router)
}

/// `/healthz`, `/readyz` and `/metrics`: on the public listener (`server.ops_on_public`) and on
/// `server.ops_listen`.
fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness::readyz))
        .route("/metrics", get(ops::metrics::render))
}

/// What the `server.ops_listen` listener serves: the operations routes alone.
pub fn ops_app(state: AppState) -> Router {
    let router = ops_routes()
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state);
    ops::layer(router)
}

/// Builds the shared state. Redis is connected lazily: a Redis that does not answer yet does not
/// stop the start (see `readiness`).
pub async fn build_state(
    config: Config,
) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
    ops::metrics::install();
    // The phone-number metadata loads lazily, for a few hundred ms of CPU: do it now rather
    // than inside the first verification's request.
    let _ = phone::parse("+14255551234", None);
    let store = store::Store::open(&config.redis).await?;
    let notifier = notify::Notifier::start(store.clone(), Duration::from_secs(2)).await;
    let (simulators, providers) = provider::accounts::start(&config).await?;
    let simulator = simulators.first().map(|(_, handle)| handle.clone());
    let keys = api::auth::KeyRing::from_config(&config.tenants);
    let external_mfa = external_mfa::ExternalMfa::from_config(&config)?;
    if let Some(mfa) = &external_mfa {
        mfa.warm_up();
    }
    let flow = verification::CallFlow {
        store: store.clone(),
        providers,
        events: Arc::new(events::Emitter::from_config(&config.tenants)),
        policies: Arc::default(),
        settings: Arc::new(verification::FlowSettings::from_config(&config)),
        unschedule: verification::unschedule::Unschedule::start(store.clone()),
    };
    Ok(AppState::new(state::Handles {
        simulator,
        simulators: Arc::new(simulators),
        config: Arc::new(config),
        store,
        flow,
        notifier,
        keys: Arc::new(keys),
        external_mfa,
    }))
}

/// Serves `app(state)` on `listener` (and `ops_app` on `server.ops_listen`, bound here) until
/// `shutdown` resolves, then stops accepting and lets in-flight requests finish for at most
/// `server.shutdown_grace_ms`; long-polls answer at once then. The event delivery worker
/// (`events.deliver`) runs alongside and stops at the same signal.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ops = match state.config.server.ops_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    serve_with_ops(listener, ops, state, shutdown).await
}

/// [`serve`] with the ops listener already bound (`None`: no ops listener).
pub async fn serve_with_ops(
    listener: TcpListener,
    ops: Option<TcpListener>,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = state.config.events.deliver.then(|| {
        events::delivery::spawn(
            state.store.clone(),
            state.config.events.clone(),
            &state.config.tenants,
            stop_rx.clone(),
        )
    });
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let reconciler = verification::reconcile::spawn(state.flow.clone(), stop_rx.clone());
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms);
    let limits = ops::connections::Limits {
        header_read_timeout: Duration::from_millis(state.config.server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(state.config.server.idle_timeout_ms),
        max_connections: state.config.server.max_connections,
    };
    let mut sites = Vec::new();
    if let Some(ops) = ops {
        tracing::info!(listen = %ops.local_addr()?, "ops listener (/healthz, /readyz, /metrics)");
        let limits = ops::connections::Limits {
            max_connections: state.config.server.ops_max_connections,
            ..limits
        };
        let router = ops_app(state.clone());
        sites.push(ops::shutdown::Site {
            listener: ops,
            router,
            limits,
        });
    }
    let notifier = state.notifier.clone();
    let router = app(state);
    sites.insert(
        0,
        ops::shutdown::Site {
            listener,
            router,
            limits,
        },
    );
    let served =
        ops::shutdown::serve_with_grace(sites, signal, grace, move || notifier.close()).await;
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), reconciler).await;
    served
}
