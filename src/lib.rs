//! callverify: a self-hostable phone-call verification (IVR) server.
//!
//! Code tour (docs/ARCHITECTURE.md walks one "call me" through it): `config` (settings) →
//! [`app`] (every route) → `api` (the portal-facing management API) → `verification` (the
//! lifecycle: start, webhooks, transitions, end) → `provider` (the provider-neutral core and
//! one folder per provider) → `telephony` (provider webhooks over HTTP) → `store` (every Redis
//! command) → `events` (signed events to portals). The carrier simulator for the demo
//! and the tests is its own crate, `callverify_simulator` (crates/simulator).

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
    let router = Router::new()
        .merge(api::router(deadline))
        .merge(telephony::router(&state))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness::readyz))
        .route("/metrics", get(ops::metrics::render))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this route does not take that HTTP method".into())
        })
        .layer(DefaultBodyLimit::max(body_limit))
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
    let (simulators, providers) = start_provider(&config).await?;
    let simulator = simulators.first().map(|(_, handle)| handle.clone());
    let keys = api::auth::KeyRing::from_config(&config.tenants);
    let flow = verification::CallFlow {
        store: store.clone(),
        providers,
        events: Arc::new(events::Emitter::from_config(&config.tenants)),
        policies: Arc::default(),
        settings: Arc::new(verification::FlowSettings::from_config(&config)),
    };
    Ok(AppState::new(state::Handles {
        simulator,
        simulators: Arc::new(simulators),
        config: Arc::new(config),
        store,
        flow,
        notifier,
        keys: Arc::new(keys),
    }))
}

type Simulators = Vec<(String, Arc<callverify_simulator::SimulatorHandle>)>;

/// Builds every provider account: the `[[providers]]` entries in file order, or the
/// single-provider form (`[provider] kind` + `[provider.twilio]`) as one account named `twilio`.
/// Simulator accounts start their in-process carrier first; the adapter of the simulator's
/// dialect reaches it exactly as it would reach the provider (only `api_base` differs).
async fn start_provider(
    config: &Config,
) -> Result<(Simulators, provider::Providers), Box<dyn std::error::Error + Send + Sync>> {
    let locale = &config.verification.default_locale;
    let verification = &config.verification;
    let mut simulators = Vec::new();
    let mut accounts = Vec::new();
    if config.providers.is_empty() {
        let mut twilio_config = config.provider.twilio.clone();
        twilio_config.time_limit_secs = twilio_config.time_limit(&config.verification);
        if config.provider.kind == config::ProviderKind::Simulator {
            let handle = callverify_simulator::start(simulator_options(&config.provider)).await?;
            twilio_config.api_base = handle.base_url();
            tracing::info!(api_base = %twilio_config.api_base, "carrier simulator started");
            simulators.push(("twilio".to_owned(), Arc::new(handle)));
        }
        let twilio = provider::twilio::Twilio::new("twilio", &twilio_config, locale)?;
        accounts.push(provider::Account {
            provider: Arc::new(twilio),
            pacing: provider::Pacing {
                calls_per_second: config.provider.calls_per_second,
                max_queue_ms: config.provider.max_queue_ms,
            },
        });
    }
    for account in &config.providers {
        let built: Arc<dyn provider::Provider> = match account {
            config::AccountConfig::Twilio(a) => {
                let rest = config::TwilioConfig {
                    account_sid: a.account_sid.clone(),
                    auth_token: a.auth_token.clone(),
                    api_key_sid: a.api_key_sid.clone(),
                    api_key_secret: a.api_key_secret.clone(),
                    auth_token_secondary: a.auth_token_secondary.clone(),
                    api_base: a.api_base.clone(),
                    from: a.from.clone(),
                    ring_timeout_secs: a.ring_timeout_secs,
                    request_timeout_ms: a.request_timeout_ms,
                    time_limit_secs: verification.time_limit(a.time_limit_secs),
                    machine_detection: a.machine_detection,
                };
                Arc::new(provider::twilio::Twilio::new(&a.name, &rest, locale)?)
            }
            config::AccountConfig::Signalwire(a) => {
                let a = config::SignalWireAccount {
                    time_limit_secs: verification.time_limit(a.time_limit_secs),
                    ..a.clone()
                };
                Arc::new(provider::signalwire::SignalWire::new(&a, locale)?)
            }
            config::AccountConfig::Telnyx(a) => {
                let a = config::TelnyxAccount {
                    time_limit_secs: verification.time_limit(a.time_limit_secs),
                    ..a.clone()
                };
                Arc::new(provider::telnyx::Telnyx::new(&a, locale)?)
            }
            config::AccountConfig::Plivo(a) => {
                let a = config::PlivoAccount {
                    time_limit_secs: verification.time_limit(a.time_limit_secs),
                    ..a.clone()
                };
                Arc::new(provider::plivo::Plivo::new(&a, locale)?)
            }
            config::AccountConfig::Simulator(a) => {
                let (handle, adapter) = start_simulator_account(a, config).await?;
                simulators.push((a.name.clone(), handle));
                adapter
            }
        };
        accounts.push(provider::Account {
            provider: built,
            pacing: account.pacing(&config.provider),
        });
    }
    let tenants = config
        .tenants
        .iter()
        .filter_map(|t| Some((t.id.as_str().to_owned(), t.providers.clone()?)))
        .collect();
    let providers = provider::Providers::new(accounts, tenants)?;
    Ok((simulators, providers))
}

/// A `kind = "simulator"` account: its carrier, started with credentials of its own, and the
/// adapter of its dialect pointed at it.
async fn start_simulator_account(
    account: &config::SimulatorAccount,
    config: &Config,
) -> Result<
    (
        Arc<callverify_simulator::SimulatorHandle>,
        Arc<dyn provider::Provider>,
    ),
    Box<dyn std::error::Error + Send + Sync>,
> {
    use callverify_simulator::Dialect;
    let random = || {
        use rand::RngExt;
        hex::encode(rand::rng().random::<[u8; 16]>())
    };
    let (account_sid, auth_token, signing_key) = (random(), random(), format!("PSK{}", random()));
    let handle = callverify_simulator::start(callverify_simulator::SimulatorOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        account_sid: account_sid.clone(),
        auth_token: auth_token.clone(),
        time_scale: config.provider.simulator.time_scale,
        dialect: account.dialect,
        signing_key: signing_key.clone(),
    })
    .await?;
    // `refuse_calls`: present a token the simulator does not know; it refuses as the provider
    // refuses bad credentials (a certain refusal: the next account takes the call).
    let presented = if account.refuse_calls {
        config::Secret::new(format!("not-{auth_token}"))
    } else {
        config::Secret::new(auth_token)
    };
    let api_base = handle.api_base();
    let locale = &config.verification.default_locale;
    let (name, from, ring) = (
        account.name.clone(),
        account.from.clone(),
        account.ring_timeout_secs,
    );
    let request_timeout_ms = config.provider.twilio.request_timeout_ms;
    // The simulator honours the same bounds as the providers: the derived time limit, and
    // machine detection when the account asks for it.
    let time_limit_secs = config.verification.time_limit(account.time_limit_secs);
    let machine_detection = account.machine_detection;
    let adapter: Arc<dyn provider::Provider> = match account.dialect {
        Dialect::Twilio => {
            let rest = config::TwilioConfig {
                account_sid,
                auth_token: presented,
                api_key_sid: None,
                api_key_secret: None,
                auth_token_secondary: None,
                api_base,
                from,
                ring_timeout_secs: ring,
                request_timeout_ms,
                time_limit_secs,
                machine_detection,
            };
            Arc::new(provider::twilio::Twilio::new(&name, &rest, locale)?)
        }
        Dialect::Signalwire => Arc::new(provider::signalwire::SignalWire::new(
            &config::SignalWireAccount {
                name,
                project_id: account_sid,
                api_token: presented,
                signing_key: config::Secret::new(signing_key),
                api_base,
                from,
                ring_timeout_secs: ring,
                request_timeout_ms,
                time_limit_secs,
                machine_detection,
                calls_per_second: None,
                max_queue_ms: None,
            },
            locale,
        )?),
        Dialect::Telnyx => Arc::new(provider::telnyx::Telnyx::new(
            &config::TelnyxAccount {
                name,
                api_key: presented,
                account_sid,
                application_sid: "simulator-texml-app".into(),
                public_key: handle.public_key_base64(),
                api_base,
                from,
                ring_timeout_secs: ring,
                request_timeout_ms,
                time_limit_secs,
                machine_detection,
                calls_per_second: None,
                max_queue_ms: None,
            },
            locale,
        )?),
        Dialect::Plivo => Arc::new(provider::plivo::Plivo::new(
            &config::PlivoAccount {
                name,
                auth_id: account_sid,
                auth_token: presented,
                api_base,
                from,
                ring_timeout_secs: ring,
                request_timeout_ms,
                time_limit_secs,
                machine_detection,
                calls_per_second: None,
                max_queue_ms: None,
            },
            locale,
        )?),
    };
    tracing::info!(account = %account.name, dialect = account.dialect.as_str(), api_base = %handle.api_base(), "carrier simulator started");
    Ok((Arc::new(handle), adapter))
}

/// The in-process simulator of `provider.kind = "simulator"`: it listens where
/// `provider.simulator` says and accepts the `provider.twilio` credentials our client uses.
fn simulator_options(provider: &config::ProviderConfig) -> callverify_simulator::SimulatorOptions {
    callverify_simulator::SimulatorOptions {
        listen: provider.simulator.listen,
        account_sid: provider.twilio.account_sid.clone(),
        auth_token: provider.twilio.auth_token.expose().to_owned(),
        time_scale: provider.simulator.time_scale,
        dialect: callverify_simulator::Dialect::Twilio,
        signing_key: String::new(),
    }
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
    let served = ops::shutdown::serve_with_grace(listener, app(state), limits, signal, grace).await;
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), reconciler).await;
    served
}
