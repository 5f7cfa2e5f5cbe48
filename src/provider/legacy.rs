//! The single-provider form (`[provider] kind` + `[provider.twilio]`), mapped at load onto one
//! `[[providers]]` account named `twilio`: a Twilio account, or with `provider.kind =
//! "simulator"` the in-process carrier (listening at `[provider.simulator] listen`, accepting
//! the `[provider.twilio]` credentials).

use std::sync::Arc;

use figment::value::{Dict, Value};
use serde::Deserialize;

use super::settings::{AccountCommon, AccountConfig, split};
use super::simulator::{FixedCarrier, SimulatorKeys};
use super::twilio::config::TwilioKeys;
use crate::config::{ProviderConfig, ProviderKind};

/// The account's name, and so the URL segment of its webhooks.
const NAME: &str = "twilio";
/// Keys of `[[providers]]` that belong elsewhere in this form (`[provider]`) or are implied.
const NOT_HERE: [&str; 4] = ["name", "kind", "calls_per_second", "max_queue_ms"];

/// `[provider.twilio]`: the common keys and Twilio's own, as in a `[[providers]]` entry.
#[derive(Clone, Debug)]
pub struct LegacyTwilio {
    common: AccountCommon,
    keys: TwilioKeys,
}

impl<'de> Deserialize<'de> for LegacyTwilio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = Dict::deserialize(d)?;
        if let Some(key) = NOT_HERE.iter().find(|k| table.contains_key(**k)) {
            return Err(D::Error::custom(format!(
                "provider.twilio: unknown field `{key}`"
            )));
        }
        table.insert("name".into(), Value::from(NAME));
        let (_, common, own) = split(&Value::from(table)).map_err(D::Error::custom)?;
        let keys = own
            .deserialize()
            .map_err(|e| D::Error::custom(format!("provider.twilio: {e}")))?;
        Ok(Self { common, keys })
    }
}

impl LegacyTwilio {
    /// The common keys of `[provider.twilio]`.
    pub fn account(&self) -> &AccountCommon {
        &self.common
    }

    /// The one account this form describes.
    pub fn map(provider: &ProviderConfig) -> AccountConfig {
        let LegacyTwilio { common, keys } = provider.twilio.clone();
        let key = "provider.twilio".to_owned();
        match provider.kind {
            ProviderKind::Twilio => AccountConfig::with_key("twilio", common, Arc::new(keys), key),
            ProviderKind::Simulator => {
                let carrier = SimulatorKeys {
                    fixed: Some(FixedCarrier {
                        listen: provider.simulator.listen,
                        account_sid: keys.account_sid,
                        auth_token: keys.auth_token,
                    }),
                    ..SimulatorKeys::default()
                };
                AccountConfig::with_key("simulator", common, Arc::new(carrier), key)
            }
        }
    }
}
