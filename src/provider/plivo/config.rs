//! A Plivo account's own keys (`kind = "plivo"`).

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::Plivo;
use crate::config::Secret;
use crate::provider::registry::{BuildContext, BuildError, Built, KindKeys};
use crate::provider::settings::{AccountCommon, check_url};

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
    fn check(&self, key: &str) -> Result<(), String> {
        check_url(key, &self.api_base)
    }

    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        Built::ready(Plivo::new(account, self, context.locale))
    }
}
