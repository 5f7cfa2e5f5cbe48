//! A SignalWire project's own keys (`kind = "signalwire"`).

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::SignalWire;
use crate::config::Secret;
use crate::provider::registry::{BuildContext, BuildError, Built, KindKeys};
use crate::provider::settings::{AccountCommon, check_url};

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
    fn check(&self, key: &str) -> Result<(), String> {
        check_url(key, &self.api_base)
    }

    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        Built::ready(SignalWire::new(account, self, context.locale))
    }
}
