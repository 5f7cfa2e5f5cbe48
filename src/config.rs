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
    /// Named provider accounts (`[[providers]]`). Empty: the single-provider form
    /// (`[provider] kind` + `[provider.twilio]`), one account named `twilio`.
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
    pub twilio: TwilioConfig,
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account (`AC…`): the Calls API's path segment, and its Basic-auth user unless an
    /// API key is configured.
    pub account_sid: String,
    /// Signs webhooks; the Calls API password unless an API key is configured.
    pub auth_token: Secret,
    /// An API key (`SK…`) for the Calls API's Basic auth, with `api_key_secret`.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    #[serde(default)]
    pub api_key_secret: Option<Secret>,
    /// A second auth token also accepted for webhook signatures (during a rotation).
    #[serde(default)]
    pub auth_token_secondary: Option<Secret>,
    pub api_base: String,
    /// Caller ID, E.164.
    pub from: String,
    pub ring_timeout_secs: u32,
    pub request_timeout_ms: u64,
    /// Twilio's `TimeLimit` on every call (seconds); 0 = derived from the prompts
    /// (`max_prompts` × (`gather_timeout_secs` + 30) + 30).
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection (`MachineDetection=Enable`): a machine or fax ends the
    /// verification `failed` / `voicemail` with nothing read out.
    #[serde(default)]
    pub machine_detection: MachineDetection,
}

/// `provider.twilio.machine_detection`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MachineDetection {
    #[default]
    Off,
    Enable,
}

impl TwilioConfig {
    /// The `TimeLimit` sent with every call: configured, or derived from the prompts.
    pub fn time_limit(&self, verification: &VerificationConfig) -> u32 {
        verification.time_limit(self.time_limit_secs)
    }
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

/// One `[[providers]]` entry: `name` (in webhook URLs), `kind`, and the kind's own keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AccountConfig {
    Twilio(TwilioAccount),
    Signalwire(SignalWireAccount),
    Telnyx(TelnyxAccount),
    Plivo(PlivoAccount),
    Simulator(SimulatorAccount),
}

fn default_ring_timeout() -> u32 {
    30
}
fn default_request_timeout() -> u64 {
    5000
}
fn default_twilio_api() -> String {
    "https://api.twilio.com".into()
}
fn default_telnyx_api() -> String {
    "https://api.telnyx.com".into()
}
fn default_plivo_api() -> String {
    "https://api.plivo.com".into()
}
fn default_simulator_from() -> String {
    "+15005550006".into()
}

/// `kind = "twilio"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioAccount {
    pub name: String,
    pub account_sid: String,
    pub auth_token: Secret,
    /// As `[provider.twilio]`: an API key for the Calls API's Basic auth, and a second auth
    /// token accepted for signatures during a rotation.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    #[serde(default)]
    pub api_key_secret: Option<Secret>,
    #[serde(default)]
    pub auth_token_secondary: Option<Secret>,
    #[serde(default = "default_twilio_api")]
    pub api_base: String,
    pub from: String,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// The call's time limit in seconds (0 = derived from the prompts, as
    /// `provider.twilio.time_limit_secs`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    /// Defaults to `[provider] calls_per_second` / `max_queue_ms`.
    pub calls_per_second: Option<f64>,
    pub max_queue_ms: Option<u64>,
}

/// `kind = "signalwire"`: REST with the project id and API token, webhooks signed with the
/// separate signing key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalWireAccount {
    pub name: String,
    pub project_id: String,
    pub api_token: Secret,
    pub signing_key: Secret,
    /// `https://{space}.signalwire.com/api/laml`.
    pub api_base: String,
    pub from: String,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// The call's time limit in seconds (0 = derived from the prompts, as
    /// `provider.twilio.time_limit_secs`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    pub calls_per_second: Option<f64>,
    pub max_queue_ms: Option<u64>,
}

/// `kind = "telnyx"` (TeXML).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelnyxAccount {
    pub name: String,
    /// Bearer key of the REST API.
    pub api_key: Secret,
    /// The TeXML account (a path segment of the Calls API).
    pub account_sid: String,
    /// The TeXML application the calls run under.
    pub application_sid: String,
    /// Base64 Ed25519 public key that verifies `telnyx-signature-ed25519`.
    pub public_key: String,
    #[serde(default = "default_telnyx_api")]
    pub api_base: String,
    pub from: String,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// The call's time limit in seconds (0 = derived from the prompts, as
    /// `provider.twilio.time_limit_secs`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    pub calls_per_second: Option<f64>,
    pub max_queue_ms: Option<u64>,
}

/// `kind = "plivo"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlivoAccount {
    pub name: String,
    pub auth_id: String,
    /// Basic-auth password and the key of the V3 signatures.
    pub auth_token: Secret,
    #[serde(default = "default_plivo_api")]
    pub api_base: String,
    pub from: String,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// The call's time limit in seconds (0 = derived from the prompts, as
    /// `provider.twilio.time_limit_secs`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    pub calls_per_second: Option<f64>,
    pub max_queue_ms: Option<u64>,
}

/// `kind = "simulator"`: the built-in carrier, speaking `dialect`, started in-process with
/// credentials of its own (delays scaled by `[provider.simulator] time_scale`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorAccount {
    pub name: String,
    #[serde(default)]
    pub dialect: callverify_simulator::Dialect,
    #[serde(default = "default_simulator_from")]
    pub from: String,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    /// Demo and tests: callverify presents credentials the simulator does not know, so every
    /// call is refused as a provider refuses bad credentials (failover shows).
    #[serde(default)]
    pub refuse_calls: bool,
    /// The call's time limit in seconds (0 = derived from the prompts, as
    /// `provider.twilio.time_limit_secs`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    pub calls_per_second: Option<f64>,
    pub max_queue_ms: Option<u64>,
}

impl AccountConfig {
    pub fn name(&self) -> &str {
        match self {
            AccountConfig::Twilio(a) => &a.name,
            AccountConfig::Signalwire(a) => &a.name,
            AccountConfig::Telnyx(a) => &a.name,
            AccountConfig::Plivo(a) => &a.name,
            AccountConfig::Simulator(a) => &a.name,
        }
    }

    /// The account's pacing, `[provider]`'s where it sets none.
    pub fn pacing(&self, defaults: &ProviderConfig) -> crate::provider::Pacing {
        let (cps, queue) = match self {
            AccountConfig::Twilio(a) => (a.calls_per_second, a.max_queue_ms),
            AccountConfig::Signalwire(a) => (a.calls_per_second, a.max_queue_ms),
            AccountConfig::Telnyx(a) => (a.calls_per_second, a.max_queue_ms),
            AccountConfig::Plivo(a) => (a.calls_per_second, a.max_queue_ms),
            AccountConfig::Simulator(a) => (a.calls_per_second, a.max_queue_ms),
        };
        crate::provider::Pacing {
            calls_per_second: cps.unwrap_or(defaults.calls_per_second),
            max_queue_ms: queue.unwrap_or(defaults.max_queue_ms),
        }
    }

    fn ring_timeout_secs(&self) -> u32 {
        match self {
            AccountConfig::Twilio(a) => a.ring_timeout_secs,
            AccountConfig::Signalwire(a) => a.ring_timeout_secs,
            AccountConfig::Telnyx(a) => a.ring_timeout_secs,
            AccountConfig::Plivo(a) => a.ring_timeout_secs,
            AccountConfig::Simulator(a) => a.ring_timeout_secs,
        }
    }

    fn time_limit_secs(&self) -> u32 {
        match self {
            AccountConfig::Twilio(a) => a.time_limit_secs,
            AccountConfig::Signalwire(a) => a.time_limit_secs,
            AccountConfig::Telnyx(a) => a.time_limit_secs,
            AccountConfig::Plivo(a) => a.time_limit_secs,
            AccountConfig::Simulator(a) => a.time_limit_secs,
        }
    }

    fn api_base(&self) -> Option<&str> {
        match self {
            AccountConfig::Twilio(a) => Some(&a.api_base),
            AccountConfig::Signalwire(a) => Some(&a.api_base),
            AccountConfig::Telnyx(a) => Some(&a.api_base),
            AccountConfig::Plivo(a) => Some(&a.api_base),
            AccountConfig::Simulator(_) => None,
        }
    }
}

impl Config {
    /// The longest ring timeout of any account.
    pub fn longest_ring_timeout(&self) -> u32 {
        if self.providers.is_empty() {
            return self.provider.twilio.ring_timeout_secs;
        }
        self.providers
            .iter()
            .map(AccountConfig::ring_timeout_secs)
            .max()
            .unwrap_or(self.provider.twilio.ring_timeout_secs)
    }

    /// The longest placing one call can take, trying every account in turn: per account, its
    /// pacing wait and its throttling retries (`max_queue_ms` each) and one request deadline.
    pub fn longest_placement_ms(&self) -> u64 {
        let one = |max_queue_ms: u64, request_timeout_ms: u64| {
            max_queue_ms
                .saturating_mul(2)
                .saturating_add(request_timeout_ms)
        };
        if self.providers.is_empty() {
            return one(
                self.provider.max_queue_ms,
                self.provider.twilio.request_timeout_ms,
            );
        }
        self.providers
            .iter()
            .map(|a| {
                let timeout = match a {
                    AccountConfig::Twilio(a) => a.request_timeout_ms,
                    AccountConfig::Signalwire(a) => a.request_timeout_ms,
                    AccountConfig::Telnyx(a) => a.request_timeout_ms,
                    AccountConfig::Plivo(a) => a.request_timeout_ms,
                    AccountConfig::Simulator(_) => self.provider.twilio.request_timeout_ms,
                };
                one(a.pacing(&self.provider).max_queue_ms, timeout)
            })
            .fold(0, u64::saturating_add)
    }

    /// The names of the accounts new calls may go to, in file order (`twilio` alone for the
    /// single-provider form).
    pub fn account_names(&self) -> Vec<&str> {
        if self.providers.is_empty() {
            vec!["twilio"]
        } else {
            self.providers.iter().map(AccountConfig::name).collect()
        }
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
        let config: Config = figment.extract().map_err(Box::new)?;
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
        if self.provider.kind == ProviderKind::Twilio {
            url::Url::parse(&self.provider.twilio.api_base)
                .map_err(|e| ConfigError::Invalid(format!("provider.twilio.api_base: {e}")))?;
        }
        let twilio = &self.provider.twilio;
        if twilio.api_key_sid.is_some() != twilio.api_key_secret.is_some() {
            return bad("provider.twilio.api_key_sid and api_key_secret go together".into());
        }
        if twilio.time_limit_secs > 14_400 {
            return bad("provider.twilio.time_limit_secs must be 0..=14400".into());
        }
        if self.verification.reconcile_interval_secs == 0
            || self.verification.reconcile_interval_secs > 30
        {
            return bad("verification.reconcile_interval_secs must be 1..=30".into());
        }
        if !(1..=600).contains(&self.provider.twilio.ring_timeout_secs) {
            return bad("provider.twilio.ring_timeout_secs must be 1..=600".into());
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
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut names = std::collections::HashSet::new();
        for account in &self.providers {
            let name = account.name();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad(format!(
                    "providers: name {name:?} must be 1-64 letters, digits, '-' or '_' (it is a URL segment)"
                ));
            }
            if !names.insert(name) {
                return bad(format!("providers: duplicate name {name:?}"));
            }
            if !(1..=600).contains(&account.ring_timeout_secs()) {
                return bad(format!(
                    "providers.{name}.ring_timeout_secs must be 1..=600"
                ));
            }
            if let Some(base) = account.api_base() {
                url::Url::parse(base)
                    .map_err(|e| ConfigError::Invalid(format!("providers.{name}.api_base: {e}")))?;
            }
            if let AccountConfig::Twilio(a) = account
                && a.api_key_sid.is_some() != a.api_key_secret.is_some()
            {
                return bad(format!(
                    "providers.{name}.api_key_sid and api_key_secret go together"
                ));
            }
            if account.time_limit_secs() > 14_400 {
                return bad(format!(
                    "providers.{name}.time_limit_secs must be 0..=14400"
                ));
            }
            let pacing = account.pacing(&self.provider);
            if !(pacing.calls_per_second >= 0.0 && pacing.calls_per_second <= 1000.0) {
                return bad(format!(
                    "providers.{name}.calls_per_second must be 0..=1000"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let config = Config::from_toml_overlay("").expect("defaults are valid");
        assert_eq!(config.redis.prefix, "callverify");
        assert_eq!(config.provider.kind, ProviderKind::Twilio);
        assert_eq!(config.provider.twilio.ring_timeout_secs, 30);
        assert_eq!(config.server.header_read_timeout_ms, 10_000);
        assert_eq!(config.server.idle_timeout_ms, 60_000);
        assert_eq!(config.server.max_connections, 10_000);
        assert_eq!(config.verification.hangup_grace_ms, 3000);
        assert_eq!(config.verification.reconcile_interval_secs, 15);
        let twilio = &config.provider.twilio;
        assert_eq!(twilio.machine_detection, MachineDetection::Off);
        assert_eq!(twilio.time_limit(&config.verification), 3 * 35 + 30);
        assert!(twilio.api_key_sid.is_none() && twilio.auth_token_secondary.is_none());
        assert!(Config::from_toml_overlay("[provider.twilio]\napi_key_sid = \"SK1\"").is_err());
        assert!(Config::from_toml_overlay("[server]\nmax_connections = 0").is_err());
        let policy = config.default_policy();
        assert!(policy.methods.phone.enabled && policy.methods.phone.office_phone_allowed);
        assert_eq!(policy.allowed_countries, None);
        assert_eq!(policy.default_locale, "en-US");
        assert_eq!(policy.blocked_number_types.len(), 3);
    }

    #[test]
    fn redis_modes_need_their_urls_and_take_lists_as_arrays_or_comma_separated() {
        let config = Config::from_toml_overlay("").unwrap();
        assert_eq!(config.redis.mode, RedisMode::Standalone);
        assert_eq!(config.redis.wait_replicas, 0);
        assert!(Config::from_toml_overlay("[redis]\nmode = \"cluster\"").is_err());
        assert!(
            Config::from_toml_overlay(
                "[redis]\nmode = \"sentinel\"\nsentinel_urls = \"redis://s:26379\""
            )
            .is_err()
        );
        let cluster = Config::from_toml_overlay(
            "[redis]\nmode = \"cluster\"\ncluster_urls = \"redis://a:7000, redis://:pw@b:7001\"",
        )
        .unwrap();
        let urls: Vec<&str> = cluster
            .redis
            .cluster_urls
            .iter()
            .map(|u| u.expose())
            .collect();
        assert_eq!(urls, ["redis://a:7000", "redis://:pw@b:7001"]);
        assert!(!format!("{cluster:?}").contains("pw@"));
        let sentinel = Config::from_toml_overlay(
            "[redis]\nmode = \"sentinel\"\nsentinel_urls = [\"redis://s1:26379\"]\nsentinel_master = \"mymaster\"",
        )
        .unwrap();
        assert_eq!(sentinel.redis.sentinel_urls.len(), 1);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config =
            Config::from_toml_overlay("[provider.twilio]\nauth_token = \"s3cr3t-token\"").unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-token"));
    }

    #[test]
    fn unknown_keys_and_bad_hashes_are_rejected() {
        assert!(Config::from_toml_overlay("[server]\nlisten_typo = 1").is_err());
        assert!(Config::from_toml_overlay("[policy.methods.email]\nenabled = 1").is_err());
        assert!(Config::from_toml_overlay("[policy]\nallowed_countries = [\"nl\"]").is_err());
        assert!(Config::from_toml_overlay("[policy]\ndefault_locale = \"fr-FR\"").is_err());
        let bad = "[[tenants]]\nid = \"contoso\"\nportal_keys_sha256 = [\"abc\"]";
        assert!(Config::from_toml_overlay(bad).is_err());
        // Parsed once, at load: a bad tenant id or events URL fails there.
        assert!(Config::from_toml_overlay("[[tenants]]\nid = \"con toso\"").is_err());
        let url = "[[tenants]]\nid = \"c\"\nevents_url = \"not a url\"\nevents_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"";
        assert!(Config::from_toml_overlay(url).is_err());
        let good = format!(
            "[[tenants]]\nid = \"contoso\"\nportal_keys_sha256 = [\"{}\"]",
            "AB".repeat(32)
        );
        let config = Config::from_toml_overlay(&good).unwrap();
        assert_eq!(config.tenants[0].portal_keys_sha256[0].0, [0xab; 32]);
    }

    #[test]
    fn abuse_defaults_and_tenant_overrides() {
        let config = Config::from_toml_overlay(
            "[[tenants]]\nid = \"contoso\"\nlimits = { user = { max = 9, window_secs = 60 } }",
        )
        .unwrap();
        let limits = &config.abuse.limits;
        assert_eq!(
            limits.number_spacing,
            Limit {
                max: 1,
                window_secs: 30
            }
        );
        assert_eq!(
            limits.number,
            Limit {
                max: 5,
                window_secs: 3600
            }
        );
        assert_eq!(config.abuse.fraud_block_secs, 90 * 86_400);
        assert_eq!(config.provider.calls_per_second, 1.0);
        let effective = limits.for_tenant(&config.tenants[0].limits);
        assert_eq!(
            effective.user,
            Limit {
                max: 9,
                window_secs: 60
            }
        );
        assert_eq!(effective.number, limits.number);
        // Layers merge key by key: a partial entry keeps the default window.
        let partial = Config::from_toml_overlay("[abuse.limits]\nuser = { max = 1 }").unwrap();
        assert_eq!(partial.abuse.limits.user.window_secs, 3600);
        let partial = "[[tenants]]\nid = \"contoso\"\nlimits = { user = { max = 1 } }";
        assert!(
            Config::from_toml_overlay(partial).is_err(),
            "tenant entries are whole"
        );
    }

    #[test]
    fn event_secrets_are_validated_at_load() {
        let tenant =
            "[[tenants]]\nid = \"contoso\"\nevents_url = \"https://portal.example/hooks\"\n";
        assert!(
            Config::from_toml_overlay(tenant).is_err(),
            "url without secret"
        );
        let bad = format!("{tenant}events_secret = \"whsec_@@@\"");
        assert!(Config::from_toml_overlay(&bad).is_err());
        let good = format!("{tenant}events_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"");
        assert!(Config::from_toml_overlay(&good).is_ok());
    }

    #[test]
    fn provider_accounts_and_tenant_choice_are_validated_at_load() {
        let accounts = r#"
[[providers]]
name = "twilio-main"
kind = "twilio"
account_sid = "AC1"
auth_token = "t"
from = "+15005550006"
[[providers]]
name = "telnyx"
kind = "telnyx"
api_key = "KEY"
account_sid = "a"
application_sid = "app"
public_key = "k"
from = "+15005550006"
calls_per_second = 5
"#;
        let config = Config::from_toml_overlay(&format!(
            "{accounts}[[tenants]]\nid = \"contoso\"\nproviders = [\"telnyx\", \"twilio-main\"]"
        ))
        .unwrap();
        assert_eq!(config.account_names(), ["twilio-main", "telnyx"]);
        assert_eq!(
            config.providers[1]
                .pacing(&config.provider)
                .calls_per_second,
            5.0
        );
        assert_eq!(
            config.providers[0]
                .pacing(&config.provider)
                .calls_per_second,
            1.0
        );
        // An unknown account, a key of another kind, a duplicate name: refused at load.
        let unknown = format!("{accounts}[[tenants]]\nid = \"c\"\nproviders = [\"plivo\"]");
        assert!(Config::from_toml_overlay(&unknown).is_err());
        let wrong_key = accounts.replace(
            "public_key = \"k\"",
            "public_key = \"k\"\nsigning_key = \"x\"",
        );
        assert!(Config::from_toml_overlay(&wrong_key).is_err());
        let duplicate = accounts.replace("name = \"telnyx\"", "name = \"twilio-main\"");
        assert!(Config::from_toml_overlay(&duplicate).is_err());
        // The single-provider form is one account named twilio.
        assert_eq!(
            Config::from_toml_overlay("").unwrap().account_names(),
            ["twilio"]
        );
    }
}
