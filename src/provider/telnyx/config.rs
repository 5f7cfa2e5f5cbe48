//! A Telnyx TeXML account's own keys (`kind = "telnyx"`).

use std::sync::Arc;

use serde::Deserialize;

use super::Telnyx;
use crate::config::Secret;
use crate::provider::Provider;
use crate::provider::limits::CallLimits;
use crate::provider::registry::KindKeys;
use crate::provider::settings::AccountCommon;

/// `kind = "telnyx"` (TeXML).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelnyxKeys {
    /// Bearer key of the REST API.
    pub api_key: Secret,
    /// The TeXML account (a path segment of the Calls API).
    pub account_sid: String,
    /// The TeXML application the calls run under.
    pub application_sid: String,
    /// Base64 Ed25519 public key that verifies `telnyx-signature-ed25519`.
    pub public_key: String,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    "https://api.telnyx.com".into()
}

impl KindKeys for TelnyxKeys {
    fn api_base(&self) -> Option<&str> {
        Some(&self.api_base)
    }

    /// TeXML `Timeout` 5..=120 s, `TimeLimit` 30..=14,400 s
    /// (docs/PROVIDERS.md#call-bounds-per-provider).
    fn call_limits(&self) -> CallLimits {
        CallLimits::TELNYX
    }

    fn adapter(&self, account: &AccountCommon, locale: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(Telnyx::new(account, self, locale)?))
    }
}
