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
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use config::Config;
use error::ApiError;
use state::AppState;

/// Every route of the server.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    Router::new()
        .merge(api::router())
        .merge(telephony::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(1), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable"),
    }
}

/// Connects to Redis and builds the shared state.
pub async fn build_state(
    config: Config,
) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
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
        events,
        public_url: Arc::from(config.server.public_url.trim_end_matches('/')),
        config: Arc::new(config),
        store,
        twilio,
        notifier,
        twiml: Arc::new(twiml),
        keys: Arc::new(keys),
    })
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// The event delivery worker (`events.deliver`) runs alongside and stops at the same signal.
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
    // Connect info: the per-IP rate limit falls back to the peer address.
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(signal)
        .await;
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    served
}
