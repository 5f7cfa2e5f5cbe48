//! callverify: a self-hostable phone-call verification (IVR) server.
//!
//! Code tour: `config` (settings) → [`app`] (every route) → `api` (the portal-facing management
//! API) → `verification` (starting a call) → `telephony` (provider webhooks, signatures, TwiML)
//! → `store` (every Redis command) → `provider` (placing calls) → `simulator` (a carrier for the
//! demo and the tests).

pub mod abuse;
pub mod api;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod ids;
pub mod methods;
pub mod notify;
pub mod ops;
pub mod phone;
pub mod policy;
pub mod provider;
pub mod simulator;
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
    let router = Router::new()
        .merge(api::router())
        .merge(telephony::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops::readiness::readyz))
        .route("/metrics", get(ops::metrics::render))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this route does not take that HTTP method".into())
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone());
    ops::layer(router, &state)
}

/// Builds the shared state. Redis is connected lazily: a Redis that does not answer yet does not
/// stop the start (see `ops::readiness`).
pub async fn build_state(
    config: Config,
) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
    ops::metrics::install();
    // The phone-number metadata loads lazily, for a few hundred ms of CPU: do it now rather
    // than inside the first verification's request.
    let _ = phone::parse("+14255551234", None);
    let store = store::Store::connect(
        config.redis.url.expose(),
        &config.redis.prefix,
        Duration::from_millis(config.redis.timeout_ms),
    )
    .await?;
    let notifier = notify::Notifier::start(store.clone(), Duration::from_secs(2)).await;
    // The simulator is reached through the production Twilio client: only `api_base` differs.
    let (simulator, twilio) = match config.provider.kind {
        config::ProviderKind::Simulator => {
            let options = simulator::SimulatorOptions::from_config(&config.provider);
            let handle = simulator::start(options).await?;
            let mut twilio_config = config.provider.twilio.clone();
            twilio_config.api_base = handle.base_url();
            tracing::info!(api_base = %twilio_config.api_base, "carrier simulator started");
            let client = provider::twilio::TwilioClient::new(&twilio_config)?;
            (Some(Arc::new(handle)), client)
        }
        config::ProviderKind::Twilio => (
            None,
            provider::twilio::TwilioClient::new(&config.provider.twilio)?,
        ),
    };
    let twiml = telephony::twiml::Twiml::new(&config.verification.default_locale)?;
    let keys = api::auth::KeyRing::from_config(&config.tenants);
    let events = events::Emitter::from_config(&config.tenants);
    Ok(AppState {
        simulator,
        events: Arc::new(events),
        public_url: Arc::from(config.server.public_url.trim_end_matches('/')),
        config: Arc::new(config),
        store,
        twilio: Arc::new(twilio),
        notifier,
        twiml: Arc::new(twiml),
        keys: Arc::new(keys),
        policies: Arc::default(),
    })
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then stops accepting and lets
/// in-flight requests finish for at most `server.shutdown_grace_ms`. The event delivery worker
/// (`events.deliver`) runs alongside and stops at the same signal.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = state.config.events.deliver.then(|| {
        events::delivery::spawn(
            state.store.clone(),
            state.config.events.clone(),
            &state.config.tenants,
            stop_rx,
        )
    });
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms);
    let limits = ops::connections::Limits {
        header_read_timeout: Duration::from_millis(state.config.server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(state.config.server.idle_timeout_ms),
        max_connections: state.config.server.max_connections,
    };
    let served = ops::shutdown::serve_with_grace(listener, app(state), limits, signal, grace).await;
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    served
}
