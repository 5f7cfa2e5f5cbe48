//! Twilio (and the built-in carrier simulator, which speaks its protocol): the Calls API
//! client, `X-Twilio-Signature` validation, webhook parameters and TwiML. Wire facts:
//! docs/PROVIDERS.md (Twilio).

pub mod client;
pub mod config;
pub mod form;
pub mod shared_key;
pub mod signature;
pub mod twiml;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::settings::AccountCommon;
use super::{
    CallProgress, CallRequest, Markup, Provider, ProviderError, Refusal, Webhook, WebhookRequest,
};
use crate::call::prompts::Answer;
use crate::config::Secret;
use client::TwilioClient;
use config::TwilioKeys;
use form::FormParams;
use twiml::Twiml;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// One Twilio account.
pub struct Twilio {
    name: String,
    client: TwilioClient,
    /// Signs the webhooks (and is the REST password unless an API key is configured).
    auth_token: Secret,
    /// Also accepted for webhook signatures during a token rotation.
    auth_token_secondary: Option<Secret>,
    /// SharedKeys a webhook may name in `X-Twilio-Webhooks-Signature-Settings`.
    shared_keys: Vec<shared_key::SharedKey>,
    twiml: Twiml,
}

impl Twilio {
    pub fn new(
        account: &AccountCommon,
        keys: &TwilioKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            name: account.name.clone(),
            client: TwilioClient::new(account, keys).map_err(|e| e.to_string())?,
            auth_token: keys.auth_token.clone(),
            auth_token_secondary: keys.auth_token_secondary.clone(),
            shared_keys: keys.webhook_shared_keys.clone(),
            twiml: Twiml::new(default_locale)?,
        })
    }
}

/// Twilio's `CallStatus` in neutral terms.
pub fn progress(call_status: &str) -> CallProgress {
    match call_status {
        "queued" | "initiated" => CallProgress::Queued,
        "ringing" => CallProgress::Ringing,
        "in-progress" | "answered" => CallProgress::Answered,
        "completed" => CallProgress::Completed,
        "busy" => CallProgress::Busy,
        "no-answer" => CallProgress::NoAnswer,
        "failed" => CallProgress::Failed,
        "canceled" => CallProgress::Canceled,
        _ => CallProgress::Unknown,
    }
}

/// `AnsweredBy` (answering-machine detection): `machine_start`, `machine_end_*` or `fax`;
/// `human` and `unknown` are treated as a person.
pub fn answered_by_machine(answered_by: &str) -> bool {
    answered_by.starts_with("machine_") || answered_by == "fax"
}

impl Provider for Twilio {
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
        async move { Ok(progress(&self.client.call_status(call_id).await?)) }.boxed()
    }

    /// Form-encoded bodies only: every webhook we ask Twilio for is one (a JSON body would be
    /// signed differently, and nothing we configure sends one).
    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or(Refusal::MissingSignature)?;
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let params = FormParams::parse(request.body);
        let pairs = params.to_vec();
        let signed_with = |token: &Secret| {
            signature::validate_form(token.expose(), signature, request.url, &pairs)
        };
        let valid = match request.header(shared_key::SETTINGS_HEADER) {
            Some(settings) => {
                shared_key::validate(&self.shared_keys, settings, signature, request.url, &pairs)
            }
            None => {
                signed_with(&self.auth_token)
                    || self.auth_token_secondary.as_ref().is_some_and(signed_with)
            }
        };
        if !valid {
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
            body: self.twiml.render_answer(answer),
            content_type: "text/xml",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_statuses_map_onto_neutral_progress() {
        assert_eq!(progress("in-progress"), CallProgress::Answered);
        assert_eq!(progress("no-answer"), CallProgress::NoAnswer);
        assert_eq!(progress("completed"), CallProgress::Completed);
        assert_eq!(progress("initiated"), CallProgress::Queued);
        assert_eq!(progress("bogus"), CallProgress::Unknown);
    }

    #[test]
    fn machines_and_faxes_are_not_people() {
        for machine in [
            "machine_start",
            "machine_end_beep",
            "machine_end_other",
            "fax",
        ] {
            assert!(answered_by_machine(machine), "{machine}");
        }
        for person in ["human", "unknown", ""] {
            assert!(!answered_by_machine(person), "{person}");
        }
    }
}
