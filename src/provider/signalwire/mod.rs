//! SignalWire's Compatibility API (cXML, formerly LaML): Twilio's REST paths under
//! `https://{space}.signalwire.com/api/laml`, Basic auth with the project id and API token,
//! Twilio-compatible webhook parameters and markup — but webhooks signed with the project's
//! separate **Signing Key** in `X-SignalWire-Signature` (docs/PROVIDERS.md#signalwire).

pub mod config;
pub mod signature;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::settings::AccountCommon;
use super::twilio::client::TwilioClient;
use super::twilio::config::TwilioKeys;
use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use super::{
    CallProgress, CallRequest, Markup, Provider, ProviderError, Refusal, Webhook, WebhookRequest,
};
use crate::call::prompts::Answer;
use crate::config::Secret;
use config::SignalWireKeys;

pub const SIGNATURE_HEADER: &str = "x-signalwire-signature";
/// SignalWire's validators accept Twilio's header name as an alias.
pub const ALIAS_HEADER: &str = "x-twilio-signature";

/// One SignalWire project.
pub struct SignalWire {
    name: String,
    /// The REST API is Twilio's (paths, form fields, Call JSON, error JSON).
    client: TwilioClient,
    signing_key: Secret,
    twiml: Twiml,
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
        Ok(Self {
            name: account.name.clone(),
            client: TwilioClient::new(account, &rest).map_err(|e| e.to_string())?,
            signing_key: config.signing_key.clone(),
            twiml: Twiml::new(default_locale)?,
        })
    }
}

impl Provider for SignalWire {
    fn name(&self) -> &str {
        &self.name
    }

    fn place_call<'a>(
        &'a self,
        call: CallRequest<'a>,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        self.client.create_call(call).boxed()
    }

    fn end_call<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.client.end_call(call_id).boxed()
    }

    fn call_progress<'a>(
        &'a self,
        call_id: &'a str,
    ) -> BoxFuture<'a, Result<CallProgress, ProviderError>> {
        async move {
            Ok(super::twilio::progress(
                &self.client.call_status(call_id).await?,
            ))
        }
        .boxed()
    }

    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        let signature = request
            .header(SIGNATURE_HEADER)
            .or_else(|| request.header(ALIAS_HEADER))
            .ok_or(Refusal::MissingSignature)?;
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let params = FormParams::parse(request.body);
        let key = self.signing_key.expose();
        if !signature::validate_form(key, signature, request.url, request.body, &params.to_vec()) {
            return Err(Refusal::BadSignature);
        }
        super::twilio_style_webhook(&params)
    }

    fn render(&self, answer: &Answer<'_>) -> Markup {
        Markup {
            body: self.twiml.render_answer(answer),
            content_type: "text/xml",
        }
    }
}
