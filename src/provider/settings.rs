//! A provider account's configuration (`[[providers]]`): the keys every kind shares
//! ([`AccountCommon`]), its kind's own keys (from the kind's folder, found through
//! [`super::registry`]) and the checks made at load.

use std::sync::Arc;

use figment::value::{Dict, Value};
use serde::Deserialize;

use super::registry::{KINDS, Kind, KindKeys};
use crate::config::ProviderConfig;

/// Request deadline of an account that sets none.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5000;

/// The keys every provider account has, whatever its kind.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountCommon {
    /// The account's name: the URL segment of its webhooks (`/telephony/{name}/{id}/…`).
    pub name: String,
    /// Caller ID, E.164 (a kind may have a default).
    #[serde(default)]
    pub from: String,
    /// Seconds the phone rings before the call is given up as no-answer (the provider's bound, `CallLimits`).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    /// Deadline for one REST request (unset: the kind's default, 5000 ms for a real provider).
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// The call's time limit in seconds (0 = derived from the prompts, see
    /// `VerificationConfig::time_limit`), where the provider supports one.
    #[serde(default)]
    pub time_limit_secs: u32,
    /// Answering-machine detection, where the provider supports it (docs/PROVIDERS.md).
    #[serde(default)]
    pub machine_detection: MachineDetection,
    /// Default to `[provider] calls_per_second` / `max_queue_ms`.
    #[serde(default)]
    pub calls_per_second: Option<f64>,
    #[serde(default)]
    pub max_queue_ms: Option<u64>,
}

fn default_ring_timeout() -> u32 {
    30
}

impl AccountCommon {
    /// The request deadline (resolved before an adapter is built).
    pub fn request_timeout(&self) -> u64 {
        self.request_timeout_ms
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS)
    }
}

/// What every call of an account asks the provider for, from its resolved common keys.
#[derive(Clone, Debug)]
pub struct CallBounds {
    /// Caller ID, E.164.
    pub from: String,
    pub ring_timeout_secs: u32,
    /// The call's time limit, resolved (`VerificationConfig::time_limit`): never 0, which would
    /// end the call at once.
    pub time_limit_secs: u32,
    /// Answering-machine detection asked for.
    pub machine_detection: bool,
}

impl From<&AccountCommon> for CallBounds {
    fn from(account: &AccountCommon) -> Self {
        Self {
            from: account.from.clone(),
            ring_timeout_secs: account.ring_timeout_secs,
            time_limit_secs: account.time_limit_secs,
            machine_detection: account.machine_detection == MachineDetection::Enable,
        }
    }
}

/// `machine_detection`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MachineDetection {
    #[default]
    Off,
    Enable,
}

/// One provider account: `kind`, the common keys and the kind's own keys.
#[derive(Clone, Debug)]
pub struct AccountConfig {
    /// `kind = "…"`.
    pub kind: &'static str,
    pub common: AccountCommon,
    pub keys: Arc<dyn KindKeys>,
    /// Where its keys are written, for messages: `providers.{name}`, or `provider.twilio` for
    /// the single-provider form.
    key: String,
}

/// An entry split into `kind`, the common keys and the rest (the kind's own keys).
#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    kind: Option<String>,
    #[serde(flatten)]
    common: AccountCommon,
    #[serde(flatten)]
    own: Dict,
}

/// Splits an entry's table: its `kind`, the common keys, and the kind's own keys as a table.
pub(super) fn split(entry: &Value) -> Result<(Option<String>, AccountCommon, Value), String> {
    let Entry { kind, common, own } = entry.deserialize().map_err(|e| e.to_string())?;
    Ok((kind, common, Value::from(own)))
}

impl<'de> Deserialize<'de> for AccountConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entry = <Value as Deserialize>::deserialize(d)?;
        Self::parse(KINDS, &entry).map_err(serde::de::Error::custom)
    }
}

impl AccountConfig {
    /// An account of a kind whose keys are already parsed (the single-provider form, the demo).
    pub fn new(kind: &'static str, common: AccountCommon, keys: Arc<dyn KindKeys>) -> Self {
        let key = format!("providers.{}", common.name);
        Self::with_key(kind, common, keys, key)
    }

    pub(super) fn with_key(
        kind: &'static str,
        mut common: AccountCommon,
        keys: Arc<dyn KindKeys>,
        key: String,
    ) -> Self {
        if common.from.is_empty()
            && let Some(from) = keys.default_from()
        {
            common.from = from.to_owned();
        }
        Self {
            kind,
            common,
            keys,
            key,
        }
    }

    /// Parses a `[[providers]]` entry whose `kind` is one of `kinds`.
    pub(super) fn parse(kinds: &[Kind], entry: &Value) -> Result<Self, String> {
        let (kind, common, own) = split(entry)?;
        let name = &common.name;
        let kind = kind.ok_or_else(|| format!("providers.{name}: missing field `kind`"))?;
        let Some(kind) = kinds.iter().find(|k| k.name == kind) else {
            let known: Vec<&str> = kinds.iter().map(|k| k.name).collect();
            return Err(format!(
                "providers.{name}: unknown kind {kind:?}, expected one of {}",
                known.join(", ")
            ));
        };
        let keys = (kind.parse)(&own).map_err(|e| format!("providers.{name}: {e}"))?;
        Ok(Self::new(kind.name, common, keys))
    }

    pub fn name(&self) -> &str {
        &self.common.name
    }

    /// The account's pacing, `[provider]`'s where it sets none.
    pub fn pacing(&self, defaults: &ProviderConfig) -> super::Pacing {
        super::Pacing {
            calls_per_second: self
                .common
                .calls_per_second
                .unwrap_or(defaults.calls_per_second),
            max_queue_ms: self.common.max_queue_ms.unwrap_or(defaults.max_queue_ms),
        }
    }

    /// The request deadline: the account's, else its kind's default.
    pub fn request_timeout_ms(&self, provider: &ProviderConfig) -> u64 {
        self.common
            .request_timeout_ms
            .or_else(|| self.keys.default_request_timeout_ms(provider))
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS)
    }

    /// The checks every account passes at load, then its kind's own.
    pub fn check(&self, provider: &ProviderConfig) -> Result<(), String> {
        let (key, name) = (&self.key, self.name());
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "providers: name {name:?} must be 1-64 letters, digits, '-' or '_' (it is a URL segment)"
            ));
        }
        if self.common.from.is_empty() {
            return Err(format!("{key}: missing field `from`"));
        }
        self.keys.call_limits().check(
            key,
            self.common.ring_timeout_secs,
            self.common.time_limit_secs,
        )?;
        let pacing = self.pacing(provider);
        if !(pacing.calls_per_second >= 0.0 && pacing.calls_per_second <= 1000.0) {
            return Err(format!("{key}.calls_per_second must be 0..=1000"));
        }
        if let Some(api_base) = self.keys.api_base() {
            url::Url::parse(api_base).map_err(|e| format!("{key}.api_base: {e}"))?;
        }
        self.keys.check(key)
    }
}
