//! A Telnyx TeXML account's own keys (`kind = "telnyx"`).

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::Telnyx;
use crate::config::Secret;
use crate::provider::registry::{BuildContext, BuildError, Built, KindKeys};
use crate::provider::settings::{AccountCommon, check_url};

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
    fn check(&self, key: &str) -> Result<(), String> {
        check_url(key, &self.api_base)
    }

    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        Built::ready(Telnyx::new(account, self, context.locale))
    }
}
