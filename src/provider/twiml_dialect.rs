//! One adapter for the providers that speak Twilio's dialect — Twilio, SignalWire's
//! compatibility API and Telnyx TeXML: the same webhook parameters (`CallSid`, `CallStatus`,
//! `Digits`, `AnsweredBy`) and the same markup. What differs is data: the Calls API client
//! ([`CallsApi`], which Plivo's client implements too) and how a webhook's signature is checked ([`SignatureCheck`]).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use super::twilio::{answered_by_machine, progress};
use super::{
    CallProgress, CallRequest, Markup, Provider, ProviderError, Refusal, Webhook, WebhookRequest,
};
use crate::call::prompts::Answer;

/// A provider's Calls API: place, end and read a call.
pub trait CallsApi: Send + Sync + 'static {
    /// Places the call; returns the provider's call id. Timed and counted.
    fn create_call(
        &self,
        call: CallRequest<'_>,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;

    /// Ends a call that is queued, ringing or in progress.
    fn end_call(&self, call_id: &str) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// The call's status as the provider words it.
    fn call_status(
        &self,
        call_id: &str,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;
}

/// How a dialect's webhooks are signed.
pub trait SignatureCheck: Send + Sync + 'static {
    /// Whether the request carries the dialect's signature headers at all (checked first: a
    /// request without them is refused as unsigned, whatever its body).
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool;

    /// Whether the signature is valid for this form-encoded request (constant time).
    fn is_valid(&self, request: &WebhookRequest<'_>, params: &FormParams) -> bool;
}

/// One account of a Twilio-dialect provider.
pub struct TwimlProvider<C, S> {
    name: String,
    client: C,
    signature: S,
    markup: Twiml,
}

impl<C: CallsApi, S: SignatureCheck> TwimlProvider<C, S> {
    pub fn with(name: &str, client: C, signature: S, default_locale: &str) -> Result<Self, String> {
        Ok(Self {
            name: name.to_owned(),
            client,
            signature,
            markup: Twiml::new(default_locale)?,
        })
    }
}

impl<C: CallsApi, S: SignatureCheck> Provider for TwimlProvider<C, S> {
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
        Box::pin(async move { Ok(progress(&self.client.call_status(call_id).await?)) })
    }

    /// Form-encoded bodies only: every webhook we ask for is one (a JSON body would be signed
    /// differently, and nothing we configure sends one).
    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        if !self.signature.is_signed(request) {
            return Err(Refusal::MissingSignature);
        }
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let params = FormParams::parse(request.body);
        if !self.signature.is_valid(request, &params) {
            return Err(Refusal::BadSignature);
        }
        let call_id = params.get("CallSid").unwrap_or_default();
        if call_id.is_empty() {
            return Err(Refusal::MissingCallId);
        }
        Ok(Webhook {
            call_id: call_id.to_owned(),
            digits: params.get("Digits").unwrap_or_default().to_owned(),
            progress: progress(params.get("CallStatus").unwrap_or_default()),
            machine: answered_by_machine(params.get("AnsweredBy").unwrap_or_default()),
        })
    }

    fn render(&self, answer: &Answer<'_>) -> Markup {
        Markup {
            body: self.markup.render_answer(answer),
            content_type: "text/xml",
        }
    }
}
