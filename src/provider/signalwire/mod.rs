//! SignalWire's Compatibility API (cXML, formerly LaML): Twilio's REST paths under
//! `https://{space}.signalwire.com/api/laml`, Basic auth with the project id and API token,
//! Twilio-compatible webhook parameters and markup — but webhooks signed with the project's
//! separate **Signing Key** in `X-SignalWire-Signature` (docs/PROVIDERS.md#signalwire).

pub mod config;
pub mod signature;

use super::WebhookRequest;
use super::dialect::{Dialect, DialectProvider};
use super::settings::AccountCommon;
use super::twilio::client::TwilioClient;
use super::twilio::config::TwilioKeys;
use super::twilio::form::FormParams;
use crate::config::Secret;
use config::SignalWireKeys;

pub const SIGNATURE_HEADER: &str = "x-signalwire-signature";
/// SignalWire's validators accept Twilio's header name as an alias.
pub const ALIAS_HEADER: &str = "x-twilio-signature";

/// One SignalWire project: Twilio's REST API (paths, form fields, Call JSON, error JSON) and
/// markup, its own webhook signatures.
pub type SignalWire = DialectProvider<TwilioClient, SigningKey>;

/// The project's signing key (`PSK…`), which alone signs the webhooks.
pub struct SigningKey(Secret);

fn signature_header<'r>(request: &'r WebhookRequest<'_>) -> Option<&'r str> {
    request
        .header(SIGNATURE_HEADER)
        .or_else(|| request.header(ALIAS_HEADER))
}

impl Dialect for SigningKey {
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool {
        signature_header(request).is_some()
    }

    fn is_valid(&self, request: &WebhookRequest<'_>, params: &FormParams) -> bool {
        signature_header(request).is_some_and(|signature| {
            let (key, url, body) = (self.0.expose(), request.url, request.body);
            signature::validate_form(key, signature, url, body, &params.to_vec())
        })
    }
}

impl SignalWire {
    pub fn new(
        account: &AccountCommon,
        config: &SignalWireKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        // The compatibility API takes Twilio's TimeLimit, FallbackUrl and MachineDetection.
        let rest = TwilioKeys {
            account_sid: config.project_id.clone(),
            auth_token: config.api_token.clone(),
            // SignalWire's REST credential is the project and its API token: no API keys, and
            // webhooks are signed with the separate signing key (no rotation pair here).
            api_key_sid: None,
            api_key_secret: None,
            auth_token_secondary: None,
            webhook_shared_keys: Vec::new(),
            api_base: config.api_base.clone(),
        };
        let client = TwilioClient::new(account, &rest)?;
        let key = SigningKey(config.signing_key.clone());
        Self::with(&account.name, client, key, default_locale)
    }
}
