//! A Plivo account's own keys (`kind = "plivo"`).

use std::sync::Arc;

use serde::Deserialize;

use super::Plivo;
use crate::config::Secret;
use crate::provider::Provider;
use crate::provider::registry::KindKeys;
use crate::provider::settings::AccountCommon;

/// `kind = "plivo"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlivoKeys {
    pub auth_id: String,
    /// Basic-auth password and the key of the V3 signatures.
    pub auth_token: Secret,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    "https://api.plivo.com".into()
}

impl KindKeys for PlivoKeys {
    fn api_base(&self) -> Option<&str> {
        Some(&self.api_base)
    }

    /// `ring_timeout` and `time_limit` (docs/PROVIDERS.md#call-bounds-per-provider).
    fn call_limits(&self) -> crate::provider::limits::CallLimits {
        crate::provider::limits::CallLimits::PLIVO
    }

    fn adapter(&self, account: &AccountCommon, locale: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(Plivo::new(account, self, locale)?))
    }
}
