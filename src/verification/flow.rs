//! The handles the verification lifecycle works with — and nothing else of the server: the
//! store, the provider accounts, the event emitter, the policy cache and the settings it reads.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, Limits, VerificationConfig};
use crate::events::Emitter;
use crate::ids::TenantId;
use crate::policy::Policy;
use crate::policy::cache::PolicyCache;
use crate::provider::Providers;
use crate::store::Store;

/// Cheap to clone (handles only): the HTTP layer keeps one in its state.
#[derive(Clone)]
pub struct CallFlow {
    pub store: Store,
    pub providers: Providers,
    pub events: Arc<Emitter>,
    pub policies: Arc<PolicyCache>,
    pub settings: Arc<FlowSettings>,
    /// Ended verifications leave the reconciliation schedule through it.
    pub unschedule: super::unschedule::Unschedule,
}

/// The configuration the lifecycle reads, taken from [`Config`] once at start-up.
#[derive(Debug)]
pub struct FlowSettings {
    /// `server.public_url` without a trailing slash: webhook URLs start with it.
    pub public_url: String,
    pub verification: VerificationConfig,
    /// How long a fraud report blocks the user (`abuse.fraud_block_secs`).
    pub fraud_block_secs: u64,
    /// Consecutive certain failures that open an account's circuit breaker, and how long it
    /// stays open before one call probes it (`[provider] circuit_failures`, `circuit_cooldown_ms`).
    pub circuit_failures: u32,
    pub circuit_cooldown_ms: u64,
    /// The longest ring timeout of any account (bounds an unknown placement outcome).
    pub ring_timeout_secs: u32,
    /// The longest placing a call can take, failover over every account included: each
    /// account's pacing wait and throttling retries (`max_queue_ms` each) plus its request
    /// deadline (bounds how long an unknown placement may still be in flight).
    pub placement_ms: u64,
    /// A tenant's policy until it stores its own.
    pub default_policy: Policy,
    /// Stands for a phone number in rate-limit key names (`abuse.number_key_secret`).
    pub number_key: crate::abuse::number_key::NumberKey,
    dial_budget_ms: u64,
    /// How long a request may keep asking Redis again when a transition's answer was unknown
    /// (`server.request_timeout_ms` less a second for the answer itself).
    pub answer_budget: std::time::Duration,
    limits: Limits,
    tenant_limits: HashMap<String, Limits>,
}

impl FlowSettings {
    pub fn from_config(config: &Config) -> Self {
        let limits = config.abuse.limits.clone();
        let tenant_limits = config
            .tenants
            .iter()
            .map(|t| (t.id.as_str().to_owned(), limits.for_tenant(&t.limits)))
            .collect();
        Self {
            public_url: config.server.public_url.trim_end_matches('/').to_owned(),
            verification: config.verification.clone(),
            fraud_block_secs: config.abuse.fraud_block_secs,
            circuit_failures: config.provider.circuit_failures,
            circuit_cooldown_ms: config.provider.circuit_cooldown_ms,
            ring_timeout_secs: config.longest_ring_timeout(),
            placement_ms: config.longest_placement_ms(),
            default_policy: config.default_policy(),
            number_key: crate::abuse::number_key::NumberKey::new(&config.abuse.number_key_secret),
            dial_budget_ms: dial_budget_ms(config),
            answer_budget: std::time::Duration::from_millis(
                config
                    .server
                    .request_timeout_ms
                    .saturating_sub(1_000)
                    .max(1_000),
            ),
            limits,
            tenant_limits,
        }
    }

    /// How long after its creation a start may first mark its verification for dialling: the
    /// longest pacing wait of any account, plus two Redis deadlines and a second of slack. Past
    /// it, a verification never marked is released by reconciliation, and a late mark is
    /// refused (`src/verification/undialled.rs`).
    pub fn dial_budget_ms(&self) -> u64 {
        self.dial_budget_ms
    }

    /// The rate limits in force for `tenant`: `[abuse.limits]` with the tenant's overrides.
    pub fn limits_for(&self, tenant: &TenantId) -> &Limits {
        self.tenant_limits
            .get(tenant.as_str())
            .unwrap_or(&self.limits)
    }

    /// Where a provider account's webhooks for verification `id` go:
    /// `{public_url}/telephony/{provider}/{id}/` (followed by `voice`, `gather` or `status`).
    pub fn webhook_base(&self, provider: &str, id: &str) -> String {
        let parts = [&*self.public_url, "/telephony/", provider, "/", id, "/"];
        let mut url = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 20);
        parts.iter().for_each(|p| url.push_str(p));
        url
    }

    /// The policy of `tenant` as the verification start reads it (cached about a second).
    pub async fn policy(
        &self,
        flow: &CallFlow,
        tenant: &TenantId,
    ) -> Result<Arc<Policy>, crate::error::ApiError> {
        flow.policies
            .get(&flow.store, &self.default_policy, tenant)
            .await
    }
}

/// See [`FlowSettings::dial_budget_ms`].
fn dial_budget_ms(config: &Config) -> u64 {
    let longest_queue_ms = config
        .providers
        .iter()
        .map(|a| a.pacing(&config.provider).max_queue_ms)
        .max()
        .unwrap_or(config.provider.max_queue_ms);
    longest_queue_ms + 2 * config.redis.timeout_ms + 1_000
}
