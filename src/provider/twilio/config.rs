//! A Twilio account's own keys (`kind = "twilio"`, and the single-provider `[provider.twilio]`).

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::Twilio;
use crate::config::Secret;
use crate::provider::registry::{BuildContext, BuildError, Built, KindKeys};
use crate::provider::settings::{AccountCommon, check_url};

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
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    "https://api.twilio.com".into()
}

impl KindKeys for TwilioKeys {
    fn check(&self, key: &str) -> Result<(), String> {
        check_url(key, &self.api_base)?;
        if self.api_key_sid.is_some() != self.api_key_secret.is_some() {
            return Err(format!("{key}.api_key_sid and api_key_secret go together"));
        }
        Ok(())
    }

    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        Built::ready(Twilio::new(account, self, context.locale))
    }
}
