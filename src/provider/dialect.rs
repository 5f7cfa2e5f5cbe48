//! One adapter for every provider: [`DialectProvider`] places, ends and reads calls through a
//! Calls API client ([`CallsApi`]) and checks, decodes and answers webhooks through its
//! [`Dialect`]. Twilio, SignalWire's compatibility API and Telnyx TeXML share Twilio's webhook
//! parameters (`CallSid`, `CallStatus`, `Digits`, `AnsweredBy`) and TwiML, so their dialects
//! differ only in how webhooks are signed; Plivo's also reads its own parameters.

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
    /// Places the call; returns the provider's call id (`None`: placed, not named; see
    /// `Provider::place_call`). Timed and counted.
    fn create_call(
        &self,
        call: CallRequest<'_>,
    ) -> impl Future<Output = Result<Option<String>, ProviderError>> + Send;

    /// Ends a call that is queued, ringing or in progress.
    fn end_call(&self, call_id: &str) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// The call's status as the provider words it.
    fn call_status(
        &self,
        call_id: &str,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;
}

/// How a provider's webhooks are signed and read.
pub trait Dialect: Send + Sync + 'static {
    /// Whether the request carries the dialect's signature headers at all (checked first: a
    /// request without them is refused as unsigned, whatever its body).
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool;

    /// Whether the signature is valid for this form-encoded request (constant time).
    fn is_valid(&self, request: &WebhookRequest<'_>, params: &FormParams) -> bool;

    /// The webhook's parameters in neutral terms (default: Twilio's).
    fn webhook(&self, params: &FormParams) -> Result<Webhook, Refusal> {
        let call_id = params.get("CallSid").unwrap_or_default();
        if call_id.is_empty() {
            return Err(Refusal::MissingCallId);
        }
        Ok(Webhook {
            call_id: call_id.to_owned(),
            digits: params.get("Digits").unwrap_or_default().to_owned(),
            progress: progress(params.get("CallStatus").unwrap_or_default()),
            machine: self.is_machine(params.get("AnsweredBy").unwrap_or_default()),
        })
    }

    /// Whether `AnsweredBy` names a machine (default: Twilio's `machine_*` and `fax`).
    fn is_machine(&self, answered_by: &str) -> bool {
        answered_by_machine(answered_by)
    }

    /// A call's status as the Calls API words it, in neutral terms (default: Twilio's).
    fn progress(&self, call_status: &str) -> CallProgress {
        progress(call_status)
    }
}

/// One provider account: its Calls API client, its dialect and its markup.
pub struct DialectProvider<C, D> {
    name: String,
    client: C,
    dialect: D,
    markup: Twiml,
}

impl<C: CallsApi, D: Dialect> DialectProvider<C, D> {
    /// An account answering in TwiML.
    pub fn with(name: &str, client: C, dialect: D, default_locale: &str) -> Result<Self, String> {
        Self::with_markup(name, client, dialect, Twiml::new(default_locale)?)
    }

    /// An account answering in markup of its own.
    pub fn with_markup(name: &str, client: C, dialect: D, markup: Twiml) -> Result<Self, String> {
        Ok(Self {
            name: name.to_owned(),
            client,
            dialect,
            markup,
        })
    }
}

impl<C: CallsApi, D: Dialect> Provider for DialectProvider<C, D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn place_call<'a>(
        &'a self,
        call: CallRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        self.client.create_call(call).boxed()
    }

    fn end_call<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.client.end_call(call_id).boxed()
    }

    fn call_progress<'a>(
        &'a self,
        call_id: &'a str,
    ) -> BoxFuture<'a, Result<CallProgress, ProviderError>> {
        Box::pin(async move {
            Ok(self
                .dialect
                .progress(&self.client.call_status(call_id).await?))
        })
    }

    /// Form-encoded bodies only: every webhook we ask for is one (a JSON body would be signed
    /// differently, and nothing we configure sends one).
    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        if !self.dialect.is_signed(request) {
            return Err(Refusal::MissingSignature);
        }
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let params = FormParams::parse(request.body);
        if !self.dialect.is_valid(request, &params) {
            return Err(Refusal::BadSignature);
        }
        self.dialect.webhook(&params)
    }

    fn render(&self, answer: &Answer<'_>) -> Markup {
        Markup {
            body: self.markup.render_answer(answer),
            content_type: "text/xml",
        }
    }
}
