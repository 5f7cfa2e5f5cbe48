//! Layered configuration: `config/default.toml` (compiled in), an optional file, then
//! `CALLVERIFY__SECTION__KEY` environment variables. Validated once at start-up.
//!
//! The key names are an operator contract (see docs/OPERATIONS.md and config/default.toml): keep them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use crate::provider::legacy::LegacyTwilio;
pub use crate::provider::settings::{AccountConfig, MachineDetection};

/// The commented defaults, also shipped as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub provider: ProviderConfig,
    pub verification: VerificationConfig,
    /// Every tenant's policy until an admin key stores its own (`PUT /v1/tenants/{t}/policy`).
    pub policy: crate::policy::PolicyInput,
    pub abuse: AbuseConfig,
    pub events: EventsConfig,
    /// Named provider accounts (`[[providers]]`). None written: the single-provider form
    /// (`[provider] kind` + `[provider.twilio]`), mapped at load onto one account named `twilio`.
    #[serde(default)]
    pub providers: Vec<AccountConfig>,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// callverify as an Entra ID External MFA provider; absent: off (docs/ENTRA.md).
    #[serde(default)]
    pub external_mfa: Option<crate::external_mfa::config::ExternalMfaConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How the provider reaches us: webhook URLs and their signatures are built from it.
    pub public_url: String,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    pub log_format: LogFormat,
    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace_ms: u64,
    /// Deadline for a request head, from its first byte (or from the accept).
    pub header_read_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout_ms: u64,
    /// Ceiling on open connections (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// A listener of its own for `/healthz`, `/readyz` and `/metrics` (none by default).
    #[serde(default)]
    pub ops_listen: Option<SocketAddr>,
    /// Whether `/healthz`, `/readyz` and `/metrics` stay on the public listener too.
    pub ops_on_public: bool,
    /// Ceiling on open connections of the `ops_listen` listener.
    pub ops_max_connections: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Which deployment the URLs below describe.
    #[serde(default)]
    pub mode: RedisMode,
    /// Standalone: the one Redis.
    pub url: Secret,
    /// Cluster: seed nodes (any reachable one reveals the rest).
    #[serde(default, deserialize_with = "url_list")]
    pub cluster_urls: Vec<Secret>,
    /// Sentinel: the sentinels to ask for the current master.
    #[serde(default, deserialize_with = "url_list")]
    pub sentinel_urls: Vec<Secret>,
    /// Sentinel: the monitored master's name.
    #[serde(default)]
    pub sentinel_master: String,
    /// Every key starts with it.
    pub prefix: String,
    pub timeout_ms: u64,
    /// Replicas an approval waits for (`WAIT`) before it is answered; 0 = don't wait.
    #[serde(default)]
    pub wait_replicas: u32,
}

impl RedisConfig {
    /// Every configured Redis URL (they may carry passwords: for scrubbing error texts).
    pub fn urls(&self) -> Vec<String> {
        std::iter::once(&self.url)
            .chain(&self.cluster_urls)
            .chain(&self.sentinel_urls)
            .map(|u| u.expose().to_owned())
            .collect()
    }
}

/// `redis.mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Standalone,
    Cluster,
    Sentinel,
}

/// A list of URLs: a TOML array, or one comma-separated string (handy in an environment
/// variable: `CALLVERIFY__REDIS__CLUSTER_URLS=redis://a:6379,redis://b:6379`).
fn url_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let urls = match List::deserialize(d)? {
        List::One(s) => s.split(',').map(str::to_owned).collect(),
        List::Many(v) => v,
    };
    Ok(urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .map(Secret::new)
        .collect())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `twilio` or `simulator`.
    pub kind: ProviderKind,
    /// The single-provider form's account (`src/provider/legacy.rs`).
    pub twilio: LegacyTwilio,
    #[serde(default)]
    pub simulator: SimulatorConfig,
    /// The provider account's outbound calls per second, respected across instances (0 = no pacing).
    pub calls_per_second: f64,
    /// Longest a call waits for a pacing slot; beyond it fails as `provider_throttled`.
    pub max_queue_ms: u64,
    /// Consecutive certain failures (refused, unreachable, throttled) that open an account's
    /// circuit breaker: it is then skipped until `circuit_cooldown_ms` passed, then probed.
    pub circuit_failures: u32,
    pub circuit_cooldown_ms: u64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Twilio,
    Simulator,
}

impl VerificationConfig {
    /// A call's time limit: `configured`, or (0) derived from the prompts:
    /// `max_prompts` × (`gather_timeout_secs` + 30) + 30, at most 4 hours.
    pub fn time_limit(&self, configured: u32) -> u32 {
        if configured > 0 {
            return configured;
        }
        self.max_prompts
            .saturating_mul(self.gather_timeout_secs.saturating_add(30))
            .saturating_add(30)
            .min(14_400)
    }
}

impl Config {
    /// The longest ring timeout of any account.
    pub fn longest_ring_timeout(&self) -> u32 {
        self.providers
            .iter()
            .map(|a| a.common.ring_timeout_secs)
            .max()
            .unwrap_or(0)
    }

    /// The longest placing one call can take, trying every account in turn: per account, its
    /// pacing wait and its throttling retries (`max_queue_ms` each) and one request deadline.
    pub fn longest_placement_ms(&self) -> u64 {
        self.providers
            .iter()
            .map(|a| {
                a.pacing(&self.provider)
                    .max_queue_ms
                    .saturating_mul(2)
                    .saturating_add(a.request_timeout_ms(&self.provider))
            })
            .fold(0, u64::saturating_add)
    }

    /// The names of the accounts new calls may go to, in file order.
    pub fn account_names(&self) -> Vec<&str> {
        self.providers.iter().map(AccountConfig::name).collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Where the in-process simulator listens (`provider.kind = "simulator"`); port 0 = any free port.
    pub listen: SocketAddr,
    /// Multiplies every simulated delay (ring time, gather timeouts, pauses); 1.0 = real time.
    pub time_scale: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 0.05,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    /// How long a verification stays open before it is `expired`.
    pub ttl_secs: u64,
    /// How long a finished verification stays readable after its expiry.
    pub retain_secs: u64,
    /// How many times the prompt is played (first play included) before `no_input`.
    pub max_prompts: u32,
    /// Seconds of silence `<Gather>` waits for a key.
    pub gather_timeout_secs: u32,
    pub default_locale: String,
    /// After the provider reports a call `completed` before approval, how long a `#` from that
    /// call still counts (the keypress and the hang-up race); then it ends `hung_up`.
    pub hangup_grace_ms: u64,
    /// How often a live call is checked against the provider's own record of it
    /// (reconciliation): a verification ends at most about this long after its call did, even
    /// when the final status callback is lost.
    pub reconcile_interval_secs: u64,
    /// When the provider's answer to "place this call" is unknown (timeout, 5xx), how long past
    /// the ring timeout a call may still report back before the verification ends
    /// `provider_unknown`.
    pub unknown_outcome_margin_secs: u64,
}

/// `server.log_format`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Configuration is parsed into typed values once, at load: an invalid tenant id, key hash,
/// URL or secret fails there with the key's name, and nothing parses these strings again.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: crate::ids::TenantId,
    /// SHA-256 of each bearer API key a portal back-end may use (64 hex characters).
    #[serde(default)]
    pub portal_keys_sha256: Vec<KeyHash>,
    /// SHA-256 of each admin key (policy, unblock).
    #[serde(default)]
    pub admin_keys_sha256: Vec<KeyHash>,
    #[serde(default)]
    pub events_url: Option<url::Url>,
    #[serde(default)]
    pub events_secret: Option<crate::events::signature::WebhookSecret>,
    /// Per-tenant replacements of `[abuse.limits]` entries.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// The provider accounts this tenant's calls go to, in the order they are tried
    /// (failover); unset: every account, in file order.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// This tenant's Entra ID as an External MFA client (docs/ENTRA.md).
    #[serde(default)]
    pub external_mfa: Option<crate::external_mfa::config::TenantExternalMfa>,
}

/// The SHA-256 of an API key, from its 64 hex characters (either case). Not a secret: a
/// hash of a high-entropy key.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct KeyHash(pub [u8; 32]);

impl TryFrom<String> for KeyHash {
    type Error = String;

    fn try_from(hex_hash: String) -> Result<Self, String> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_hash.to_ascii_lowercase(), &mut hash)
            .map_err(|_| "key hashes must be 64 hex characters".to_owned())?;
        Ok(Self(hash))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", hex::encode(self.0))
    }
}

/// `[abuse]`: rate limits, fraud blocks, where the client IP comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseConfig {
    /// Header a trusted proxy sets to the client's IP (its last value counts); empty = the peer address.
    pub client_ip_header: String,
    /// How long a fraud report blocks the user from verification calls (0 = no block).
    pub fraud_block_secs: u64,
    pub limits: Limits,
    /// Key of the HMAC that stands for a phone number in rate-limit key names (empty: a
    /// built-in key, see `src/abuse/number_key.rs`).
    #[serde(default = "no_secret")]
    pub number_key_secret: Secret,
}

fn no_secret() -> Secret {
    Secret::new("")
}

/// One sliding-window limit: at most `max` calls per `window_secs` (`max = 0` switches it off).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u64,
}

/// Every rate limit on dialled calls; the field names are the `limit` a 429 names.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub number_spacing: Limit,
    pub number: Limit,
    pub user: Limit,
    pub tenant: Limit,
    pub ip: Limit,
}

/// `limits = { … }` under a `[[tenants]]` entry: each named limit replaces the global one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub number_spacing: Option<Limit>,
    pub number: Option<Limit>,
    pub user: Option<Limit>,
    pub tenant: Option<Limit>,
    pub ip: Option<Limit>,
}

impl Limits {
    /// The limits in force for a tenant: its overrides over the global ones.
    pub fn for_tenant(&self, overrides: &LimitOverrides) -> Limits {
        Limits {
            number_spacing: overrides.number_spacing.unwrap_or(self.number_spacing),
            number: overrides.number.unwrap_or(self.number),
            user: overrides.user.unwrap_or(self.user),
            tenant: overrides.tenant.unwrap_or(self.tenant),
            ip: overrides.ip.unwrap_or(self.ip),
        }
    }
}

/// `[events]`: delivery of signed events to portal back-ends.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Run the delivery worker in this instance.
    pub deliver: bool,
    /// Deliveries in flight at once (per instance).
    pub concurrency: usize,
    /// Deadline for one POST to a portal.
    pub request_timeout_ms: u64,
    /// Delay before each retry (the first attempt is immediate); after the last one fails the
    /// event is given up. Each delay gets ±20 % jitter.
    pub retry_schedule_ms: Vec<u64>,
    /// An attempt not finished after this long (crashed instance) is taken over by another.
    pub claim_idle_ms: u64,
    /// How often due retries are looked for.
    pub poll_interval_ms: u64,
}

/// A string that never shows in `Debug` output or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if any), then `CALLVERIFY__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("CALLVERIFY__").split("__").lowercase(true));
        Self::from_figment(figment)
    }

    /// Defaults overlaid with a TOML string: used by `demo`, tests and `config check`.
    pub fn from_toml_overlay(overlay: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overlay)))
    }

    /// Extracts and validates a configuration from any figment (tests layer compose files with it).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment.extract().map_err(Box::new)?;
        if config.providers.is_empty() {
            config.providers = vec![LegacyTwilio::map(&config.provider)];
        }
        config.validate()?;
        Ok(config)
    }

    /// The policy of a tenant that has not stored its own: `[policy]`, with
    /// `verification.default_locale` when `policy.default_locale` is unset.
    pub fn default_policy(&self) -> crate::policy::Policy {
        self.try_default_policy()
            .expect("validated at start-up: [policy] is valid")
    }

    fn try_default_policy(&self) -> Result<crate::policy::Policy, String> {
        self.policy.clone().resolve(
            &crate::policy::DEFAULT_BLOCKED_TYPES,
            &self.verification.default_locale,
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Err(e) = self.try_default_policy() {
            return bad(format!("policy: {e}"));
        }
        let public = url::Url::parse(&self.server.public_url)
            .map_err(|e| ConfigError::Invalid(format!("server.public_url: {e}")))?;
        if !matches!(public.scheme(), "http" | "https") || public.query().is_some() {
            return bad("server.public_url must be an http(s) URL without a query".into());
        }
        let server = &self.server;
        if server.header_read_timeout_ms == 0
            || server.idle_timeout_ms == 0
            || server.max_connections == 0
        {
            return bad(
                "server.header_read_timeout_ms, idle_timeout_ms and max_connections must be > 0"
                    .into(),
            );
        }
        if server.ops_max_connections == 0 {
            return bad("server.ops_max_connections must be > 0".into());
        }
        if !server.ops_on_public && server.ops_listen.is_none() {
            return bad("server.ops_on_public = false needs server.ops_listen".into());
        }
        if server.ops_listen.is_some_and(|ops| ops == server.listen) {
            return bad("server.ops_listen must differ from server.listen".into());
        }
        if self.redis.prefix.is_empty() || self.redis.prefix.contains(['{', '}', ' ']) {
            return bad("redis.prefix must be non-empty, without braces or spaces".into());
        }
        match self.redis.mode {
            RedisMode::Standalone => {}
            RedisMode::Cluster if self.redis.cluster_urls.is_empty() => {
                return bad("redis.mode = \"cluster\" needs redis.cluster_urls".into());
            }
            RedisMode::Sentinel
                if self.redis.sentinel_urls.is_empty() || self.redis.sentinel_master.is_empty() =>
            {
                return bad(
                    "redis.mode = \"sentinel\" needs redis.sentinel_urls and redis.sentinel_master"
                        .into(),
                );
            }
            RedisMode::Cluster | RedisMode::Sentinel => {}
        }
        if self.verification.reconcile_interval_secs == 0
            || self.verification.reconcile_interval_secs > 30
        {
            return bad("verification.reconcile_interval_secs must be 1..=30".into());
        }
        if self.verification.max_prompts == 0 || self.verification.ttl_secs == 0 {
            return bad("verification.max_prompts and verification.ttl_secs must be > 0".into());
        }
        if !(self.provider.calls_per_second >= 0.0 && self.provider.calls_per_second <= 1000.0) {
            return bad("provider.calls_per_second must be 0..=1000".into());
        }
        let limits = &self.abuse.limits;
        let all = [
            limits.number_spacing,
            limits.number,
            limits.user,
            limits.tenant,
            limits.ip,
        ];
        let overridden = self.tenants.iter().flat_map(|t| {
            let o = &t.limits;
            [o.number_spacing, o.number, o.user, o.tenant, o.ip]
                .into_iter()
                .flatten()
        });
        if all
            .into_iter()
            .chain(overridden)
            .any(|l| l.window_secs == 0 || l.window_secs > 31 * 86_400)
        {
            return bad("abuse.limits: window_secs must be 1..=2678400".into());
        }
        if self
            .abuse
            .client_ip_header
            .contains(|c: char| !c.is_ascii_graphic())
        {
            return bad("abuse.client_ip_header must be a header name".into());
        }
        if self.events.concurrency == 0 || self.events.request_timeout_ms == 0 {
            return bad("events.concurrency and events.request_timeout_ms must be > 0".into());
        }
        if self.events.claim_idle_ms <= self.events.request_timeout_ms {
            return bad("events.claim_idle_ms must exceed events.request_timeout_ms".into());
        }
        self.validate_accounts()?;
        crate::external_mfa::validate(self).map_err(ConfigError::Invalid)?;
        let accounts = self.account_names();
        let mut seen = std::collections::HashSet::new();
        for tenant in &self.tenants {
            if let Some(chosen) = &tenant.providers {
                if chosen.is_empty() {
                    return bad(format!(
                        "tenants.{}.providers must name at least one account",
                        tenant.id
                    ));
                }
                if let Some(unknown) = chosen.iter().find(|n| !accounts.contains(&n.as_str())) {
                    return bad(format!(
                        "tenants.{}.providers names {unknown:?}, which is not a provider account",
                        tenant.id
                    ));
                }
            }
            if !seen.insert(tenant.id.as_str()) {
                return bad(format!("tenants: duplicate id {:?}", tenant.id.as_str()));
            }
            match (&tenant.events_url, &tenant.events_secret) {
                (None, None) => {}
                (Some(url), Some(_)) => {
                    if !matches!(url.scheme(), "http" | "https") {
                        return bad(format!("tenants.{}.events_url must be http(s)", tenant.id));
                    }
                }
                _ => {
                    return bad(format!(
                        "tenants.{}: events_url and events_secret go together",
                        tenant.id
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for account in &self.providers {
            account
                .check(&self.provider)
                .map_err(ConfigError::Invalid)?;
            if !names.insert(account.name()) {
                return Err(ConfigError::Invalid(format!(
                    "providers: duplicate name {:?}",
                    account.name()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
