//! The built-in carrier as a provider kind (`kind = "simulator"`): building an account starts
//! the carrier in-process (crates/simulator), speaking `dialect`, and points the adapter of
//! that dialect at it — the adapter reaches it exactly as it would reach the provider (only
//! `api_base` differs).

use std::net::SocketAddr;
use std::sync::Arc;

use callverify_simulator::Dialect;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::Provider;
use super::plivo::{Plivo, config::PlivoKeys};
use super::registry::{BuildContext, BuildError, Built, KindKeys};
use super::settings::AccountCommon;
use super::signalwire::{SignalWire, config::SignalWireKeys};
use super::telnyx::{Telnyx, config::TelnyxKeys};
use super::twilio::{Twilio, config::TwilioKeys};
use crate::config::{ProviderConfig, Secret};

/// `kind = "simulator"`: the built-in carrier, speaking `dialect`, started with credentials of
/// its own (delays scaled by `[provider.simulator] time_scale`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorKeys {
    #[serde(default)]
    pub dialect: Dialect,
    /// Demo and tests: callverify presents credentials the simulator does not know, so every
    /// call is refused as a provider refuses bad credentials (failover shows).
    #[serde(default)]
    pub refuse_calls: bool,
    /// The single-provider form's carrier (`provider.kind = "simulator"`): where it listens
    /// and the `[provider.twilio]` credentials it accepts. Not a key of `[[providers]]`.
    #[serde(skip)]
    pub fixed: Option<FixedCarrier>,
}

/// A carrier at a given address with given credentials.
#[derive(Clone, Debug)]
pub struct FixedCarrier {
    pub listen: SocketAddr,
    pub account_sid: String,
    pub auth_token: Secret,
}

impl KindKeys for SimulatorKeys {
    fn default_from(&self) -> Option<&'static str> {
        Some("+15005550006")
    }

    /// The simulator answers at once: it borrows `[provider.twilio] request_timeout_ms`.
    fn default_request_timeout_ms(&self, provider: &ProviderConfig) -> Option<u64> {
        Some(provider.twilio.account().request_timeout())
    }

    /// The bounds of the provider whose dialect the carrier speaks.
    fn call_limits(&self) -> super::limits::CallLimits {
        use super::limits::CallLimits;
        match self.dialect {
            Dialect::Twilio => CallLimits::TWILIO,
            Dialect::Signalwire => CallLimits::SIGNALWIRE,
            Dialect::Telnyx => CallLimits::TELNYX,
            Dialect::Plivo => CallLimits::PLIVO,
        }
    }

    fn build<'a>(
        &'a self,
        account: &'a AccountCommon,
        context: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<Built, BuildError>> {
        self.start(account, context).boxed()
    }
}

impl SimulatorKeys {
    async fn start(
        &self,
        account: &AccountCommon,
        context: &BuildContext<'_>,
    ) -> Result<Built, BuildError> {
        let random = || {
            use rand::RngExt;
            hex::encode(rand::rng().random::<[u8; 16]>())
        };
        let (listen, account_sid, auth_token, signing_key) = match &self.fixed {
            Some(fixed) => (
                fixed.listen,
                fixed.account_sid.clone(),
                fixed.auth_token.expose().to_owned(),
                String::new(),
            ),
            None => (
                SocketAddr::from(([127, 0, 0, 1], 0)),
                random(),
                random(),
                format!("PSK{}", random()),
            ),
        };
        let handle = callverify_simulator::start(callverify_simulator::SimulatorOptions {
            listen,
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            time_scale: context.config.provider.simulator.time_scale,
            dialect: self.dialect,
            signing_key: signing_key.clone(),
        })
        .await?;
        // `refuse_calls`: present a token the simulator does not know; it refuses as the
        // provider refuses bad credentials (a certain refusal: the next account takes the call).
        let presented = Secret::new(if self.refuse_calls {
            format!("not-{auth_token}")
        } else {
            auth_token
        });
        let api_base = handle.api_base();
        let locale = context.locale;
        let adapter: Arc<dyn Provider> = match self.dialect {
            Dialect::Twilio => Arc::new(Twilio::new(
                account,
                &TwilioKeys {
                    account_sid,
                    auth_token: presented,
                    api_key_sid: None,
                    api_key_secret: None,
                    auth_token_secondary: None,
                    webhook_shared_keys: Vec::new(),
                    api_base,
                },
                locale,
            )?),
            Dialect::Signalwire => Arc::new(SignalWire::new(
                account,
                &SignalWireKeys {
                    project_id: account_sid,
                    api_token: presented,
                    signing_key: Secret::new(signing_key),
                    api_base,
                },
                locale,
            )?),
            Dialect::Telnyx => Arc::new(Telnyx::new(
                account,
                &TelnyxKeys {
                    api_key: presented,
                    account_sid,
                    application_sid: "simulator-texml-app".into(),
                    public_key: handle.public_key_base64(),
                    api_base,
                },
                locale,
            )?),
            Dialect::Plivo => Arc::new(Plivo::new(
                account,
                &PlivoKeys {
                    auth_id: account_sid,
                    auth_token: presented,
                    api_base,
                },
                locale,
            )?),
        };
        tracing::info!(account = %account.name, dialect = self.dialect.as_str(), api_base = %handle.api_base(), "carrier simulator started");
        Ok(Built {
            provider: adapter,
            simulator: Some(Arc::new(handle)),
        })
    }
}
