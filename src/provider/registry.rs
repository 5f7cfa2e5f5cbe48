//! The provider kinds: the one list of them ([`KINDS`]) and what a kind supplies — its own
//! keys in a `[[providers]]` entry, their checks, and how its adapter is built. Adding a
//! provider is its folder beside this file plus one line in [`KINDS`] (docs/ARCHITECTURE.md).

use std::fmt;
use std::sync::Arc;

use figment::value::Value;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::Provider;
use super::settings::AccountCommon;
use crate::config::{Config, ProviderConfig};

/// Every provider kind, by its `kind = "…"` name.
pub const KINDS: &[Kind] = &[
    Kind::of::<super::twilio::config::TwilioKeys>("twilio"),
    Kind::of::<super::signalwire::config::SignalWireKeys>("signalwire"),
    Kind::of::<super::telnyx::config::TelnyxKeys>("telnyx"),
    Kind::of::<super::plivo::config::PlivoKeys>("plivo"),
    Kind::of::<super::simulator::SimulatorKeys>("simulator"),
];

/// One kind: its name and the parser of its own keys.
pub struct Kind {
    pub name: &'static str,
    pub(super) parse: fn(&Value) -> Result<Arc<dyn KindKeys>, String>,
}

impl Kind {
    /// The kind `name`, whose own keys deserialize into `K` (unknown keys are an error there:
    /// `#[serde(deny_unknown_fields)]`).
    pub const fn of<K: KindKeys + DeserializeOwned>(name: &'static str) -> Kind {
        Kind {
            name,
            parse: parse_keys::<K>,
        }
    }
}

fn parse_keys<K: KindKeys + DeserializeOwned>(keys: &Value) -> Result<Arc<dyn KindKeys>, String> {
    let keys: K = keys.deserialize().map_err(|e| e.to_string())?;
    Ok(Arc::new(keys))
}

/// A kind's own keys of one account, and what the kind does with them.
pub trait KindKeys: fmt::Debug + Send + Sync + 'static {
    /// The caller ID of an account that sets none (`None`: `from` is required).
    fn default_from(&self) -> Option<&'static str> {
        None
    }

    /// The request deadline of an account that sets none (`None`: 5000 ms).
    fn default_request_timeout_ms(&self, _provider: &ProviderConfig) -> Option<u64> {
        None
    }

    /// The base URL of the kind's REST API, where it has one (checked at load: a URL).
    fn api_base(&self) -> Option<&str> {
        None
    }

    /// The provider's documented bounds on ring timeout and time limit, checked at load
    /// (default: Twilio's).
    fn call_limits(&self) -> super::limits::CallLimits {
        super::limits::CallLimits::TWILIO
    }

    /// Checks beyond what the keys' types enforce; `key` is the account's key path for messages.
    fn check(&self, _key: &str) -> Result<(), String> {
        Ok(())
    }

    /// The account's adapter, for a kind that needs nothing started first. `account` is
    /// resolved: its request deadline and time limit are set.
    fn adapter(
        &self,
        _account: &AccountCommon,
        _locale: &str,
    ) -> Result<Arc<dyn Provider>, String> {
        Err("this kind builds its accounts in `KindKeys::build`".into())
    }

    /// Builds the account's adapter (by default [`KindKeys::adapter`], at once).
    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        let built = self.adapter(account, context.locale).map(|provider| Built {
            provider,
            simulator: None,
        });
        Box::pin(std::future::ready(built.map_err(BuildError::from)))
    }
}

/// What building an adapter may look at.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    /// `verification.default_locale`.
    pub locale: &'a str,
}

/// A built account: its adapter, and the carrier it started (simulator accounts).
pub struct Built {
    pub provider: Arc<dyn Provider>,
    pub simulator: Option<Arc<callverify_simulator::SimulatorHandle>>,
}

pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests;
