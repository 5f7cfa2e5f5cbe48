//! Builds the configured provider accounts: the `[[providers]]` entries in file order, or the
//! single-provider form as one account named `twilio`. A new provider kind is one arm here
//! (and its folder beside this file). Simulator accounts start their in-process carrier first.

use std::sync::Arc;

use crate::config::{self, Config};
use crate::provider;

pub type Simulators = Vec<(String, Arc<callverify_simulator::SimulatorHandle>)>;

/// Builds every provider account: the `[[providers]]` entries in file order, or the
/// single-provider form (`[provider] kind` + `[provider.twilio]`) as one account named `twilio`.
/// Simulator accounts start their in-process carrier first; the adapter of the simulator's
/// dialect reaches it exactly as it would reach the provider (only `api_base` differs).
pub async fn start(
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
