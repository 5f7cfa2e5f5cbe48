//! Plivo (docs/PROVIDERS.md#plivo): its own Voice API (JSON, Basic auth with Auth ID and Auth
//! Token), webhooks signed with the V3 scheme (HMAC-SHA256 with a nonce), its own parameters
//! (`CallUUID`, `RequestUUID`, `CallStatus`, `HangupCause`, `Digits`) and its own XML
//! (`<Speak>`, `<GetDigits>`), rendered from `src/provider/plivo/xml/`.

pub mod client;
pub mod config;
pub mod signature;

use super::twiml_dialect::CallsApi;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::settings::AccountCommon;
use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use super::{
    CallProgress, CallRequest, Markup, Provider, ProviderError, Refusal, Webhook, WebhookRequest,
};
use crate::call::prompts::Answer;
use crate::config::Secret;
use client::PlivoClient;
use config::PlivoKeys;

/// One Plivo account.
pub struct Plivo {
    name: String,
    client: PlivoClient,
    auth_token: Secret,
    xml: Twiml,
}

impl Plivo {
    pub fn new(
        account: &AccountCommon,
        config: &PlivoKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            name: account.name.clone(),
            client: PlivoClient::new(account, config)?,
            auth_token: config.auth_token.clone(),
            xml: Twiml::with_templates(
                default_locale,
                include_str!("xml/gather.xml"),
                include_str!("xml/goodbye.xml"),
            )?,
        })
    }
}

/// Plivo's `CallStatus` (and, on the hangup callback, its `HangupCause`) in neutral terms.
pub fn progress(call_status: &str, hangup_cause: &str) -> CallProgress {
    match call_status.to_ascii_lowercase().as_str() {
        "queued" => CallProgress::Queued,
        "ringing" | "early media" => CallProgress::Ringing,
        "in-progress" | "answer" | "answered" => CallProgress::Answered,
        "busy" => CallProgress::Busy,
        "no-answer" | "timeout" | "no answer" => CallProgress::NoAnswer,
        "failed" => CallProgress::Failed,
        "cancel" | "canceled" | "cancelled" => CallProgress::Canceled,
        "completed" => match hangup_cause {
            "USER_BUSY" => CallProgress::Busy,
            "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" => CallProgress::NoAnswer,
            "ORIGINATOR_CANCEL" => CallProgress::Canceled,
            "UNALLOCATED_NUMBER" | "CALL_REJECTED" | "NORMAL_TEMPORARY_FAILURE" => {
                CallProgress::Failed
            }
            _ => CallProgress::Completed,
        },
        _ => CallProgress::Unknown,
    }
}

impl Provider for Plivo {
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
        async move { Ok(progress(&self.client.call_status(call_id).await?, "")) }.boxed()
    }

    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal> {
        let (Some(sig), Some(nonce)) = (
            request.header(signature::SIGNATURE_HEADER),
            request.header(signature::NONCE_HEADER),
        ) else {
            return Err(Refusal::MissingSignature);
        };
        if !super::is_form(request.headers) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let params = FormParams::parse(request.body);
        let token = self.auth_token.expose();
        let method = signature::Method::Post;
        if !signature::validate(token, sig, nonce, method, request.url, &params.to_vec()) {
            return Err(Refusal::BadSignature);
        }
        // The Calls API answers `request_uuid`, so that is the id the verification holds.
        let call_id = params
            .get("RequestUUID")
            .filter(|v| !v.is_empty())
            .or_else(|| params.get("CallUUID"))
            .unwrap_or_default();
        if call_id.is_empty() {
            return Err(Refusal::MissingCallId);
        }
        Ok(Webhook {
            call_id: call_id.to_owned(),
            digits: params.get("Digits").unwrap_or_default().to_owned(),
            progress: progress(
                params.get("CallStatus").unwrap_or_default(),
                params.get("HangupCause").unwrap_or_default(),
            ),
            // Machine detection (`machine_detection=true`): `Machine=true` when a machine
            // answered.
            machine: params
                .get("Machine")
                .is_some_and(|m| m.eq_ignore_ascii_case("true")),
        })
    }

    fn render(&self, answer: &Answer<'_>) -> Markup {
        Markup {
            body: self.xml.render_answer(answer),
            content_type: "text/xml",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Purpose;
    use crate::call::prompts::Closing;

    #[test]
    fn statuses_and_hangup_causes_map_onto_neutral_progress() {
        assert_eq!(progress("ringing", ""), CallProgress::Ringing);
        assert_eq!(progress("in-progress", ""), CallProgress::Answered);
        assert_eq!(
            progress("completed", "NORMAL_CLEARING"),
            CallProgress::Completed
        );
        assert_eq!(progress("completed", "USER_BUSY"), CallProgress::Busy);
        assert_eq!(progress("no-answer", ""), CallProgress::NoAnswer);
        assert_eq!(progress("cancel", ""), CallProgress::Canceled);
    }

    #[test]
    fn plivo_xml_speaks_and_gets_digits() {
        let xml = Twiml::with_templates(
            "en-US",
            include_str!("xml/gather.xml"),
            include_str!("xml/goodbye.xml"),
        )
        .unwrap();
        let doc = xml.prompt(
            "nl-NL",
            Purpose::Registration,
            None,
            "https://x/g?step=prompt",
            5,
        );
        assert!(
            doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><GetDigits ")
        );
        assert!(doc.contains("<Speak language=\"nl-NL\""));
        assert!(doc.contains("numDigits=\"1\"") && doc.contains("timeout=\"5\""));
        assert!(!doc.contains("<Say") && !doc.contains("<Gather"));
        let bye = xml.goodbye("en-US", Closing::Approved);
        assert!(bye.contains("<Speak") && bye.trim_end().ends_with("<Hangup/></Response>"));
    }
}
