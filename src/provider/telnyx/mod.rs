//! Telnyx TeXML (docs/PROVIDERS.md#telnyx-texml): the JSON TeXML Calls API with a Bearer API
//! key, webhooks signed with Ed25519 (`telnyx-signature-ed25519` over `timestamp|body`),
//! Twilio-style form parameters (`CallSid` like `v3:…`, `CallStatus`, `Digits`) and TeXML,
//! which speaks the TwiML verbs callverify uses.

pub mod client;
pub mod config;
pub mod signature;

use ed25519_dalek::VerifyingKey;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::settings::AccountCommon;
use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use super::{
    CallProgress, CallRequest, Markup, Provider, ProviderError, Refusal, Webhook, WebhookRequest,
};
use crate::call::prompts::Answer;
use client::TelnyxClient;
use config::TelnyxKeys;

/// One Telnyx account (TeXML application).
pub struct Telnyx {
    name: String,
    client: TelnyxClient,
    public_key: VerifyingKey,
    texml: Twiml,
}

impl Telnyx {
    pub fn new(
        account: &AccountCommon,
        config: &TelnyxKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            name: account.name.clone(),
            client: TelnyxClient::new(account, config)?,
            public_key: signature::public_key(&config.public_key)
                .map_err(|e| format!("providers.{}: {e}", account.name))?,
            texml: Twiml::new(default_locale)?,
        })
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Provider for Telnyx {
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
        let (Some(sig), Some(ts)) = (
            request.header(signature::SIGNATURE_HEADER),
            request.header(signature::TIMESTAMP_HEADER),
        ) else {
            return Err(Refusal::MissingSignature);
        };
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        signature::verify(&self.public_key, sig, ts, request.body, now_secs())
            .map_err(|_| Refusal::BadSignature)?;
        super::twilio_style_webhook(&FormParams::parse(request.body))
    }

    fn render(&self, answer: &Answer<'_>) -> Markup {
        Markup {
            body: self.texml.render_answer(answer),
            content_type: "text/xml",
        }
    }
}
