//! Plivo (docs/PROVIDERS.md#plivo): its own Voice API (JSON, Basic auth with Auth ID and Auth
//! Token), webhooks signed with the V3 scheme (HMAC-SHA256 with a nonce), its own parameters
//! (`CallUUID`, `RequestUUID`, `CallStatus`, `HangupCause`, `Digits`) and its own XML
//! (`<Speak>`, `<GetDigits>`), rendered from `src/provider/plivo/xml/`.

pub mod client;
pub mod config;
pub mod signature;

use super::dialect::{Dialect, DialectProvider};
use super::settings::AccountCommon;
use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use super::{CallProgress, Refusal, Webhook, WebhookRequest};
use crate::config::Secret;
use client::PlivoClient;
use config::PlivoKeys;

/// One Plivo account.
pub type Plivo = DialectProvider<PlivoClient, PlivoDialect>;

impl Plivo {
    pub fn new(
        account: &AccountCommon,
        config: &PlivoKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        let client = PlivoClient::new(account, config)?;
        let dialect = PlivoDialect {
            auth_token: config.auth_token.clone(),
        };
        let xml = Twiml::with_templates(
            default_locale,
            include_str!("xml/gather.xml"),
            include_str!("xml/goodbye.xml"),
        )?;
        Self::with_markup(&account.name, client, dialect, xml)
    }
}

/// Plivo's webhooks: V3 signatures keyed with the Auth Token, and its own parameters.
pub struct PlivoDialect {
    auth_token: Secret,
}

impl Dialect for PlivoDialect {
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool {
        request.header(signature::SIGNATURE_HEADER).is_some()
            && request.header(signature::NONCE_HEADER).is_some()
    }

    fn is_valid(&self, request: &WebhookRequest<'_>, params: &FormParams) -> bool {
        let (Some(sig), Some(nonce)) = (
            request.header(signature::SIGNATURE_HEADER),
            request.header(signature::NONCE_HEADER),
        ) else {
            return false;
        };
        let token = self.auth_token.expose();
        let method = signature::Method::Post;
        signature::validate(token, sig, nonce, method, request.url, &params.to_vec())
    }

    fn webhook(&self, params: &FormParams) -> Result<Webhook, Refusal> {
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

    /// The Calls API's status of a call carries no hangup cause.
    fn progress(&self, call_status: &str) -> CallProgress {
        progress(call_status, "")
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
