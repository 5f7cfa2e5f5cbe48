//! Builds the configured provider accounts in file order (the single-provider form is one of
//! them, mapped at load): each account's common keys resolved, then its kind's build
//! (`src/provider/registry.rs`). Simulator accounts start their in-process carrier first.

use crate::config::Config;
use crate::provider;
use crate::provider::registry::{BuildContext, BuildError, Built};
use crate::provider::settings::{AccountCommon, AccountConfig};

pub type Simulators = Vec<(
    String,
    std::sync::Arc<callverify_simulator::SimulatorHandle>,
)>;

/// Builds every provider account, in file order, and each tenant's choice of them.
pub async fn start(config: &Config) -> Result<(Simulators, provider::Providers), BuildError> {
    let context = BuildContext {
        config,
        locale: &config.verification.default_locale,
    };
    let mut simulators = Vec::new();
    let mut accounts = Vec::new();
    for account in &config.providers {
        let built = build(account, &context).await?;
        if let Some(handle) = built.simulator {
            simulators.push((account.name().to_owned(), handle));
        }
        accounts.push(provider::Account {
            provider: built.provider,
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

/// One account's adapter: its request deadline and time limit resolved, then built by its kind.
pub(super) async fn build(
    account: &AccountConfig,
    context: &BuildContext<'_>,
) -> Result<Built, BuildError> {
    let config = context.config;
    let resolved = AccountCommon {
        request_timeout_ms: Some(account.request_timeout_ms(&config.provider)),
        time_limit_secs: config
            .verification
            .time_limit(account.common.time_limit_secs),
        ..account.common.clone()
    };
    account.keys.build(&resolved, context).await
}
