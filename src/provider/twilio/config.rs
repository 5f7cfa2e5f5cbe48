//! A Twilio account's own keys (`kind = "twilio"`, and the single-provider `[provider.twilio]`).

use std::sync::Arc;

use serde::Deserialize;

use super::Twilio;
use super::shared_key::SharedKey;
use crate::config::Secret;
use crate::provider::Provider;
use crate::provider::registry::KindKeys;
use crate::provider::settings::AccountCommon;

/// `kind = "twilio"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioKeys {
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
    /// SharedKeys webhooks may be signed with instead of the auth token (several during a
    /// rotation); a request names its key in `X-Twilio-Webhooks-Signature-Settings`.
    #[serde(default)]
    pub webhook_shared_keys: Vec<SharedKey>,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    "https://api.twilio.com".into()
}

impl KindKeys for TwilioKeys {
    fn api_base(&self) -> Option<&str> {
        Some(&self.api_base)
    }

    /// `Timeout` up to 600 s, `TimeLimit` up to 14,400 s (docs/PROVIDERS.md#call-bounds-per-provider).
    fn call_limits(&self) -> crate::provider::limits::CallLimits {
        crate::provider::limits::CallLimits::TWILIO
    }

    fn check(&self, key: &str) -> Result<(), String> {
        if self.api_key_sid.is_some() != self.api_key_secret.is_some() {
            return Err(format!("{key}.api_key_sid and api_key_secret go together"));
        }
        let mut ids = std::collections::HashSet::new();
        for shared in &self.webhook_shared_keys {
            if shared.id.trim().is_empty() || shared.secret.expose().is_empty() {
                return Err(format!(
                    "{key}.webhook_shared_keys: every key needs an id and a secret"
                ));
            }
            if !ids.insert(shared.id.as_str()) {
                return Err(format!(
                    "{key}.webhook_shared_keys: the id {:?} appears twice",
                    shared.id
                ));
            }
        }
        Ok(())
    }

    fn adapter(&self, account: &AccountCommon, locale: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(Twilio::new(account, self, locale)?))
    }
}
