//! A SignalWire project's own keys (`kind = "signalwire"`).

use std::sync::Arc;

use serde::Deserialize;

use super::SignalWire;
use crate::config::Secret;
use crate::provider::Provider;
use crate::provider::registry::KindKeys;
use crate::provider::settings::AccountCommon;

/// `kind = "signalwire"`: REST with the project id and API token, webhooks signed with the
/// separate signing key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalWireKeys {
    pub project_id: String,
    pub api_token: Secret,
    pub signing_key: Secret,
    /// `https://{space}.signalwire.com/api/laml`.
    pub api_base: String,
}

impl KindKeys for SignalWireKeys {
    fn api_base(&self) -> Option<&str> {
        Some(&self.api_base)
    }

    /// The compatibility API's `Timeout` and `TimeLimit` (docs/PROVIDERS.md#call-bounds-per-provider).
    fn call_limits(&self) -> crate::provider::limits::CallLimits {
        crate::provider::limits::CallLimits::SIGNALWIRE
    }

    fn adapter(&self, account: &AccountCommon, locale: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(SignalWire::new(account, self, locale)?))
    }
}
